#!/usr/bin/env bash
# Builds dist/license_gate.wasm into an OCI image in Istio's "compat" Wasm
# image format, for a WasmPlugin's `url: oci://...`:
#   - one layer, tar+gzip (application/vnd.oci.image.layer.v1.tar+gzip),
#     holding one file, /plugin.wasm (root-owned, 0644): Istio's agent takes
#     the image's last layer and reads the entry named plugin.wasm from it;
#   - a standard OCI image config (os wasip1, architecture wasm), which Istio
#     does not read, so any registry stores the image;
#   - the manifest annotation module.wasm.image/variant=compat.
# Made with Debian's buildah (installed when missing), as root, with the vfs
# storage driver in a throwaway directory under dist/: nothing is left in the
# machine's container storage and no container runs. Reproducible: the same
# module gives the same image digest (timestamps are SOURCE_DATE_EPOCH, or 0).
#
# Usage: scripts/image.sh [--push REF] [--tag NAME] [--insecure] [--no-build]
#   --push REF    push to the registry: REF is REGISTRY/REPOSITORY[:TAG]
#                 (oci:// or docker:// in front are accepted). Credentials:
#                 `buildah login REGISTRY` first (or REGISTRY_AUTH_FILE).
#   --tag NAME    the image's name in the OCI image layout dist/image (default
#                 latest), which every run writes afresh
#   --insecure    plain HTTP or unverified TLS to the registry (a local one)
#   --no-build    use dist/license_gate.wasm as it is (else scripts/build.sh
#                 runs first; it is incremental)
#
# The last line of stdout is the image's manifest digest (sha256:<64 hex>):
# the registry's, with --push. For oci:// URLs Istio compares THAT digest, not
# the .wasm file's hash: pin it as url: oci://REGISTRY/REPOSITORY@sha256:<hex>
# or as the WasmPlugin's `sha256: <hex>`.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

usage() {
    echo "usage: scripts/image.sh [--push REF] [--tag NAME] [--insecure] [--no-build]" >&2
    exit "${1:-2}"
}

push="" tag="latest" tls_verify=true build=true
while [ $# -gt 0 ]; do
    case "$1" in
        --push) [ $# -ge 2 ] || usage; push="$2"; shift 2 ;;
        --push=*) push="${1#*=}"; shift ;;
        --tag) [ $# -ge 2 ] || usage; tag="$2"; shift 2 ;;
        --tag=*) tag="${1#*=}"; shift ;;
        --insecure) tls_verify=false; shift ;;
        --no-build) build=false; shift ;;
        -h | --help) usage 0 ;;
        *) echo "scripts/image.sh: unknown argument: $1" >&2; usage ;;
    esac
done
push="${push#oci://}"
push="${push#docker://}"
case "$tag" in
    "" | *[!A-Za-z0-9._-]*) echo "scripts/image.sh: --tag must be letters, digits, '.', '_', '-'" >&2; exit 2 ;;
esac

WASM="$ROOT/dist/license_gate.wasm"
LAYOUT="$ROOT/dist/image"
if $build; then
    "$ROOT/scripts/build.sh"
fi
if [ ! -s "$WASM" ]; then
    say "no $WASM: run scripts/build.sh (or drop --no-build)"
    exit 1
fi
ensure_apt buildah buildah

mkdir -p "$ROOT/dist"
work="$(mktemp -d "$ROOT/dist/.image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# A snapshot: a build running beside us cannot change the module mid-way.
cp "$WASM" "$work/plugin.wasm"
buildah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
epoch="${SOURCE_DATE_EPOCH:-0}"

say "building the image (compat Wasm image, buildah $(buildah --version | awk '{print $3}'), vfs storage)"
ctr="$("${buildah[@]}" from --name license-gate scratch)"
"${buildah[@]}" copy --quiet --chown 0:0 --chmod 0644 "$ctr" "$work/plugin.wasm" /plugin.wasm >/dev/null
"${buildah[@]}" config --os wasip1 --arch wasm \
    --annotation module.wasm.image/variant=compat \
    --created-by "COPY plugin.wasm /plugin.wasm" "$ctr"
"${buildah[@]}" commit --quiet --format oci --timestamp "$epoch" --identity-label=false --rm \
    "$ctr" localhost/license-gate:build >/dev/null

# The layer is compressed on the way out, so the digest that counts is the
# one of the manifest written out: to the OCI layout always, to the registry
# with --push (the same bytes, so the same digest).
"${buildah[@]}" push --quiet --format oci --compression-format gzip \
    --digestfile "$work/layout.digest" localhost/license-gate:build "oci:$work/layout:$tag"
rm -rf "$LAYOUT"
mv "$work/layout" "$LAYOUT"
digest="$(cat "$work/layout.digest")"
say "OCI image layout: dist/image (tag $tag), manifest $digest"

if [ -n "$push" ]; then
    say "pushing to $push"
    "${buildah[@]}" push --quiet --format oci --compression-format gzip --tls-verify="$tls_verify" \
        --digestfile "$work/pushed.digest" localhost/license-gate:build "docker://$push"
    pushed="$(cat "$work/pushed.digest")"
    if [ "$pushed" != "$digest" ]; then
        say "note: the registry's manifest ($pushed) differs from dist/image's ($digest); pin the registry's"
    fi
    digest="$pushed"
    say "pushed $push, manifest $digest"
    repository="$push"
    case "${push##*/}" in *:*) repository="${push%:*}" ;; esac
    say "pin it: url: oci://$repository@$digest  (or sha256: ${digest#sha256:})"
fi
case "$digest" in
    sha256:[0-9a-f]*) ;;
    *) say "unexpected digest: $digest"; exit 1 ;;
esac
say "(the module itself: sha256:$(sha256sum "$work/plugin.wasm" | cut -d' ' -f1); not what Istio compares for oci://)"
echo "$digest"

"""scripts/image.sh: the module as an OCI image in Istio's compat Wasm image
format, pushed to a real registry (Debian's docker-registry, distribution
2.8, on 127.0.0.1) and fetched back over the Registry HTTP API the way
istio-agent does (pkg/wasm/imagefetcher.go, via go-containerregistry):

- the manifest, asked for with go-containerregistry's Accept list; a manifest
  that is not Docker schema 2 is read as the compat variant: its LAST layer
  must be application/vnd.oci.image.layer.v1.tar+gzip, and the module is the
  tar entry named plugin.wasm in it (then checked for the \\0asm magic);
- the digest Istio compares with a WasmPlugin's `sha256` (or the one in an
  `oci://...@sha256:` URL) is the MANIFEST's digest, which image.sh prints on
  its last line; the .wasm file's own hash is something else.

Istio reads neither the config nor the annotation; the test checks them as
well, since the compat spec asks for the annotation and a standard config
media type is what lets any registry store the image. docker-registry comes
from Debian (installed through scripts/lib.sh when missing), buildah too (by
image.sh). The module is the one in dist/ (scripts/test.sh builds it first)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway import ROOT, WASM, _die_with_parent, free_port

IMAGE_SH = ROOT / "scripts" / "image.sh"
LAYOUT = ROOT / "dist" / "image"
REPOSITORY = "license-gate"
TAG = "test"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# What go-containerregistry's remote.Get accepts, as istio-agent asks.
ACCEPT = ", ".join([OCI_MANIFEST, DOCKER_MANIFEST, "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def ensure_apt(package: str, command: str) -> str:
    """COMMAND from Debian's PACKAGE, installed through scripts/lib.sh's
    ensure_apt when missing (root, as the scripts' own installs); never skipped."""
    proc = subprocess.run(["bash", "-c", 'source scripts/lib.sh && ensure_apt "$0" "$1"', package, command],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"ensure_apt {package} failed:\n{proc.stdout}\n{proc.stderr}"
    found = shutil.which(command)
    assert found, f"Debian's {package} brought no {command}"
    return found


class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in a temp dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Registry:
        binary = ensure_apt("docker-registry", "docker-registry")
        config = self.workdir / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.workdir / 'data'}}}}}\n"
            f"http: {{addr: '{self.host}', secret: license-gate-test}}\n")
        self.log = self.workdir / "registry.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if self.get("/v2/")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"docker-registry did not answer on {self.host}:\n{self.log.read_text()}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"http://{self.host}{path}", headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    def manifest(self, reference: str) -> tuple[int, dict[str, str], bytes]:
        return self.get(f"/v2/{REPOSITORY}/manifests/{reference}", ACCEPT)

    def blob(self, descriptor: dict) -> bytes:
        """A blob by its descriptor, checked against its digest and size (as
        go-containerregistry verifies what it reads)."""
        status, _, body = self.get(f"/v2/{REPOSITORY}/blobs/{descriptor['digest']}")
        assert status == 200, f"blob {descriptor['digest']}: HTTP {status}"
        assert sha256(body) == descriptor["digest"]
        assert len(body) == descriptor["size"]
        return body


def run_image_sh(*args: str) -> str:
    """scripts/image.sh on the module in dist/; the digest on its last line."""
    assert WASM.is_file(), f"{WASM} missing: run scripts/build.sh (scripts/test.sh does)"
    proc = subprocess.run([str(IMAGE_SH), "--no-build", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, f"scripts/image.sh {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    last = proc.stdout.strip().splitlines()[-1]
    assert DIGEST.fullmatch(last), f"last line of stdout is not a digest: {last!r}\n{proc.stderr}"
    return last


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with Registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def pushed(registry):
    """(printed digest, the module's bytes as image.sh saw them)."""
    module = WASM.read_bytes()
    digest = run_image_sh("--insecure", "--push", f"{registry.host}/{REPOSITORY}:{TAG}")
    assert WASM.read_bytes() == module, "dist/license_gate.wasm changed while the image was built"
    return digest, module


@pytest.fixture(scope="module")
def manifest(registry, pushed):
    status, headers, body = registry.manifest(TAG)
    assert status == 200, body
    return headers, body, json.loads(body)


def test_manifest_is_the_compat_variant(manifest):
    headers, _, doc = manifest
    assert headers["content-type"] == OCI_MANIFEST
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == OCI_MANIFEST  # not Docker schema 2: Istio takes its OCI (compat) path
    assert doc["annotations"]["module.wasm.image/variant"] == "compat"
    assert doc["config"]["mediaType"] == OCI_CONFIG
    assert [layer["mediaType"] for layer in doc["layers"]] == [OCI_LAYER_GZIP]


def test_printed_digest_is_the_registrys_manifest_digest(manifest, pushed):
    headers, body, _ = manifest
    digest, module = pushed
    assert sha256(body) == digest
    assert headers["docker-content-digest"] == digest
    # What a WasmPlugin pins is this digest, not the module's hash.
    assert digest != sha256(module)


def test_the_digest_pins_the_image(registry, manifest, pushed):
    """url: oci://REGISTRY/license-gate@sha256:... fetches exactly these bytes;
    any other digest is unknown to the registry."""
    _, body, _ = manifest
    digest, _ = pushed
    status, headers, pinned = registry.manifest(digest)
    assert status == 200
    assert pinned == body
    assert headers["docker-content-digest"] == digest
    other = "sha256:" + ("0" if digest[7] != "0" else "1") + digest[8:]
    assert registry.manifest(other)[0] == 404


def test_istio_agent_fetch_gives_the_module(registry, manifest, pushed):
    """Last layer -> gunzip -> untar -> the entry named plugin.wasm, byte for byte
    the module (and the only entry: a root-owned 0644 regular file)."""
    _, _, doc = manifest
    _, module = pushed
    layer = doc["layers"][-1]
    assert layer["mediaType"] == OCI_LAYER_GZIP
    compressed = registry.blob(layer)
    assert compressed[:2] == b"\x1f\x8b"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(compressed)), mode="r:") as archive:
        members = archive.getmembers()
        assert [(m.name, m.type, m.mode & 0o7777, m.uid, m.gid) for m in members] == [
            ("plugin.wasm", tarfile.REGTYPE, 0o644, 0, 0)]
        extracted = archive.extractfile(members[0]).read()
    assert extracted[:4] == b"\0asm"  # Istio's isValidWasmBinary
    assert extracted == module == WASM.read_bytes()


def test_image_config(registry, manifest):
    """A standard OCI image config: its diff_id is the uncompressed layer's
    digest, platform wasip1/wasm, timestamps at the epoch (reproducible)."""
    _, _, doc = manifest
    config = json.loads(registry.blob(doc["config"]))
    layer = gzip.decompress(registry.blob(doc["layers"][-1]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256(layer)]}
    assert (config["os"], config["architecture"]) == ("wasip1", "wasm")
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert [h["created_by"] for h in config["history"]] == ["COPY plugin.wasm /plugin.wasm"]
    assert "Entrypoint" not in config.get("config", {}) and "Cmd" not in config.get("config", {})


def test_rebuild_is_reproducible_and_matches_the_layout(pushed):
    """The same module gives the same digest; without --push the digest is
    the one of dist/image, the OCI layout image.sh always writes."""
    digest, _ = pushed
    assert run_image_sh("--tag", "again") == digest
    index = json.loads((LAYOUT / "index.json").read_text())
    assert [(m["digest"], m["annotations"]["org.opencontainers.image.ref.name"]) for m in index["manifests"]] == [
        (digest, "again")]
    assert sha256((LAYOUT / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()) == digest

"""The Kubernetes manifests in istio/, validated offline against the published
schemas -- Istio's CRDs, the Prometheus Operator's and Kubernetes' own API, as
the npm packages pinned in scripts/manifests/package-lock.json carry them --
by scripts/manifests/validate.mjs, which also refuses every field those
schemas do not declare (outside their free-form parts: a WasmPlugin's
pluginConfig, an EnvoyFilter's patch value). istio/kustomization.yaml lists
exactly the manifests of istio/, and `kubectl kustomize istio/` (when kubectl
is installed) renders them.

The npm packages are installed here with `npm ci` into the git-ignored
scripts/manifests/node_modules, again only when the lock file changes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import licensectl

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ROOT / "istio"
TOOL = ROOT / "scripts" / "manifests"
VALIDATOR = TOOL / "validate.mjs"
STAMP = TOOL / "node_modules" / ".license-gate-lock.sha256"

# In istio/ but not resources of the kustomization: the kustomization itself,
# and strategic-merge patches (`*-patch.yaml`) for objects that the Istio
# installation owns (the ingress gateway's Deployment), which kustomize can
# only apply to resources it renders. Patches are validated as partial
# objects. Files without apiVersion and kind (promtool's rule tests, say) are
# not manifests at all.
KUSTOMIZATION = ISTIO / "kustomization.yaml"


def is_patch(path: Path) -> bool:
    return path.name.endswith("-patch.yaml")


def is_manifest(path: Path) -> bool:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return any(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)


def yaml_files() -> list[Path]:
    return sorted(p for p in ISTIO.iterdir() if p.suffix in (".yaml", ".yml") and p != KUSTOMIZATION)


def resources() -> list[str]:
    return list(yaml.safe_load(KUSTOMIZATION.read_text()).get("resources") or [])


RESOURCES = resources()
PATCHES = [p.name for p in yaml_files() if is_patch(p)]


def ensure_packages(npm: str) -> None:
    """`npm ci` from the committed lock file, unless node_modules already
    holds exactly that install (a stamp of package.json + package-lock.json)."""
    want = hashlib.sha256((TOOL / "package.json").read_bytes() + (TOOL / "package-lock.json").read_bytes()).hexdigest()
    lock = Path(tempfile.gettempdir()) / f"license-gate-npm-{hashlib.sha256(bytes(TOOL)).hexdigest()[:12]}.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another test run installing at the same time
        if STAMP.is_file() and STAMP.read_text().strip() == want:
            return
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TOOL,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, f"npm ci in {TOOL} failed:\n{proc.stdout}\n{proc.stderr}"
        STAMP.write_text(want + "\n")


Validate = Callable[..., tuple[int, list[dict]]]


@pytest.fixture(scope="module")
def validate() -> Validate:
    """Runs validate.mjs --json on its arguments: (exit status, results)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("the manifest validator needs Node.js and npm (Debian: apt-get install nodejs npm)")
    ensure_packages(npm)

    def run(*args: str | Path) -> tuple[int, list[dict]]:
        proc = subprocess.run([node, str(VALIDATOR), "--json", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode in (0, 1), f"validate.mjs failed (exit {proc.returncode}):\n{proc.stderr}"
        return proc.returncode, json.loads(proc.stdout)

    return run


def describe(results: list[dict]) -> str:
    return "\n".join(f"{Path(r['file']).name} [{r.get('kind')} {r.get('name')}]: {p['field']}: {p['message']}"
                     for r in results for p in r["problems"])


def test_the_kustomization_lists_exactly_the_manifests_of_istio():
    manifests = {p.name for p in yaml_files() if is_manifest(p) and not is_patch(p)}
    listed = set(RESOURCES)
    assert len(listed) == len(RESOURCES), f"listed twice in kustomization.yaml: {RESOURCES}"
    assert listed == manifests, (
        f"manifests missing from istio/kustomization.yaml: {sorted(manifests - listed)}; "
        f"listed there but not a manifest in istio/: {sorted(listed - manifests)}")
    assert not listed & set(PATCHES), "a *-patch.yaml is a patch, not a resource"


@pytest.fixture(scope="module")
def kustomization_results(validate) -> dict[str, list[dict]]:
    """One validator run over istio/, as the README runs it: every resource the
    kustomization lists."""
    _, results = validate(ISTIO)
    by_file: dict[str, list[dict]] = {}
    for r in results:
        by_file.setdefault(Path(r["file"]).name, []).append(r)
    return by_file


@pytest.mark.parametrize("name", RESOURCES)
def test_manifest_matches_its_published_schema(kustomization_results, name):
    results = kustomization_results.get(name)
    assert results, f"{name}: the validator reported nothing"
    assert all(r.get("kind") for r in results), describe(results)
    assert not any(r["problems"] for r in results), f"{name} fails validation:\n{describe(results)}"


@pytest.mark.parametrize("name", PATCHES)
def test_patch_matches_the_schema_of_what_it_patches(validate, name):
    status, results = validate("--partial", ISTIO / name)
    assert status == 0, f"{name} fails validation (as a patch):\n{describe(results)}"


def rule(doc: dict) -> dict:
    return doc["spec"]["groups"][0]["rules"][0]


# (manifest, change to a copy of it, the field the refusal names, words of its message)
REFUSED = {
    "typo-in-a-wasmplugin-field": (
        "wasmplugin.yaml", lambda d: d["spec"].__setitem__("pluginConfg", d["spec"].pop("pluginConfig")),
        "spec.pluginConfg", "unknown field"),
    "failstrategy-not-in-its-enum": (
        "wasmplugin.yaml", lambda d: d["spec"].__setitem__("failStrategy", "FAIL_MAYBE"),
        "spec.failStrategy", "allowed values (FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD)"),
    "unknown-field-in-metadata": (
        "hardening.yaml", lambda d: d["metadata"].__setitem__("labelz", {"app": "license-gate"}),
        "metadata.labelz", "unknown field"),
    "unknown-field-in-an-envoyfilter-match": (
        "hardening.yaml", lambda d: d["spec"]["configPatches"][0]["match"].__setitem__("contxt", "GATEWAY"),
        "spec.configPatches[0].match.contxt", "unknown field"),
    "unknown-field-deep-in-a-destinationrule": (
        "license-keys-destinationrule.yaml",
        lambda d: d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].__setitem__("verify", True),
        "spec.trafficPolicy.portLevelSettings[0].tls.verify", "unknown field"),
    "serviceentry-port-typo": (
        "license-keys-serviceentry.yaml", lambda d: d["spec"]["ports"][0].__setitem__("protocl", "HTTP"),
        "spec.ports[0].protocl", "unknown field"),
    "alert-label-outside-labels": (
        "alerts.yaml", lambda d: rule(d).__setitem__("severity", "warning"),
        "spec.groups[0].rules[0].severity", "unknown field"),
    "alert-for-not-a-duration": (
        "alerts.yaml", lambda d: rule(d).__setitem__("for", "ten minutes"),
        "spec.groups[0].rules[0].for", "must match pattern"),
    "no-schema-for-the-kind": (
        "wasmplugin.yaml", lambda d: d.__setitem__("kind", "WasmPlugins"),
        "apiVersion", "unknown apiVersion/kind"),
}

# Changes inside the schemas' free-form parts, which Kubernetes keeps as they are.
ACCEPTED = {
    "anything-in-pluginconfig": (
        "wasmplugin.yaml", lambda d: d["spec"]["pluginConfig"].__setitem__("not_a_schema_field", {"x": 1})),
    "anything-in-an-envoyfilter-patch-value": (
        "hardening.yaml", lambda d: d["spec"]["configPatches"][0]["patch"]["value"].__setitem__("any", [1])),
}


def changed_copy(directory: Path, case: str, name: str, change) -> Path:
    doc = yaml.safe_load((ISTIO / name).read_text())
    change(doc)
    path = directory / f"{case}.yaml"
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def changed_results(validate, tmp_path_factory) -> dict[str, list[dict]]:
    """One validator run over every changed copy (and a duplicated key)."""
    directory = tmp_path_factory.mktemp("manifests")
    paths = [changed_copy(directory, case, name, change) for case, (name, change, *_) in REFUSED.items()]
    paths += [changed_copy(directory, case, name, change) for case, (name, change) in ACCEPTED.items()]
    duplicate = directory / "duplicate-key.yaml"
    duplicate.write_text((ISTIO / "wasmplugin.yaml").read_text() + "\nkind: WasmPlugin\n")
    _, results = validate(*paths, duplicate)
    by_case: dict[str, list[dict]] = {}
    for r in results:
        by_case.setdefault(Path(r["file"]).stem, []).append(r)
    return by_case


@pytest.mark.parametrize("case", REFUSED)
def test_a_manifest_breaking_its_schema_is_refused_naming_the_field(changed_results, case):
    _, _, field, words = REFUSED[case]
    problems = [p for r in changed_results[case] for p in r["problems"]]
    assert any(p["field"] == field and words in p["message"] for p in problems), (
        f"{case}: want `{field}: ...{words}...`, got {problems}")


@pytest.mark.parametrize("case", ACCEPTED)
def test_free_form_parts_of_the_schemas_take_any_field(changed_results, case):
    assert not any(r["problems"] for r in changed_results[case]), describe(changed_results[case])


def test_a_duplicated_key_is_refused(changed_results):
    problems = [p for r in changed_results["duplicate-key"] for p in r["problems"]]
    assert any(p["field"] == "(yaml)" and "unique" in p["message"] for p in problems), problems


def test_the_quota_envoyfilter_is_what_licensectl_generates_for_the_wasmplugin():
    """istio/quota-envoyfilter.yaml is exactly `licensectl quota --config
    istio/wasmplugin.yaml --format istio`: a quota changed in the WasmPlugin
    (or a change to the generator) without regenerating it fails here."""
    shipped = ISTIO / "quota-envoyfilter.yaml"
    proc = licensectl.run(licensectl.build(), "quota", "--config", str(ISTIO / "wasmplugin.yaml"),
                          "--format", "istio", check=False)
    assert proc.returncode == 0, proc.stderr
    assert shipped.read_text() == proc.stdout, (
        "istio/quota-envoyfilter.yaml is stale: run target/release/licensectl quota --config "
        "istio/wasmplugin.yaml --format istio > istio/quota-envoyfilter.yaml")
    # The limiter runs on the gateway the WasmPlugin selects, in its namespace.
    plugin, envoy_filter = yaml.safe_load((ISTIO / "wasmplugin.yaml").read_text()), yaml.safe_load(proc.stdout)
    assert envoy_filter["metadata"]["namespace"] == plugin["metadata"]["namespace"]
    assert envoy_filter["spec"]["workloadSelector"]["labels"] == plugin["spec"]["selector"]["matchLabels"]
    buckets = {d["entries"][0]["value"]: d["token_bucket"]
               for d in envoy_filter["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["descriptors"]}
    assert buckets == {name: {"max_tokens": plan["quota"]["burst"],
                              "tokens_per_fill": plan["quota"]["requests_per_second"], "fill_interval": "1s"}
                       for name, plan in plugin["spec"]["pluginConfig"]["plans"].items()}


def test_kubectl_kustomize_renders_every_manifest_valid(validate, tmp_path):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed: `kubectl kustomize istio/` not run (the kustomization's "
                    "contents are checked above)")
    proc = subprocess.run([kubectl, "kustomize", str(ISTIO)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, f"kubectl kustomize istio/ failed:\n{proc.stderr}"
    rendered = [d for d in yaml.safe_load_all(proc.stdout) if d]
    want = [d for name in RESOURCES for d in yaml.safe_load_all((ISTIO / name).read_text()) if d]

    def ids(docs: list[dict]) -> list[tuple]:
        return sorted((d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
                      for d in docs)

    assert ids(rendered) == ids(want)
    out = tmp_path / "rendered.yaml"
    out.write_text(proc.stdout)
    status, results = validate(out)
    assert status == 0, f"kustomize's output fails validation:\n{describe(results)}"

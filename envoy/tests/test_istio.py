"""The Istio manifests in istio/: the WasmPlugin's pluginConfig runs as
written in a real Envoy, and every series the alerts name exists in Envoy's
Prometheus output (the stats set-up itself: test_istio_stats.py)."""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from conftest import mint
from gateway import ROOT, Envoy

ISTIO = ROOT / "istio"


def manifest(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((ISTIO / name).read_text()) if d]
    assert len(docs) == 1, f"{name}: one resource per file"
    return docs[0]


@pytest.fixture(scope="module")
def istio_gateway(upstream, tmp_path_factory):
    """Envoy running the WasmPlugin's pluginConfig, exactly as the manifest has it."""
    plugin = manifest("wasmplugin.yaml")
    assert plugin["kind"] == "WasmPlugin"
    with Envoy(plugin["spec"]["pluginConfig"], upstream.port,
               workdir=tmp_path_factory.mktemp("istio")) as envoy:
        yield envoy


def test_the_wasmplugin_closes_the_gateway_on_failure_and_runs_before_authz():
    spec = manifest("wasmplugin.yaml")["spec"]
    assert (spec["phase"], spec["failStrategy"]) == ("AUTHN", "FAIL_CLOSE")
    assert spec["selector"] == {"matchLabels": {"istio": "ingressgateway"}}


@pytest.mark.parametrize("path, token, status, reason", [
    ("/healthz", None, 200, None),
    ("/api/data", None, 401, "missing"),
    ("/api/data", {}, 200, None),
    ("/api/reports", {}, 403, "feature_missing"),
    ("/api/reports", {"plan": "pro"}, 200, None),
    ("/admin/users", {"plan": "enterprise", "alg": "EdDSA"}, 200, None),
    ("/admin/users", {"plan": "pro", "alg": "ES256"}, 403, "feature_missing"),
    ("/other", {"plan": "enterprise"}, 403, "route_denied"),
    ("/api/data", {"exp_in": -3 * 86_400}, 200, None),  # within the 7-day grace period
    ("/api/data", {"exp_in": -8 * 86_400}, 401, "expired"),
])
def test_the_wasmplugin_config_enforces_as_documented(istio_gateway, path, token, status, reason):
    headers = {}
    if token is not None:
        claims = {k: v for k, v in token.items() if k not in ("alg", "exp_in")}
        if "exp_in" in token:
            claims["exp"] = int(time.time()) + token["exp_in"]
        headers["authorization"] = "Bearer " + mint(alg=token.get("alg", "RS256"), **claims)
    got, _answer_headers, body = istio_gateway.request("GET", path, headers)
    assert got == status, body
    if reason is not None:
        assert json.loads(body)["error"] == reason
    elif path != "/healthz":
        # strip_token: the upstream sees the license headers, not the token.
        seen = json.loads(body)["headers"]
        assert seen["x-license-tenant"] == ["acme"]
        assert "authorization" not in seen


def test_every_series_the_alerts_name_exists(istio_gateway):
    # Traffic that makes every license_gate series appear, histogram included.
    for path, token in [("/api/data", mint()), ("/api/data", None)]:
        istio_gateway.request("GET", path, {"authorization": f"Bearer {token}"} if token else {})
    deadline = time.monotonic() + 15
    prom = ""
    while time.monotonic() < deadline and "license_gate_license_remaining_seconds_bucket" not in prom:
        prom = istio_gateway.admin("GET", "/stats/prometheus")[2]
        time.sleep(0.2)
    exported = set(re.findall(r"^(license_gate_\w+)\{", prom, re.M))
    rules = [r for g in manifest("alerts.yaml")["spec"]["groups"] for r in g["rules"]]
    named = {name for r in rules for name in re.findall(r"\blicense_gate_\w+", r["expr"])}
    assert named, "the alerts name no series"
    assert named <= exported, f"not exported by Envoy: {sorted(named - exported)}"
    # The reason label the alerts filter on comes from the stats rules.
    assert 'license_gate_denied{reason="bad_signature"}' in prom

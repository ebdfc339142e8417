"""license-gate's stats on a stock Istio gateway: Envoy started with the
stats configuration istio-agent would render from what istio/ ships (the pod
annotations of istio/gateway-stats-patch.yaml; see envoy/istio_bootstrap.py),
and its Prometheus output checked for the reason label and the buckets."""

from __future__ import annotations

import re
import time

import yaml

from conftest import mint, plugin_config
from gateway import ROOT, TEMPLATE, Envoy
from istio_bootstrap import EXTRA_STAT_TAGS, HISTOGRAM_BUCKETS, stats_config

PATCH = ROOT / "istio" / "gateway-stats-patch.yaml"
BUCKETS = [3600, 86400, 604800, 2592000, 7776000, 31536000]


def annotations() -> dict:
    patch = yaml.safe_load(PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", "istio-ingressgateway")
    return patch["spec"]["template"]["metadata"]["annotations"]


def istio_envoy(upstream, workdir, pod_annotations: dict) -> Envoy:
    """Envoy with the gateway listener and module, and Istio's stats_config in place of gateway.yaml's."""
    text = TEMPLATE.read_text()
    start, end = text.index("stats_config:"), text.index("static_resources:")
    rendered = yaml.safe_dump({"stats_config": stats_config(pod_annotations)}, sort_keys=False)
    template = workdir / "gateway.yaml"
    template.write_text(text[:start] + rendered + "\n" + text[end:])
    return Envoy(plugin_config(), upstream.port, workdir=workdir, template=template)


def scrape(envoy: Envoy) -> dict[str, float]:
    """Every license_gate series of /stats/prometheus, by its full name and labels."""
    _, _, body = envoy.admin("GET", "/stats/prometheus")
    series = {}
    for line in body.splitlines():
        if line.startswith("license_gate") or line.startswith("envoy_wasmcustom"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


def traffic(envoy: Envoy) -> dict[str, float]:
    """Three licensed requests, then the scrape once Envoy has flushed its
    histograms (every 5 s)."""
    for token in (mint(), mint(exp=1), mint(exp=1)):
        envoy.request("GET", "/api/data", {"authorization": f"Bearer {token}"})
    deadline = time.monotonic() + 12
    while True:
        series = scrape(envoy)
        if series.get("license_gate_license_remaining_seconds_count{}") or time.monotonic() > deadline:
            return series
        time.sleep(0.2)


def test_the_patch_asks_istio_for_the_reason_tag_and_the_buckets():
    notes = annotations()
    assert notes[EXTRA_STAT_TAGS] == "reason"
    assert yaml.safe_load(notes[HISTOGRAM_BUCKETS]) == {"wasmcustom.license_gate.license_remaining_seconds": BUCKETS}
    rendered = stats_config(notes)
    assert {"tag_name": "reason", "regex": r"(reason=\.=(.*?);\.;)"} in rendered["stats_tags"]
    # And it is the rule gateway.yaml uses, so both gateways export the same series.
    text = TEMPLATE.read_text()
    gateway = yaml.safe_load(text[text.index("stats_config:"):text.index("static_resources:")])
    assert gateway["stats_config"]["stats_tags"] == [{"tag_name": "reason", "regex": r"(reason=\.=(.*?);\.;)"}]
    assert gateway["stats_config"]["histogram_bucket_settings"] == rendered["histogram_bucket_settings"]


def test_with_the_annotations_the_series_carry_their_labels_and_buckets(upstream, tmp_path):
    with istio_envoy(upstream, tmp_path, annotations()) as envoy:
        series = traffic(envoy)
    assert series['license_gate_denied{reason="expired"}'] == 2
    assert series['license_gate_denied{reason="missing"}'] == 0
    assert series['license_gate_dry_run_would_deny{reason="expired"}'] == 0
    assert series["license_gate_allowed{}"] == 1
    buckets = sorted(float(m.group(1)) for name in series
                     if (m := re.match(r'license_gate_license_remaining_seconds_bucket\{le="([^"]+)"\}', name))
                     and m.group(1) != "+Inf")
    assert buckets == BUCKETS
    # The valid license has just under 30 days left: in the 30-day bucket, not the 7-day one.
    assert series['license_gate_license_remaining_seconds_bucket{le="604800"}'] == 0
    assert series['license_gate_license_remaining_seconds_bucket{le="2592000"}'] == 1


def test_without_them_istio_still_exports_the_stats_but_not_the_label(upstream, tmp_path):
    """Why the patch is needed: on a stock gateway the stats are kept (the
    `wasm` prefix), but the reason stays part of the name."""
    with istio_envoy(upstream, tmp_path, {}) as envoy:
        series = traffic(envoy)
    assert series["license_gate_allowed{}"] == 1
    assert series["license_gate_license_remaining_seconds_count{}"] == 1
    assert not any(key.startswith("license_gate_denied{") for key in series)
    reason_in_name = [key for key in series if "expired" in key and "denied" in key]
    assert reason_in_name and all("reason" in key and "{}" in key for key in reason_in_name), reason_in_name

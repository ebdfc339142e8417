"""license-gate's stats on a stock Istio gateway: Envoy started with the
stats configuration istio-agent would render from what istio/ ships (the pod
annotations of istio/gateway-stats-patch.yaml; see envoy/istio_bootstrap.py),
and its Prometheus output checked for the reason and plan labels and the
buckets. The plan label is checked on a real 429 of the quota limiter that
istio/quota-envoyfilter.yaml inserts, in front of istio/wasmplugin.yaml's
pluginConfig."""

from __future__ import annotations

import re
import time

import yaml

from conftest import mint, plugin_config
from gateway import ROOT, TEMPLATE, Envoy
from istio_bootstrap import EXTRA_STAT_TAGS, HISTOGRAM_BUCKETS, stats_config

PATCH = ROOT / "istio" / "gateway-stats-patch.yaml"
WASMPLUGIN = ROOT / "istio" / "wasmplugin.yaml"
QUOTA_ENVOYFILTER = ROOT / "istio" / "quota-envoyfilter.yaml"
BUCKETS = [3600, 86400, 604800, 2592000, 7776000, 31536000]
TAG_RULES = [{"tag_name": "reason", "regex": r"(reason=\.=(.*?);\.;)"},
             {"tag_name": "plan", "regex": r"(plan=\.=(.*?);\.;)"}]


def annotations() -> dict:
    patch = yaml.safe_load(PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", "istio-ingressgateway")
    return patch["spec"]["template"]["metadata"]["annotations"]


def istio_envoy(upstream, workdir, pod_annotations: dict, config: dict | None = None,
                quota_filter: str = "") -> Envoy:
    """Envoy with the gateway listener and module, and Istio's stats_config in place of gateway.yaml's."""
    text = TEMPLATE.read_text()
    start, end = text.index("stats_config:"), text.index("static_resources:")
    rendered = yaml.safe_dump({"stats_config": stats_config(pod_annotations)}, sort_keys=False)
    template = workdir / "gateway.yaml"
    template.write_text(text[:start] + rendered + "\n" + text[end:])
    return Envoy(plugin_config() if config is None else config, upstream.port, workdir=workdir,
                 template=template, quota_filter=quota_filter)


def shipped_plugin_config() -> dict:
    plugin = yaml.safe_load(WASMPLUGIN.read_text())
    assert plugin["kind"] == "WasmPlugin"
    return plugin["spec"]["pluginConfig"]


def shipped_quota_filter() -> str:
    """The HTTP filter istio/quota-envoyfilter.yaml inserts right before the
    router (so after the WasmPlugin's filter), as an http_filters item for
    gateway.yaml's place after the gate."""
    doc = yaml.safe_load(QUOTA_ENVOYFILTER.read_text())
    assert doc["kind"] == "EnvoyFilter"
    (patch,) = doc["spec"]["configPatches"]
    assert (patch["applyTo"], patch["patch"]["operation"]) == ("HTTP_FILTER", "INSERT_BEFORE")
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"] == {"name": "envoy.filters.http.router"}
    return yaml.safe_dump([patch["patch"]["value"]], sort_keys=False)


def shipped_quota(plan: str) -> dict:
    return shipped_plugin_config()["plans"][plan]["quota"]


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


def test_the_patch_asks_istio_for_the_reason_and_plan_tags_and_the_buckets():
    notes = annotations()
    assert notes[EXTRA_STAT_TAGS] == "reason,plan"
    assert yaml.safe_load(notes[HISTOGRAM_BUCKETS]) == {"wasmcustom.license_gate.license_remaining_seconds": BUCKETS}
    rendered = stats_config(notes)
    extra = [rule for rule in rendered["stats_tags"] if rule["tag_name"] in ("reason", "plan")]
    assert extra == TAG_RULES
    # And they are the rules gateway.yaml uses, so both gateways export the same series.
    text = TEMPLATE.read_text()
    gateway = yaml.safe_load(text[text.index("stats_config:"):text.index("static_resources:")])
    assert gateway["stats_config"]["stats_tags"] == TAG_RULES
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


def rate_limited(series: dict[str, float]) -> dict[str, float]:
    """license_gate_rate_limited by its plan label."""
    return {m.group(1): value for name, value in series.items()
            if (m := re.fullmatch(r'license_gate_rate_limited\{plan="([^"]*)"\}', name))}


def test_with_the_annotations_a_quota_429_is_counted_under_its_plan(upstream, tmp_path):
    """The shipped WasmPlugin config and quota EnvoyFilter behind Istio's
    stats configuration: a basic tenant sent until the limiter's first 429
    shows as license_gate_rate_limited{plan="basic"} 1."""
    config = shipped_plugin_config()
    burst = shipped_quota("basic")["burst"]
    with istio_envoy(upstream, tmp_path, annotations(), config, shipped_quota_filter()) as envoy:
        # Every shipped plan has a quota (enterprise inherits pro's).
        assert rate_limited(scrape(envoy)) == {plan: 0 for plan in (*config["plans"], "_default")}
        token = mint(plan="basic", tenant="t-basic")
        statuses = []
        # The first `burst` pass; refills (requests_per_second) may let a few
        # more through before the bucket runs dry; stop at the first 429.
        for _ in range(3 * burst):
            status, headers, body = envoy.request("GET", "/api/data", {"authorization": f"Bearer {token}"})
            statuses.append(status)
            if status == 429:
                assert (body, headers["x-ratelimit-limit"]) == ("local_rate_limited", str(burst))
                break
        assert statuses[:burst] == [200] * burst and statuses[burst:] == [200] * (len(statuses) - burst - 1) + [429], \
            statuses
        deadline = time.monotonic() + 5  # the gate counts the 429 as Envoy answers it
        while rate_limited(scrape(envoy)).get("basic") != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        series = scrape(envoy)
        _, _, prom = envoy.admin("GET", "/stats/prometheus")
    assert rate_limited(series) == {"basic": 1, "pro": 0, "enterprise": 0, "_default": 0}
    # The limiter's own counter is not kept by Istio's stats matcher (no
    # `wasm` prefix): the gate's counter is the one a stock gateway exports.
    assert "license_gate_quota" not in prom


def test_with_the_old_annotation_the_plan_stays_in_the_name(upstream, tmp_path):
    """Why `plan` is in extraStatTags: with `reason` alone, each plan's
    counter is a series of its own, its plan part of the name."""
    notes = {**annotations(), EXTRA_STAT_TAGS: "reason"}
    with istio_envoy(upstream, tmp_path, notes, shipped_plugin_config()) as envoy:
        series = scrape(envoy)
    assert rate_limited(series) == {}
    assert 'license_gate_denied{reason="expired"}' in series
    assert sorted(key for key in series if "rate_limited" in key) == [
        f"license_gate_plan____{plan}___rate_limited{{}}" if plan == "default" else
        f"license_gate_plan___{plan}___rate_limited{{}}" for plan in ("default", "basic", "enterprise", "pro")]

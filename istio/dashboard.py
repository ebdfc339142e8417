"""license-gate's Grafana dashboard and Prometheus alerts, generated from one
table of series names.

    .venv/bin/python istio/dashboard.py            # rewrites the three files below in istio/
    .venv/bin/python istio/dashboard.py --out DIR  # writes them into DIR instead

- `dashboard.json`: the dashboard, built with grafana-foundation-sdk;
- `dashboard-configmap.yaml`: the same JSON in a ConfigMap labelled
  `grafana_dashboard: "1"`, for Grafana's dashboard sidecar;
- `alerts.yaml`: the PrometheusRule (Prometheus Operator).

Every series name the dashboard and the alerts query is defined once, below
(SERIES NAMES): a renamed stat is one edit here and a regeneration.
envoy/tests/test_observability.py regenerates into a temporary directory and
requires the committed files to be identical, runs the rules through promtool
(istio/alerts-test.yaml), and checks every series queried here against the
/stats/prometheus of a real Envoy running the module.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------
# SERIES NAMES: every series queried below, as Prometheus stores them today.
#
# license-gate's proxy-wasm metrics are `license_gate.<stat>`; Envoy keeps
# them as `wasmcustom.license_gate.<stat>` and its /stats/prometheus strips
# the `wasmcustom.` namespace: `license_gate_<stat>`. The `reason` and `plan`
# labels come from the stats tag rules (envoy/gateway.yaml; on Istio, the
# extraStatTags annotation), the remaining-validity buckets from
# histogram_bucket_settings.
PREFIX = "license_gate_"
ALLOWED = PREFIX + "allowed"  # counter: requests a license granted (active or grace)
ALLOWED_GRACE = PREFIX + "allowed_grace"  # counter: ... of which in the grace period
OPEN = PREFIX + "open"  # counter: requests on open routes
DENIED = PREFIX + "denied"  # counter {reason}
DRY_RUN_WOULD_DENY = PREFIX + "dry_run_would_deny"  # counter {reason}: dry_run only
CACHE_HIT = PREFIX + "cache_hit"
CACHE_MISS = PREFIX + "cache_miss"
SIGNATURE_VERIFICATIONS = PREFIX + "signature_verifications"
JWKS_FETCH_SUCCESS = PREFIX + "jwks_fetch_success"
JWKS_FETCH_FAILED = PREFIX + "jwks_fetch_failed"  # counter {reason: status|timeout|invalid|too_large}
REVOCATION_FETCH_SUCCESS = PREFIX + "revocation_fetch_success"
REVOCATION_FETCH_FAILED = PREFIX + "revocation_fetch_failed"  # counter {reason}
# Gauges, defined only when keys.remote / revocation.remote are configured.
JWKS_KEYS = PREFIX + "jwks_keys"
JWKS_AGE = PREFIX + "jwks_age_seconds"
REVOCATION_IDS = PREFIX + "revocation_ids"
REVOCATION_AGE = PREFIX + "revocation_age_seconds"
REMAINING_BUCKET = PREFIX + "license_remaining_seconds_bucket"  # histogram buckets {le}
# counter {plan}: requests the gate let through that a rate limiter after it
# refused (the quota limiter, istio/quota-envoyfilter.yaml), by the bucket the
# gate's headers put them in. Defined when any plan has a quota: one label per
# plan with a quota (a tenant's bucket of that plan), and `_default` for the
# limiter's default bucket (open routes, licenses without a plan quota or a tenant).
RATE_LIMITED = PREFIX + "rate_limited"
DEFAULT_BUCKET = "_default"
# Envoy's own Wasm stats (wasm.envoy.wasm.runtime.v8.active, ...).
WASM_V8_ACTIVE = "envoy_wasm_envoy_wasm_runtime_v8_active"  # gauge: running V8 VMs
WASM_V8_CREATED = "envoy_wasm_envoy_wasm_runtime_v8_created"  # counter: V8 VMs created
WASM_REMOTE_LOAD_FAILURES = "envoy_wasm_remote_load_fetch_failures"  # counter: vm_config.code.remote fetches failed
# Not Envoy's.
ISTIO_AGENT_WASM_FETCHES = "istio_agent_wasm_remote_fetch_count"  # counter {result}
ALERTS = "ALERTS"

# Queried series that no Envoy exports, and why (the series check in
# envoy/tests/test_observability.py exempts exactly these).
NOT_FROM_ENVOY = {
    ISTIO_AGENT_WASM_FETCHES: "istio-agent's own metric: the agent downloads a WasmPlugin's module and hands Envoy "
                              "a local file; it reaches Prometheus merged into the pod's scrape by the agent",
    ALERTS: "Prometheus's own series of pending and firing alerts",
}

# The remaining-validity histogram's buckets, in seconds: 1 hour, 1 day,
# 7 days, 30, 90 and 365 days (histogram_bucket_settings in envoy/gateway.yaml).
BUCKETS = (3600, 86400, 604800, 2592000, 7776000, 31536000)

# Alert thresholds that the dashboard draws too.
JWKS_STALE_SECONDS = 3600  # 12 refreshes of the default refresh_seconds (300); keys drop at max_stale_seconds
REVOCATION_STALE_SECONDS = 900  # 15 refreshes of the revocation list's default refresh_seconds (60)

ALERT_NAME_PREFIX = "LicenseGate"


# ---------------------------------------------------------------------------
# PromQL helpers.

def sel(name: str, **matchers: str) -> str:
    """A vector selector: `sel(DENIED, reason="expired")`; a value starting
    with `=~`, `!=` or `!~` is matched that way."""
    parts = []
    for label, value in matchers.items():
        op = value[:2] if value[:2] in ("=~", "!=", "!~") else "="
        text = value[len(op):] if op != "=" else value
        parts.append(f'{label}{op}"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return name + ("{" + ",".join(parts) + "}" if parts else "")


def prometheus3_le(bound: float) -> str:
    """A bucket bound as Prometheus 3 stores it in `le`: it rewrites what it
    scrapes to Go's shortest %g, with `.0` added to whole numbers
    (FormatOpenMetricsFloat), so Envoy's `le="604800"` is stored as
    `le="604800.0"` and `le="2592000"` as `le="2.592e+06"`. Prometheus 2
    stores the text as scraped."""
    if math.isinf(bound):
        return "+Inf" if bound > 0 else "-Inf"
    if bound in (0, 1, -1):
        return f"{bound:.1f}"
    sign, digit_tuple, exponent = Decimal(repr(float(bound))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # decimal point position, from the left of the digits
    minus = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:  # Go's %e range for the shortest %g
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        e = point - 1
        return f"{minus}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return minus + (text if "." in text else text + ".0")


def le(bound: float) -> str:
    """An `le` regex matching a bucket bound as Prometheus 2 (Envoy's text)
    and Prometheus 3 (normalised) store it: `le="604800"` alone never matches
    on Prometheus 3."""
    if math.isinf(bound):
        return "+Inf"  # the same on both
    envoy = str(int(bound)) if bound == int(bound) else repr(float(bound))  # as Envoy writes it
    forms = dict.fromkeys([envoy, prometheus3_le(bound)])
    return "=~" + "|".join(re.escape(f) for f in forms)


def bucket(bound: float, window: str) -> str:
    """Observations at or under `bound` seconds of remaining validity, summed
    over every gateway, within `window`."""
    return f"sum(increase({sel(REMAINING_BUCKET, le=le(bound))}[{window}]))"


def human(seconds: float) -> str:
    if math.isinf(seconds):
        return "∞"
    for unit, size in (("y", 31536000), ("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


# ---------------------------------------------------------------------------
# ALERTS

@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str  # critical: requests fail now; warning: act soon; info: for the license owners
    summary: str
    description: str
    for_: str | None = None


DECISIONS = [
    Alert("LicenseGateForgedTokens",
          f'sum(rate({sel(DENIED, reason="bad_signature")}[5m])) > 1',
          "warning", "license-gate denies more than one badly signed token per second",
          "Tokens whose signature does not verify: forged, or signed with a key the gateway does not know "
          "(a key rotation not rolled out yet?).",
          for_="10m"),
    Alert("LicenseGateLicensesInGrace",
          f"sum(increase({ALLOWED_GRACE}[1h])) > 0",
          "info", "requests are served on licenses past their expiry (grace period)",
          "Customers whose license expired and who are served only thanks to the grace period: renewals to "
          "chase before they are cut off."),
    Alert("LicenseGateLicensesExpiringWithinAWeek",
          f"{bucket(BUCKETS[2], '1h')}\n  - sum(increase({ALLOWED_GRACE}[1h])) > 0",
          "info", "requests carry licenses that expire within 7 days",
          "Requests in the last hour whose license expires within 7 days. Requests in the grace period are "
          "recorded with 0 s left and are taken out (LicenseGateLicensesInGrace reports them). The bucket "
          "matcher accepts le=\"604800\" (Prometheus 2) and le=\"604800.0\" (Prometheus 3)."),
    Alert("LicenseGateExpiredLicenses",
          f'sum(rate({sel(DENIED, reason="expired")}[15m])) > 0',
          "warning", "clients keep presenting expired licenses (past the grace period)",
          "Requests refused `expired` for 15 minutes on end: a customer whose license ran out is still "
          "calling.",
          for_="15m"),
    Alert("LicenseGateCacheMostlyMissing",
          f"sum(rate({CACHE_MISS}[10m]))\n"
          f"  > 0.5 * (sum(rate({CACHE_HIT}[10m])) + sum(rate({CACHE_MISS}[10m])))\n"
          f"and sum(rate({CACHE_MISS}[10m])) > 10",
          "warning", "most license checks miss the verdict cache",
          "Each miss is a signature check: far more misses than hits means tokens that change per request, "
          "or a flood of distinct tokens.",
          for_="15m"),
    Alert("LicenseGateKeysUnavailable",
          f'sum(rate({sel(DENIED, reason="keys_unavailable")}[5m])) > 0',
          "critical", "license-gate answers 503 keys_unavailable: no key set or revocation list in force",
          "Tokens whose key could only come from the fetched JWKS are refused while none is in force (never "
          "fetched, or older than max_stale_seconds), and with revocation.on_stale: deny every license is "
          "refused while the list is stale. See the key and revocation alerts for why.",
          for_="5m"),
]

KEYS = [
    Alert("LicenseGateNoRemoteKeys",
          f"{JWKS_KEYS} == 0",
          "critical", "the gateway has no fetched signing keys in force",
          "keys.remote is configured but no JWKS is in force: none fetched since the gateway started, or the "
          "last good one is past max_stale_seconds. Licenses signed with remote keys are refused 503 "
          "keys_unavailable. (The gauge exists only where keys.remote is configured.)",
          for_="5m"),
    Alert("LicenseGateKeysStale",
          f"{JWKS_AGE} > {JWKS_STALE_SECONDS}",
          "warning", f"the gateway's signing keys were last fetched more than {human(JWKS_STALE_SECONDS)} ago",
          "JWKS fetches keep failing; the last good key set serves until max_stale_seconds after its last "
          "successful fetch (default 24 h), then remote keys are dropped and their licenses refused. "
          "license_gate_jwks_fetch_failed{reason} says why."),
    Alert("LicenseGateRevocationListStale",
          f"{REVOCATION_AGE} > {REVOCATION_STALE_SECONDS}",
          "warning",
          f"the gateway's revocation list was last fetched more than {human(REVOCATION_STALE_SECONDS)} ago",
          "Licenses revoked since then are still accepted. With revocation.on_stale: deny, every license is "
          "refused once the list is past max_stale_seconds. "
          "license_gate_revocation_fetch_failed{reason} says why."),
    Alert("LicenseGateKeyFetchFailing",
          f"increase({JWKS_FETCH_FAILED}[10m]) > 0",
          "warning", "JWKS fetches keep failing",
          "Failed fetches of the JWKS for 15 minutes on end (reason: status, timeout, invalid, too_large); "
          "the last good key set stays in force meanwhile.",
          for_="15m"),
    Alert("LicenseGateRevocationFetchFailing",
          f"increase({REVOCATION_FETCH_FAILED}[10m]) > 0",
          "warning", "revocation list fetches keep failing",
          "Failed fetches of the revocation list for 15 minutes on end (reason: status, timeout, invalid, "
          "too_large; invalid includes a bad signature or an older list); the last good list stays in force "
          "meanwhile.",
          for_="15m"),
]

FETCH_FAILURES = (f"{WASM_REMOTE_LOAD_FAILURES} > 0\n"
                  f'or sum without (result) ({sel(ISTIO_AGENT_WASM_FETCHES, result="!=success")}) > 0')
MODULE = [
    Alert("LicenseGateModuleNotLoaded",
          f"(\n  {FETCH_FAILURES.replace(chr(10), chr(10) + '  ')}\n)\nunless {WASM_V8_ACTIVE} > 0",
          "critical", "the license-gate module failed to load: the gateway refuses every request",
          "A fetch of the Wasm module failed (istio-agent's download of the WasmPlugin's url, or Envoy's "
          "remote code fetch) and the gateway runs no Wasm VM: with failStrategy FAIL_CLOSE (fail_open: "
          "false) every request is refused. (A gateway that runs other V8 Wasm modules hides this alert.)",
          for_="1m"),
    Alert("LicenseGateModuleFetchFailing",
          f"increase({WASM_REMOTE_LOAD_FAILURES}[30m]) > 0\n"
          f'or sum without (result) (increase({sel(ISTIO_AGENT_WASM_FETCHES, result="!=success")}[30m])) > 0',
          "warning", "fetches of the Wasm module are failing",
          "istio-agent (result: download_failure, manifest_failure, checksum_mismatched) or Envoy could not "
          "fetch a Wasm module: a new version of license-gate is not rolled out, and a gateway that starts "
          "now would refuse every request. On Istio the count covers every WasmPlugin of the pod."),
]

QUOTAS = [
    Alert("LicenseGateTenantAtQuota",
          f'sum by (plan) (rate({sel(RATE_LIMITED, plan="!=" + DEFAULT_BUCKET)}[5m])) > 0',
          "warning", "requests of one plan are refused 429 by the quota limiter for 15 minutes on end",
          "A tenant on this plan is pinned at its quota: the rate limiter after license-gate has answered 429 "
          "to the plan's requests in every 5 minutes for 15 minutes. The access log names the tenant: the "
          "`tenant=` field of the 429 lines (envoy/gateway.yaml's format; on Istio, add "
          "tenant=%FILTER_STATE(wasm.license_gate.tenant:PLAIN)% to the gateway's access log format). "
          "Raise the plan's quota (plans.<plan>.quota in the WasmPlugin, then regenerate "
          "istio/quota-envoyfilter.yaml with licensectl quota), move the tenant to a larger plan, or accept "
          "it: the quota is doing its job. Refusals by the limiter's default bucket (plan _default: no "
          "tenant bucket) are left out.",
          for_="15m"),
]

GROUPS = {
    "license-gate": DECISIONS,
    "license-gate-keys": KEYS,
    "license-gate-module": MODULE,
    "license-gate-quota": QUOTAS,
}

ALL_ALERTS = [a for alerts in GROUPS.values() for a in alerts]


def block(text: str, indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in text.splitlines())


def quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def render_alerts() -> str:
    lines = [
        "# Alerts on license-gate's stats, for the Prometheus Operator. Generated by",
        "# istio/dashboard.py from the same series names as the dashboard: edit it",
        "# there and run `.venv/bin/python istio/dashboard.py`.",
        "#",
        "# Thresholds are starting points: tune them to your traffic. Every series",
        "# named here exists in a real Envoy's /stats/prometheus but",
        "# istio_agent_wasm_remote_fetch_count (istio-agent's) and every rule has a",
        "# firing and a quiet case in istio/alerts-test.yaml (promtool): both checked",
        "# by envoy/tests/test_observability.py.",
        "apiVersion: monitoring.coreos.com/v1",
        "kind: PrometheusRule",
        "metadata:",
        "  name: license-gate",
        "  namespace: istio-system",
        "spec:",
        "  groups:",
    ]
    for group, alerts in GROUPS.items():
        lines += [f"  - name: {group}", "    rules:"]
        for a in alerts:
            lines.append(f"    - alert: {a.name}")
            lines.append("      expr: |-")
            lines.append(block(a.expr, 8))
            if a.for_:
                lines.append(f"      for: {a.for_}")
            lines.append(f"      labels: {{severity: {a.severity}}}")
            lines.append("      annotations:")
            lines.append(f"        summary: {quoted(a.summary)}")
            lines.append(f"        description: {quoted(a.description)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# DASHBOARD

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


def query(expr: str, legend: str, ref: str, instant: bool = False) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    return q.instant() if instant else q.range()


def series_panel(title: str, description: str, unit: str, queries: list[tuple[str, str]],
                 stacked: bool = False, span: int = 12, thresholds: list[float] | None = None,
                 maximum: float | None = None) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
             .unit(unit).span(span).height(8).fill_opacity(10).min(0)
             .legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.LIST).placement(common.LegendPlacement.BOTTOM)))
    if maximum is not None:
        panel = panel.max(maximum)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if thresholds:
        steps = [Threshold(color="green", value=None), *(Threshold(color="red", value=t) for t in thresholds)]
        panel = (panel.thresholds(dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
                 .thresholds_style(common_builders.GraphThresholdsStyleConfig()
                                   .mode(common.GraphThresholdsStyleMode.DASHED)))
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(query(expr, legend, chr(ord("A") + i)))
    return panel


def remaining_validity_panel() -> bargauge.Panel:
    """Licensed requests over the dashboard's time range, by how long their
    license has left: one query per bucket (its count minus the one below),
    every bound matched in both the Prometheus 2 and the Prometheus 3 form."""
    bounds = [*BUCKETS, math.inf]
    panel = (bargauge.Panel().title("Licensed requests by remaining validity")
             .description("Requests with a valid license over the selected time range, by the time left until the "
                          "license's exp (requests in the grace period count as 0 s left). Buckets from "
                          "histogram_bucket_settings in the gateway's stats configuration.")
             .datasource(DATASOURCE).unit("short").decimals(0).min(0).span(12).height(8)
             .orientation(common.VizOrientation.HORIZONTAL)
             .display_mode(common.BarGaugeDisplayMode.GRADIENT)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    lower = None
    for i, upper in enumerate(bounds):
        expr = bucket(upper, "$__range")
        if lower is None:
            legend = f"≤ {human(upper)}"
        else:
            expr = f"{expr} - {bucket(lower, '$__range')}"
            legend = f"> {human(lower)}" if math.isinf(upper) else f"{human(lower)} to {human(upper)}"
        panel = panel.with_target(query(expr, legend, chr(ord("A") + i), instant=True))
        lower = upper
    return panel


# license-gate's alerts firing now (every alert name starts with ALERT_NAME_PREFIX).
FIRING = sel(ALERTS, alertstate="firing", alertname="=~" + ALERT_NAME_PREFIX + ".*")


def alerts_panel() -> table.Panel:
    return (table.Panel().title("Firing license-gate alerts")
            .description("Alerts of istio/alerts.yaml firing now, from Prometheus's ALERTS series.")
            .datasource(DATASOURCE).span(24).height(6).no_value("none firing")
            .with_target(prom.Dataquery().expr(f"sum by (alertname, severity) ({FIRING})")
                         .format(PromQueryFormat.TABLE).instant().ref_id("A"))
            .with_transformation(DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True, "Value": True},
                "renameByName": {"alertname": "alert"},
            })))


def all_decisions(window: str) -> str:
    return " + ".join(f"sum(rate({name}[{window}]))" for name in (ALLOWED, OPEN, DENIED, DRY_RUN_WOULD_DENY))


def build_dashboard() -> dict:
    r = RATE
    builder = (
        dash.Dashboard("license-gate")
        .uid("license-gate")
        .description("license-gate on the Istio ingress gateway: decisions, licenses, quotas, keys and "
                     "revocation, the Wasm module. Generated by istio/dashboard.py.")
        .tags(["license-gate", "istio"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))

        .with_row(dash.Row("Decisions"))
        .with_panel(series_panel(
            "Decisions per second by outcome",
            "Every request the filter decided: allowed on an active license, allowed in the grace period, on an "
            "open route, denied, or forwarded in dry run although enforcement would deny it.",
            "reqps",
            [(f"sum(rate({ALLOWED}[{r}])) - sum(rate({ALLOWED_GRACE}[{r}]))", "allowed"),
             (f"sum(rate({ALLOWED_GRACE}[{r}]))", "grace"),
             (f"sum(rate({OPEN}[{r}]))", "open"),
             (f"sum(rate({DENIED}[{r}]))", "denied"),
             (f"sum(rate({DRY_RUN_WOULD_DENY}[{r}]))", "dry run: would deny")],
            stacked=True))
        .with_panel(series_panel(
            "Denials by reason", "Denied requests per second, by reason code (README: Reason codes).", "reqps",
            [(f"sum by (reason) (rate({DENIED}[{r}])) > 0", "{{reason}}")], stacked=True))
        .with_panel(series_panel(
            "Deny ratio", "Denied requests as a share of every request the filter decided.", "percentunit",
            [(f"sum(rate({DENIED}[{r}])) / ({all_decisions(r)})", "denied")], maximum=1))
        .with_panel(series_panel(
            "Dry run: would deny, by reason",
            "In mode dry_run, requests forwarded that enforcement would have denied, by reason code.", "reqps",
            [(f"sum by (reason) (rate({DRY_RUN_WOULD_DENY}[{r}])) > 0", "{{reason}}")], stacked=True))

        .with_row(dash.Row("Licenses"))
        .with_panel(series_panel(
            "Traffic in the grace period",
            "Requests served on a license past its exp, within grace_period_seconds: renewals to chase.",
            "reqps",
            [(f"sum(rate({ALLOWED_GRACE}[{r}]))", "grace")]))
        .with_panel(remaining_validity_panel())
        .with_panel(series_panel(
            "Verdict cache hit ratio",
            "Share of license checks answered from the verdict cache; every miss may cost a signature check.",
            "percentunit",
            [(f"sum(rate({CACHE_HIT}[{r}])) / (sum(rate({CACHE_HIT}[{r}])) + sum(rate({CACHE_MISS}[{r}])))",
              "hit ratio")], maximum=1))
        .with_panel(series_panel(
            "Signature checks per second",
            "Signature verifications actually performed (cache misses whose claims passed).", "ops",
            [(f"sum(rate({SIGNATURE_VERIFICATIONS}[{r}]))", "signature checks")]))

        .with_row(dash.Row("Quotas"))
        .with_panel(series_panel(
            "Rate limited by plan",
            "Requests per second that the quota limiter after the gate refused (429), by the plan whose "
            "tenant bucket ran dry (_default: the limiter's default bucket, for open routes and licenses "
            "without a plan quota or a tenant). The access log's tenant= field on the 429 lines names the tenant.",
            "reqps",
            [(f"sum by (plan) (rate({RATE_LIMITED}[{r}])) > 0", "{{plan}}")], stacked=True, span=24))

        .with_row(dash.Row("Keys and revocation"))
        .with_panel(series_panel(
            "Key and revocation fetches",
            "Fetches of the JWKS (keys.remote) and of the revocation list (revocation.remote) per minute: good "
            "ones, and failed ones by reason. Empty where neither is configured.",
            "opm",
            [(f"sum(rate({JWKS_FETCH_SUCCESS}[{r}])) * 60", "JWKS ok"),
             (f"sum by (reason) (rate({JWKS_FETCH_FAILED}[{r}])) * 60 > 0", "JWKS failed: {{reason}}"),
             (f"sum(rate({REVOCATION_FETCH_SUCCESS}[{r}])) * 60", "revocation list ok"),
             (f"sum by (reason) (rate({REVOCATION_FETCH_FAILED}[{r}])) * 60 > 0",
              "revocation list failed: {{reason}}")],
            span=8))
        .with_panel(series_panel(
            "Age of the keys and of the revocation list",
            "Seconds since the last successful fetch, per gateway pod; the dashed lines are the alert thresholds "
            "(LicenseGateKeysStale, LicenseGateRevocationListStale).",
            "s",
            [(f"max by (pod) ({JWKS_AGE})", "JWKS {{pod}}"),
             (f"max by (pod) ({REVOCATION_AGE})", "revocation list {{pod}}")],
            span=8, thresholds=[REVOCATION_STALE_SECONDS, JWKS_STALE_SECONDS]))
        .with_panel(series_panel(
            "Keys and revoked ids in force",
            "Keys of the fetched JWKS in force (0: none, licenses signed with them are refused 503) and ids on "
            "the fetched revocation list, per gateway pod.",
            "short",
            [(f"min by (pod) ({JWKS_KEYS})", "keys {{pod}}"),
             (f"max by (pod) ({REVOCATION_IDS})", "revoked ids {{pod}}")],
            span=8))

        .with_row(dash.Row("Wasm module"))
        .with_panel(series_panel(
            "Wasm VMs",
            "V8 VMs running per gateway pod (one per worker thread and one on the main thread; 0 or none with "
            "a module that failed to load: every request is then refused) and VMs created.",
            "short",
            [(f"sum by (pod) ({WASM_V8_ACTIVE})", "active {{pod}}"),
             (f"sum by (pod) (increase({WASM_V8_CREATED}[{r}]))", "created {{pod}}")]))
        .with_panel(series_panel(
            "Module fetch failures",
            "Failed fetches of the Wasm module: Envoy's remote code fetch, and istio-agent's download of the "
            "WasmPlugin's url (every WasmPlugin of the pod), by result.",
            "short",
            [(f"sum by (pod) (increase({WASM_REMOTE_LOAD_FAILURES}[{r}]))", "Envoy {{pod}}"),
             (f'sum by (pod, result) (increase({sel(ISTIO_AGENT_WASM_FETCHES, result="!=success")}[{r}]))',
              "istio-agent {{pod}}: {{result}}")]))

        .with_row(dash.Row("Alerts"))
        .with_panel(alerts_panel())
    )
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    # Stable, distinct panel ids (the SDK leaves them at 0).
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    return model


def panel_queries(model: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [(p["title"], t["expr"]) for p in model["panels"] for t in p.get("targets", [])]


def render_dashboard(model: dict) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_configmap(dashboard_json: str) -> str:
    return "\n".join([
        "# license-gate's Grafana dashboard (istio/dashboard.json) for Grafana's",
        "# dashboard sidecar, which loads every ConfigMap labelled",
        '# grafana_dashboard: "1" in the namespaces it watches (kube-prometheus-stack:',
        "# grafana.sidecar.dashboards.searchNamespace, ALL or one including",
        "# istio-system). Generated by istio/dashboard.py: edit it there and run",
        "# `.venv/bin/python istio/dashboard.py`.",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: license-gate-dashboard",
        "  namespace: istio-system",
        "  labels:",
        '    grafana_dashboard: "1"',
        "data:",
        "  license-gate.json: |",
        block(dashboard_json.rstrip("\n"), 4),
    ]) + "\n"


def generate(out: Path) -> dict[str, str]:
    """Writes the three generated files into `out`; returns {name: text}."""
    dashboard_json = render_dashboard(build_dashboard())
    files = {
        "dashboard.json": dashboard_json,
        "dashboard-configmap.yaml": render_configmap(dashboard_json),
        "alerts.yaml": render_alerts(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    return files


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write into (default: istio/)")
    args = parser.parse_args(argv)
    for name in generate(args.out):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

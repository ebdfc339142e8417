"""The dashboard and the alerts of istio/ against what they observe:

- istio/dashboard.py generates the committed dashboard.json,
  dashboard-configmap.yaml and alerts.yaml (regenerated here, compared);
- promtool accepts the rules and passes istio/alerts-test.yaml, a firing and
  a quiet case for every alert, with histogram buckets in the Prometheus 2
  (`le="604800"`) and the Prometheus 3 (`le="604800.0"`) form;
- every series any panel or alert queries (parsed as PromQL) is exported by
  a real Envoy running the module with keys.remote and revocation.remote on
  and a plan with a quota behind the quota limiter (`licensectl quota`), but
  the few listed in dashboard.NOT_FROM_ENVOY; a real 429 of that limiter is
  counted under its plan, and its access log line names the tenant;
- the rules, fed what that Envoy exported, fire exactly as they should: a
  license expiring within the week on a healthy gateway (both `le` forms),
  LicenseGateModuleNotLoaded on a gateway whose module fetch failed.

promtool comes from Debian's prometheus package, installed with apt-get when
missing (as scripts/lib.sh installs binaryen)."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import pytest
import yaml

import licensectl
from conftest import ISSUER, key, mint, plugin_config
from gateway import ROOT, TEMPLATE, Envoy, render
from keyserver import JWKS_PATH, REVOCATIONS_PATH, KeyServer, public_jwk, revocation_list

ISTIO = ROOT / "istio"
ALERTS_YAML = ISTIO / "alerts.yaml"
ALERTS_TEST = ISTIO / "alerts-test.yaml"
DASHBOARD_JSON = ISTIO / "dashboard.json"
CONFIGMAP = ISTIO / "dashboard-configmap.yaml"
TARGET = {"namespace": "istio-system", "pod": "gw-real"}  # what a scrape of the gateway pod adds


def load_generator():
    spec = importlib.util.spec_from_file_location("license_gate_dashboard", ISTIO / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = load_generator()


# --- promtool ---------------------------------------------------------------

def promtool() -> str:
    """promtool from Debian's `prometheus` package, installed when missing
    (needs root, like the other apt-get installs of the scripts); never skipped."""
    found = shutil.which("promtool")
    if found:
        return found
    with open(Path(tempfile.gettempdir()) / "license-gate-apt.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not shutil.which("promtool"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (["apt-get", "update", "-qq"],
                            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]):
                proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
                assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}"
    found = shutil.which("promtool")
    assert found, "Debian's prometheus package brought no promtool"
    return found


def run_promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def alert_rules(alerts_text: str | None = None) -> list[dict]:
    doc = yaml.safe_load(alerts_text if alerts_text is not None else ALERTS_YAML.read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def write_rules(directory: Path, change_expr=None) -> Path:
    """The PrometheusRule's spec as the plain rule file promtool reads
    (alerts.rules.yaml, beside a copy of alerts-test.yaml). Annotations are
    left out: static text (checked below), which promtool would otherwise
    require every expected alert of the tests to repeat."""
    spec = yaml.safe_load(ALERTS_YAML.read_text())["spec"]
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
            if change_expr:
                rule["expr"] = change_expr(rule["expr"])
    path = directory / "alerts.rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(ALERTS_TEST, directory / ALERTS_TEST.name)
    return path


# --- Prometheus text and PromQL -----------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(name, labels, value) of every sample of a /stats/prometheus answer."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, body, value = match.groups()
        labels: dict[str, str] = {}
        pos, body = 0, body or ""
        while pos < len(body):
            label = LABEL.match(body, pos)
            assert label, f"bad labels in {line!r}"
            labels[label[1]] = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], label[2])
            pos = label.end()
        samples.append((name, labels, value))
    return samples


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}


def selectors(expr: str) -> list[tuple[str, list[tuple[str, object, str]]]]:
    """(metric name, [(label, op, value)]) of every vector selector of a
    PromQL expression (inside range selectors and subqueries too)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            assert not node.matchers.or_matchers, f"`or` inside a selector: {expr!r}"
            matchers = [(m.name, m.op, m.value) for m in node.matchers.matchers]
            name = node.name or next((v for label, op, v in matchers
                                      if label == "__name__" and op == promql_parser.MatchOp.Equal), None)
            assert name, f"a selector without a metric name in {expr!r}"
            found.append((name, [m for m in matchers if m[0] != "__name__"]))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def matches(labels: dict[str, str], matchers) -> bool:
    """Whether a series with `labels` is selected by `matchers` (a missing
    label is the empty string; regexes are anchored, as in PromQL)."""
    for label, op, want in matchers:
        got = labels.get(label, "")
        if op == promql_parser.MatchOp.Equal:
            ok = got == want
        elif op == promql_parser.MatchOp.NotEqual:
            ok = got != want
        elif op == promql_parser.MatchOp.Re:
            ok = re.fullmatch(want, got) is not None
        elif op == promql_parser.MatchOp.NotRe:
            ok = re.fullmatch(want, got) is None
        else:
            raise AssertionError(f"unknown matcher {op}")
        if not ok:
            return False
    return True


def queried() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel query of the committed dashboard and
    every committed alert."""
    model = json.loads(DASHBOARD_JSON.read_text())
    panels = [(f"panel {title!r}", expr) for title, expr in gen.panel_queries(model)]
    return panels + [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]


# --- real Envoy -----------------------------------------------------------------

K1 = ("RS256", "k1", "rsa")
DAY = 86_400


def remote(path: str) -> dict:
    return {"cluster": "license-keys", "path": path, "authority": "keys.example.com",
            "refresh_seconds": 2, "timeout_ms": 1000, "max_stale_seconds": 3600}


def bearer(**claims) -> dict:
    alg, kid, stem = K1
    return {"authorization": "Bearer " + mint(alg, key_file=f"{stem}.key.pem", kid=kid, **claims)}


def poll(check, seconds: float):
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def bucket_count(prom: str, le: str) -> float:
    return sum(float(v) for n, labels, v in parse_exposition(prom)
               if n == gen.REMAINING_BUCKET and labels.get("le") == le)


def scrape_when(envoy: Envoy, ready, seconds: float = 15) -> str:
    """/stats/prometheus once `ready` holds for it (histograms reach it at
    Envoy's stats flush, every 5 s), or "" after `seconds`."""
    def scrape() -> str:
        prom = envoy.admin("GET", "/stats/prometheus")[2]
        return prom if ready(prom) else ""
    return poll(scrape, seconds)


# The reference plans plus one with a quota: the plan with a quota (and the
# limiter's default bucket, `_default`) get license_gate_rate_limited{plan}.
QUOTA_PLAN, QUOTA_BURST = "basic", 2
PLANS = {**plugin_config()["plans"], QUOTA_PLAN: {"quota": {"requests_per_second": 1, "burst": QUOTA_BURST}}}
PLAN_LABELS = {QUOTA_PLAN, "_default"}
TENANT_AT_QUOTA = "t-at-quota"


def rate_limited(prom: str) -> dict[str, float]:
    """license_gate_rate_limited by plan label."""
    return {labels.get("plan", ""): float(v) for n, labels, v in parse_exposition(prom) if n == gen.RATE_LIMITED}


@dataclass(frozen=True)
class Observed:
    scrapes: tuple[str, str]
    quota_statuses: list[int]  # a tenant of QUOTA_PLAN sending until its first 429
    access_log: str


@pytest.fixture(scope="module")
def observed(upstream, tmp_path_factory) -> Observed:
    """Two scrapes of a gateway fetching its keys and revocation list from a
    key server, with the quota limiter `licensectl quota` generates after the
    gate: A after licensed traffic (30-day licenses) and one tenant of
    QUOTA_PLAN sent to its first 429, B after more traffic carrying licenses
    that expire in 3 days; and the gateway's access log."""
    alg, kid, stem = K1
    workdir = tmp_path_factory.mktemp("observability")
    with KeyServer() as keys:
        keys.serve_jwks([public_jwk(alg, kid, key(f"{stem}.pub.pem"))])
        keys.serve(REVOCATIONS_PATH, revocation_list(key(f"{stem}.key.pem"), alg, kid, ISSUER, ["lic-revoked"]))
        config = plugin_config(algorithms=["RS256"], keys={"remote": remote(JWKS_PATH)},
                               revocation={"remote": remote(REVOCATIONS_PATH)}, plans=PLANS)
        (workdir / "plugin.json").write_text(json.dumps(config))
        quota = licensectl.output(licensectl.build(), "quota", "--config", str(workdir / "plugin.json"),
                                  "--format", "local")
        with Envoy(config, upstream.port, key_server_port=keys.port, workdir=workdir / "envoy",
                   quota_filter=quota) as envoy:
            # The worker serving requests installs what was fetched at its next tick.
            assert poll(lambda: envoy.request("GET", "/api/data", bearer())[0] == 200
                        and envoy.request("GET", "/api/data", bearer(jti="lic-revoked"))[0] == 401, 10), \
                envoy.log()[-3000:]
            assert envoy.request("GET", "/api/data")[0] == 401
            # One tenant of QUOTA_PLAN until the quota limiter refuses it (a
            # refill may let one more through), once.
            statuses: list[int] = []
            for _ in range(QUOTA_BURST + 3):
                status, headers, body = envoy.request("GET", "/api/data",
                                                      bearer(plan=QUOTA_PLAN, tenant=TENANT_AT_QUOTA))
                statuses.append(status)
                if status == 429:
                    assert (body, headers["x-ratelimit-limit"]) == ("local_rate_limited", str(QUOTA_BURST))
                    break
            scrape_a = scrape_when(envoy, lambda prom: bucket_count(prom, "+Inf") > 0
                                   and rate_limited(prom).get(QUOTA_PLAN) == 1)
            assert scrape_a, f"the histogram or the 429 ({statuses}) never appeared"
            for _ in range(3):
                status, _, body = envoy.request("GET", "/api/data", bearer(exp_in=3 * DAY))
                assert status == 200, body
            before = bucket_count(scrape_a, "604800")
            scrape_b = scrape_when(envoy, lambda prom: bucket_count(prom, "604800") >= before + 3)
            assert scrape_b, "the 3-day licenses never reached the 7-day bucket"
        # Envoy writes its access log out when it stops.
        access_log = envoy.access_log_path.read_text()
    return Observed((scrape_a, scrape_b), statuses, access_log)


@pytest.fixture(scope="module")
def healthy(observed) -> tuple[str, str]:
    return observed.scrapes


@pytest.fixture(scope="module")
def module_not_loaded(upstream, tmp_path_factory) -> str:
    """A scrape of a gateway whose module fetch failed (vm_config.code.remote
    answered 404): every request refused."""
    local = 'local: {filename: "{{wasm_path}}"}'
    text = TEMPLATE.read_text()
    assert text.count(local) == 1, f"{TEMPLATE} no longer loads the module with `{local}`"
    template = tmp_path_factory.mktemp("remote-module") / "gateway.yaml"
    template.write_text(text.replace(local, (
        'remote: {http_uri: {uri: "http://127.0.0.1:{{key_server_port}}/license_gate.wasm", '
        'cluster: license-keys, timeout: 1s}, sha256: "' + "0" * 64 + '", retry_policy: {num_retries: 0}}')))
    with KeyServer() as keys, Envoy(plugin_config(), upstream.port, key_server_port=keys.port, template=template,
                                    workdir=tmp_path_factory.mktemp("module-not-loaded")) as envoy:
        assert poll(lambda: envoy.stat("wasm.remote_load_fetch_failures") == 1, 10), envoy.log()[-3000:]
        statuses = {envoy.request("GET", path, bearer())[0] for path in ("/api/data", "/healthz")}
        assert statuses == {503}, f"a gateway without its module answered {statuses}"
        return envoy.admin("GET", "/stats/prometheus")[2]


def series_file(directory: Path, scrapes: list[str], names: set[str], alerts: dict[str, list[dict]],
                le_form=None) -> Path:
    """A promtool test of the rules on scraped series: each scrape held for
    20 minutes, then the last to the hour; `alerts` gives the alerts expected
    at 40 minutes (every other alert must be quiet)."""
    values: dict[tuple, list[str]] = {}
    for i, scrape in enumerate(scrapes):
        for name, labels, value in parse_exposition(scrape):
            if name not in names:
                continue
            labels = {**labels, **TARGET}
            if le_form and "le" in labels:
                labels["le"] = le_form(labels["le"])
            values.setdefault((name, tuple(sorted(labels.items()))), [None] * len(scrapes))[i] = value
    series = []
    for (name, labels), points in sorted(values.items()):
        text = ",".join(f'{k}="{v}"' for k, v in labels)
        # `vxN`: v for N + 1 minutes; `_`: no sample (the series is absent from that scrape).
        runs = [f"{'_' if v is None else v}x{40 if i == len(points) - 1 else 19}" for i, v in enumerate(points)]
        series.append({"series": f"{name}{{{text}}}", "values": " ".join(runs)})
    tests = [{"eval_time": "40m", "alertname": name, "exp_alerts": alerts.get(name, [])}
             for name in (a.name for a in gen.ALL_ALERTS)]
    path = directory / "envoy-series-test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": ["alerts.rules.yaml"], "evaluation_interval": "1m",
                                    "tests": [{"interval": "1m", "input_series": series,
                                               "alert_rule_test": tests}]}, sort_keys=False))
    return path


# --- the generated files ------------------------------------------------------------

def test_the_committed_files_are_what_dashboard_py_generates(tmp_path):
    generated = gen.generate(tmp_path)
    assert sorted(generated) == ["alerts.yaml", "dashboard-configmap.yaml", "dashboard.json"]
    for name, text in generated.items():
        assert (tmp_path / name).read_text() == text
        assert (ISTIO / name).read_text() == text, f"istio/{name} is stale: run .venv/bin/python istio/dashboard.py"


def test_the_configmap_ships_the_dashboard_to_grafanas_sidecar():
    docs = [d for d in yaml.safe_load_all(CONFIGMAP.read_text()) if d]
    assert len(docs) == 1
    cm = docs[0]
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    assert cm["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert list(cm["data"]) == ["license-gate.json"]
    assert cm["data"]["license-gate.json"] == DASHBOARD_JSON.read_text()
    model = json.loads(cm["data"]["license-gate.json"])
    assert (model["uid"], model["title"]) == ("license-gate", "license-gate")


def test_the_dashboard_has_every_panel_the_issue_lists():
    model = json.loads(DASHBOARD_JSON.read_text())
    panels = model["panels"]
    assert [(p["type"], p["title"]) for p in panels] == [
        ("row", "Decisions"),
        ("timeseries", "Decisions per second by outcome"),
        ("timeseries", "Denials by reason"),
        ("timeseries", "Deny ratio"),
        ("timeseries", "Dry run: would deny, by reason"),
        ("row", "Licenses"),
        ("timeseries", "Traffic in the grace period"),
        ("bargauge", "Licensed requests by remaining validity"),
        ("timeseries", "Verdict cache hit ratio"),
        ("timeseries", "Signature checks per second"),
        ("row", "Quotas"),
        ("timeseries", "Rate limited by plan"),
        ("row", "Keys and revocation"),
        ("timeseries", "Key and revocation fetches"),
        ("timeseries", "Age of the keys and of the revocation list"),
        ("timeseries", "Keys and revoked ids in force"),
        ("row", "Wasm module"),
        ("timeseries", "Wasm VMs"),
        ("timeseries", "Module fetch failures"),
        ("row", "Alerts"),
        ("table", "Firing license-gate alerts"),
    ]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    outcome = next(p for p in panels if p["title"] == "Decisions per second by outcome")
    assert [t["legendFormat"] for t in outcome["targets"]] == ["allowed", "grace", "open", "denied",
                                                               "dry run: would deny"]
    variables = model["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in variables] == [("datasource", "datasource", "prometheus")]
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]


def test_the_firing_alerts_panel_shows_every_alert_of_alerts_yaml():
    model = json.loads(DASHBOARD_JSON.read_text())
    (expr,) = [e for title, e in gen.panel_queries(model) if title == "Firing license-gate alerts"]
    ((name, matchers),) = selectors(expr)
    assert name == "ALERTS"
    for rule in alert_rules():
        assert matches({"alertname": rule["alert"], "alertstate": "firing"}, matchers), rule["alert"]
    assert not matches({"alertname": "KubePodCrashLooping", "alertstate": "firing"}, matchers)
    assert not matches({"alertname": "LicenseGateForgedTokens", "alertstate": "pending"}, matchers)


# --- the alerts through promtool ------------------------------------------------------

def test_promtool_accepts_the_rules(tmp_path):
    rules = write_rules(tmp_path)
    proc = run_promtool("check", "rules", rules, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(gen.ALL_ALERTS)} rules found" in proc.stdout


def test_the_alert_unit_tests_pass(tmp_path):
    write_rules(tmp_path)
    proc = run_promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    names = [r["alert"] for r in alert_rules()]
    assert names == [a.name for a in gen.ALL_ALERTS]
    assert {c["alertname"] for c in cases} == set(names)
    for name in names:
        assert any(c["alertname"] == name and c["exp_alerts"] for c in cases), f"{name}: no test where it fires"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in cases), f"{name}: no quiet test"


def test_the_unit_tests_feed_histogram_buckets_in_both_le_forms():
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    les = set()
    for test in tests:
        for s in test["input_series"]:
            ((name, labels, _),) = parse_exposition(s["series"] + " 0")
            if name == gen.REMAINING_BUCKET:
                les.add(labels["le"])
    assert les == {str(b) for b in gen.BUCKETS} | {gen.prometheus3_le(b) for b in gen.BUCKETS} | {"+Inf"}


def test_an_integer_le_matcher_misses_what_prometheus_3_stores(tmp_path):
    """The bug the `le` regexes fix: with `le="604800"`, the alert stays
    silent on Prometheus 3's series, and its unit test says so."""
    rules = write_rules(tmp_path, lambda expr: re.sub(r'le=~"(\d+)\|[^"]*"', r'le="\1"', expr))
    exprs = [r["expr"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]]
    assert sum('{le="604800"}' in e for e in exprs) == 1 and not any("le=~" in e for e in exprs)
    proc = run_promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = re.findall(r"name: (.*),\n", proc.stdout + proc.stderr)
    assert failed == ["licenses with 3 days left fire, Prometheus 3 (le normalised to floats)"], proc.stdout


def test_prometheus_3_le_spelling_and_the_matchers():
    assert [gen.prometheus3_le(b) for b in (*gen.BUCKETS, 1, float("inf"))] == [
        "3600.0", "86400.0", "604800.0", "2.592e+06", "7.776e+06", "3.1536e+07", "1.0", "+Inf"]
    for bound in gen.BUCKETS:
        (_, ((_, op, regex),)), = selectors(gen.sel(gen.REMAINING_BUCKET, le=gen.le(bound)))
        assert op == promql_parser.MatchOp.Re
        forms = [label for label in (str(bound), gen.prometheus3_le(bound), f"{bound}.5", f"1{bound}")
                 if re.fullmatch(regex, label)]
        assert forms == [str(bound), gen.prometheus3_le(bound)]


def test_annotations_are_static_text():
    for rule in alert_rules():
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        assert not any("{{" in text for text in rule["annotations"].values()), rule["alert"]
        assert rule["alert"].startswith(gen.ALERT_NAME_PREFIX)
        assert rule["labels"]["severity"] in ("critical", "warning", "info")


def test_the_buckets_are_the_gateways():
    gateway = yaml.safe_load(render({}, 1, 2, 3, ROOT / "access.log"))
    (setting,) = [s for s in gateway["stats_config"]["histogram_bucket_settings"]
                  if s["match"] == {"prefix": "wasmcustom.license_gate.license_remaining_seconds"}]
    assert tuple(setting["buckets"]) == gen.BUCKETS


# --- against real Envoy ------------------------------------------------------------

def test_every_queried_series_is_exported_by_envoy(healthy):
    _, scrape = healthy
    samples = parse_exposition(scrape)
    exported = {name for name, _, _ in samples}
    missing, exempt_queried = [], set()
    for where, expr in queried():
        for name, matchers in selectors(expr):
            if name in gen.NOT_FROM_ENVOY:
                exempt_queried.add(name)
                assert name not in exported, f"{name} is exempt but Envoy exports it"
            elif not any(n == name and matches(labels, matchers) for n, labels, _ in samples):
                missing.append(f"{where}: {name}{matchers}")
    assert not missing, "queried but not exported by Envoy:\n" + "\n".join(missing)
    assert exempt_queried == set(gen.NOT_FROM_ENVOY), "NOT_FROM_ENVOY lists a series nothing queries"
    # The histogram's buckets, as Envoy exports them.
    les = [labels["le"] for name, labels, _ in samples if name == gen.REMAINING_BUCKET]
    assert les == [str(b) for b in gen.BUCKETS] + ["+Inf"]
    # The reason label, from the stats tag rule, on every reason-labelled counter.
    for name in (gen.DENIED, gen.DRY_RUN_WOULD_DENY, gen.JWKS_FETCH_FAILED, gen.REVOCATION_FETCH_FAILED):
        label_sets = [labels for n, labels, _ in samples if n == name]
        assert label_sets and all(set(labels) == {"reason"} for labels in label_sets), name
    assert {labels["reason"] for n, labels, _ in samples if n == gen.JWKS_FETCH_FAILED} == {
        "status", "timeout", "invalid", "too_large"}
    # The plan label, from its stats tag rule: every plan, `none` and
    # `other`, and the one 429 of the quota limiter under its plan.
    label_sets = [labels for n, labels, _ in samples if n == gen.RATE_LIMITED]
    assert label_sets and all(set(labels) == {"plan"} for labels in label_sets)
    assert rate_limited(scrape) == {plan: (1 if plan == QUOTA_PLAN else 0) for plan in PLAN_LABELS}


def test_a_quota_429_is_counted_under_its_plan_and_logged_with_its_tenant(observed):
    """What LicenseGateTenantAtQuota and the "Rate limited by plan" panel
    rely on: the 429 of the limiter after the gate counted once, under the
    license's plan, and the access log line of that 429 naming the tenant."""
    statuses = observed.quota_statuses
    assert statuses in ([200] * QUOTA_BURST + [429], [200] * (QUOTA_BURST + 1) + [429]), statuses
    for scrape in observed.scrapes:
        assert rate_limited(scrape)[QUOTA_PLAN] == 1
    refused = re.findall(r'^\[[^]]*\] "GET /api/data" 429 (.*)$', observed.access_log, re.M)
    assert refused == [f"license=allow reason=- license_id=lic-0001 tenant={TENANT_AT_QUOTA}"], \
        observed.access_log[-3000:]


@pytest.mark.parametrize("form", ["prometheus 2", "prometheus 3"])
def test_the_rules_on_a_healthy_gateways_series(healthy, tmp_path, form):
    """Real series, 3-day licenses arriving between the two scrapes: only
    LicenseGateLicensesExpiringWithinAWeek fires, whichever way `le` is stored."""
    write_rules(tmp_path)
    names = {name for rule in alert_rules() for name, _ in selectors(rule["expr"])}
    test = series_file(tmp_path, list(healthy), names,
                       {"LicenseGateLicensesExpiringWithinAWeek": [{"exp_labels": {"severity": "info"}}]},
                       le_form=(lambda le: gen.prometheus3_le(float(le))) if form == "prometheus 3" else None)
    text = test.read_text()
    assert ('le="604800.0"' in text) == (form == "prometheus 3")
    proc = run_promtool("test", "rules", test.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rules_on_a_gateway_whose_module_did_not_load(module_not_loaded, tmp_path):
    samples = parse_exposition(module_not_loaded)
    assert not [n for n, _, _ in samples if n.startswith(gen.PREFIX)]
    assert gen.WASM_V8_ACTIVE not in {n for n, _, _ in samples}
    write_rules(tmp_path)
    names = {name for rule in alert_rules() for name, _ in selectors(rule["expr"])}
    test = series_file(tmp_path, [module_not_loaded], names, {
        "LicenseGateModuleNotLoaded": [{"exp_labels": {"severity": "critical", **TARGET}}]})
    proc = run_promtool("test", "rules", test.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

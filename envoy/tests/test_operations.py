"""Operating license-gate in a real Envoy: exact stats, the cache across
workers, the access log, refused configurations, path tricks, and the demo."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import mint, plugin_config
from gateway import ROOT, Envoy, free_port, request


def stats(envoy: Envoy) -> dict[str, int]:
    """license-gate counters, without Envoy's `wasmcustom.` prefix."""
    _, _, body = envoy.admin("GET", "/stats?filter=^wasmcustom\\.license_gate\\.&format=json")
    out = {}
    for stat in json.loads(body)["stats"]:
        if "value" in stat:
            out[stat["name"].removeprefix("wasmcustom.")] = stat["value"]
    return out


def nonzero(envoy: Envoy) -> dict[str, int]:
    return {k: v for k, v in stats(envoy).items() if v}


def poll(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def fresh(upstream, tmp_path):
    """A fresh Envoy (two workers) per test, so stat values start at zero."""
    with Envoy(plugin_config(), upstream.port, concurrency=2, workdir=tmp_path) as envoy:
        yield envoy


def test_exact_stats_after_a_known_sequence(fresh):
    pro = mint(plan="pro", jti="lic-pro")
    basic = mint(alg="ES256")
    forged = mint(key_file="rsa-other.key.pem")
    foreign = mint(iss="https://evil.example.com")
    sequence = [
        ("/api/reports", pro, 200), ("/api/reports", pro, 200), ("/api/data", pro, 200),
        ("/api/reports", basic, 403), ("/api/reports", basic, 403),
        ("/api/data", forged, 401), ("/api/data", forged, 401),
        ("/api/data", foreign, 401), ("/api/data", foreign, 401),
        ("/healthz", None, 200), ("/internal/x", pro, 403), ("/api/data", None, 401),
    ]
    conn = http.client.HTTPConnection("127.0.0.1", fresh.listen_port, timeout=10)
    for path, token, status in sequence:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        assert fresh.request("GET", path, headers, conn=conn)[0] == status, path
    assert nonzero(fresh) == {
        "license_gate.allowed": 3,
        "license_gate.open": 1,
        "license_gate.cache_hit": 5,
        "license_gate.cache_miss": 4,
        "license_gate.signature_verifications": 3,
        "license_gate.reason=.=feature_missing;.;denied": 2,
        "license_gate.reason=.=bad_signature;.;denied": 2,
        "license_gate.reason=.=issuer_mismatch;.;denied": 2,
        "license_gate.reason=.=route_denied;.;denied": 1,
        "license_gate.reason=.=missing;.;denied": 1,
    }

    # The reason becomes a Prometheus label.
    _, _, prom = fresh.admin("GET", "/stats/prometheus")
    assert 'license_gate_denied{reason="bad_signature"} 2' in prom
    assert 'license_gate_denied{reason="expired"} 0' in prom
    assert "license_gate_cache_hit{} 5" in prom
    # The remaining-validity histogram (pro x3, basic x2) after the next flush.
    poll(lambda: "license_gate_license_remaining_seconds_count{} 5" in fresh.admin("GET", "/stats/prometheus")[2],
         what="the histogram flush")
    _, _, prom = fresh.admin("GET", "/stats/prometheus")
    assert 'license_gate_license_remaining_seconds_bucket{le="2592000"} 5' in prom  # all within 30 days
    assert 'license_gate_license_remaining_seconds_bucket{le="604800"} 0' in prom

    # The access log carries the decision, reason, license id and tenant.
    log = poll(lambda: fresh.access_log_path.exists()
               and fresh.access_log_path.read_text().count("\n") >= len(sequence)
               and fresh.access_log_path.read_text(), what="the access log")
    assert '"GET /api/reports" 200 license=allow reason=- license_id=lic-pro tenant=acme' in log
    assert '"GET /api/reports" 403 license=deny reason=feature_missing license_id=lic-0001 tenant=acme' in log
    assert '"GET /api/data" 401 license=deny reason=bad_signature license_id=- tenant=-' in log
    assert '"GET /healthz" 200 license=open reason=- license_id=- tenant=-' in log


def worker_connections(envoy: Envoy) -> list[int]:
    _, _, body = envoy.admin("GET", "/stats?filter=worker_.\\.downstream_cx_total&format=json")
    found = [s for s in json.loads(body)["stats"] if f"_{envoy.listen_port}.worker_" in s["name"]]
    return [s["value"] for s in sorted(found, key=lambda s: s["name"])]


def test_a_token_verified_on_one_worker_is_a_hit_on_the_other(fresh):
    token = mint(alg="EdDSA")
    for _ in range(24):  # a new connection each: the kernel spreads them over both workers
        assert fresh.request("GET", "/api/data", {"authorization": f"Bearer {token}"})[0] == 200
    per_worker = worker_connections(fresh)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker), per_worker
    assert nonzero(fresh) == {
        "license_gate.allowed": 24,
        "license_gate.cache_miss": 1,
        "license_gate.cache_hit": 23,
        "license_gate.signature_verifications": 1,
    }


def test_a_bad_configuration_is_refused_with_the_filters_line(upstream, tmp_path):
    bad = plugin_config(rules=[{"match": {"prefix": "/"}, "require": {"all": "reports"}}])
    envoy = Envoy(bad, upstream.port, workdir=tmp_path)
    code = envoy.run_to_exit(timeout=60)
    assert code != 0
    assert ('license-gate: config: rules[0].require.all: invalid type: string "reports", expected a sequence'
            in envoy.log()), envoy.log()[-3000:]


PATH_TRICKS = [
    # path as sent, expected status without a token (the /admin rule needs a license)
    ("/admin", 401),
    ("/healthz/../admin", 401),       # normalize_path: not the open /healthz rule
    ("//admin", 401),                 # merge_slashes
    ("/%61dmin", 401),                # %61 is "a": decoded by normalize_path
    ("/healthz/%2E%2E/admin", 401),   # encoded dots
    ("/ADMIN", 403),                  # case-sensitive: no rule matches, default deny
    ("/admin?next=/healthz", 401),    # the query string is not the path
    ("/healthz?next=/admin", 200),    # ... in either direction
]


@pytest.mark.parametrize("path,status", PATH_TRICKS, ids=[p for p, _ in PATH_TRICKS])
def test_path_tricks_do_not_bypass_a_rule(gateway, path, status):
    got, _headers, body = gateway.request("GET", path)
    assert got == status, body
    if status == 200:
        assert json.loads(body)["path"] == path


def test_escaped_slashes_are_redirected_not_matched(gateway):
    # path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT sends the client to
    # the unescaped path instead of letting /healthz%2F..%2Fadmin reach a rule,
    # and the filter never sees the escaped form.
    status, headers, _ = gateway.request("GET", "/healthz%2F..%2Fadmin")
    assert status == 307
    assert headers["location"] == "/admin"   # unescaped, then normalised
    status, _, _ = gateway.request("GET", headers["location"])
    assert status == 401


def test_the_demo_prints_working_curl_lines_and_stops_on_ctrl_c(tmp_path):
    import licensectl

    ctl = licensectl.build()
    port, admin = free_port(), free_port()
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "envoy" / "demo.py"), "--licensectl", str(ctl),
         "--port", str(port), "--admin-port", str(admin),
         "--upstream-port", str(free_port()), "--keys-port", str(free_port()),
         "--demo-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops"):
                break
        curls = [line for line in lines if line.startswith("curl ")]
        assert len(curls) == 5, "".join(lines)
        results = []
        for line in curls:
            m = re.match(r'curl -i http://127\.0\.0\.1:(\d+)(\S+) -H "Authorization: Bearer \$\(cat (\S+)\)"', line)
            assert m, line
            token = Path(m.group(3)).read_text()
            status, _, body = request(int(m.group(1)), "GET", m.group(2), {"authorization": f"Bearer {token}"})
            grace = json.loads(body)["headers"].get("x-license-status") if status == 200 else None
            results.append((status, grace, json.loads(body).get("error")))
        assert results == [(200, ["active"], None), (401, None, "expired"),
                           (403, None, "feature_missing"), (200, ["grace"], None), (401, None, "revoked")]
        # Beside each curl line, the licensectl check line giving the same answer offline.
        checks = [lines[lines.index(line) + 1].strip() for line in curls]
        verdicts = []
        for line in checks:
            command, redirect, token_file = line.rpartition(" < ")
            argv = shlex.split(command)
            assert redirect and argv[:2] == [str(ctl), "check"], line
            with open(shlex.split(token_file)[0]) as stdin:
                proc = subprocess.run([*argv, "--json"], stdin=stdin, capture_output=True, text=True, timeout=30)
            out = json.loads(proc.stdout)
            verdicts.append((proc.returncode, out["outcome"], out["reason"], out["status"]))
        assert verdicts == [(0, "allow", None, None), (1, "deny", "expired", 401),
                            (1, "deny", "feature_missing", 403), (0, "grace", None, None),
                            (1, "deny", "revoked", 401)]
        assert "import jwt" not in (ROOT / "envoy" / "demo.py").read_text()  # no Python minting left
        # The quota line: the basic tenant's burst of 5, then Envoy's limiter answers 429.
        (loop,) = [line for line in lines if line.startswith("for i in $(seq 7)")]
        m = re.search(r'\$\(cat (\S+)\)\\?" http://127\.0\.0\.1:(\d+)(\S+); done', loop)
        assert m, loop
        token = Path(m.group(1)).read_text()
        statuses = [request(int(m.group(2)), "GET", m.group(3), {"authorization": f"Bearer {token}"})[0]
                    for _ in range(7)]
        assert statuses[:5] == [200] * 5 and 429 in statuses, statuses
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=20)
    assert demo.returncode == 0, rest
    assert "stopped." in rest
    with pytest.raises(OSError):
        request(admin, "GET", "/ready")


def test_one_slot_cache_never_serves_another_tokens_verdict(upstream, tmp_path):
    # Every token shares the one slot: each lookup must still see its own verdict.
    with Envoy(plugin_config(cache={"max_entries": 1}), upstream.port, concurrency=2,
               workdir=tmp_path) as envoy:
        pro = mint(plan="pro", tenant="acme")
        basic = mint(alg="ES256", tenant="globex")
        expired = mint(alg="EdDSA", exp=1)
        for _ in range(3):
            status, _, body = envoy.request("GET", "/api/reports", {"authorization": f"Bearer {pro}"})
            assert status == 200 and json.loads(body)["headers"]["x-license-tenant"] == ["acme"]
            status, _, body = envoy.request("GET", "/api/reports", {"authorization": f"Bearer {basic}"})
            assert (status, json.loads(body)["error"]) == (403, "feature_missing")
            status, _, body = envoy.request("GET", "/api/data", {"authorization": f"Bearer {basic}"})
            assert status == 200 and json.loads(body)["headers"]["x-license-tenant"] == ["globex"]
            status, _, body = envoy.request("GET", "/api/data", {"authorization": f"Bearer {expired}"})
            assert (status, json.loads(body)["error"]) == (401, "expired")

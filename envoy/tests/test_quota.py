"""Quotas per plan and tenant, enforced by Envoy's own local rate limiter
after the gate, in real Envoy with two workers. The limiter's configuration
is what `licensectl quota --format local` generates from the plugin
configuration; license-gate's part is the x-license-plan/x-license-tenant
headers it sets (and removes from clients). Counts of 200/429 in bounded
bursts, never timings: each bucket refills one token per second, so a burst
sent in well under a second sees the bucket's size, or one more when a
refill lands inside it."""

from __future__ import annotations

import json
import subprocess

import pytest

import licensectl
from conftest import mint, plugin_config
from gateway import Envoy, PerIp, envoy_binary

PLANS = {
    "basic": {"quota": {"requests_per_second": 1, "burst": 2}},
    "pro": {"features": ["reports"], "quota": {"requests_per_second": 1, "burst": 5}},
    # No quota of its own: pro's, inherited.
    "enterprise": {"inherits": ["pro"], "features": ["sso", "audit"]},
}
DEFAULT_BURST = 3
QUOTA_ARGS = ["--tenants", "50", "--default-requests-per-second", "1", "--default-burst", str(DEFAULT_BURST)]
RATE_LIMITED = "wasmcustom.license_gate.plan=.={};.;rate_limited"


def generated(tmp_path, config: dict, fmt: str = "local", *extra: str) -> str:
    binary = licensectl.build()
    path = tmp_path / "plugin.json"
    path.write_text(json.dumps(config))
    return licensectl.output(binary, "quota", "--config", str(path), "--format", fmt, *QUOTA_ARGS, *extra)


@pytest.fixture(scope="module")
def binary():
    return licensectl.build()


def start(upstream, tmp_path, config: dict, **kwargs) -> Envoy:
    quota = generated(tmp_path, config)
    return Envoy(config, upstream.port, concurrency=2, workdir=tmp_path / "envoy", quota_filter=quota,
                 **kwargs).start()


@pytest.fixture(scope="module")
def gw(upstream, tmp_path_factory):
    envoy = start(upstream, tmp_path_factory.mktemp("quota"), plugin_config(plans=PLANS))
    yield envoy
    envoy.stop()


def burst(gw: Envoy, n: int, path: str = "/api/data", token: str | None = None,
          headers: dict | None = None) -> list[tuple[int, dict, str]]:
    """`n` requests, each on its own connection (so both workers serve them)."""
    sent = dict(headers or {})
    if token:
        sent["authorization"] = f"Bearer {token}"
    return [gw.request("GET", path, sent) for _ in range(n)]


def count(replies, status: int) -> int:
    return sum(1 for s, _, _ in replies if s == status)


def assert_bucket(replies, size: int):
    """The first `size` pass, at most one more (a refill), and the rest are 429."""
    statuses = [s for s, _, _ in replies]
    ok = count(replies, 200)
    assert size <= ok <= size + 1, statuses
    assert statuses[:size] == [200] * size, statuses
    assert count(replies, 429) == len(replies) - ok, statuses


def test_a_pro_tenant_gets_its_burst_then_429_with_rate_limit_headers(gw):
    before = gw.stat(RATE_LIMITED.format("pro"))
    replies = burst(gw, 9, token=mint(plan="pro", tenant="t-pro-1"))
    assert_bucket(replies, 5)
    status, headers, body = replies[-1]
    assert status == 429
    assert headers["x-ratelimit-limit"] == "5"
    assert headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) in (0, 1)
    assert body == "local_rate_limited"
    # Counted by the gate, under the plan it put on the request.
    assert gw.stat(RATE_LIMITED.format("pro")) - before == count(replies, 429)
    _, ok_headers, ok_body = replies[0]
    assert ok_headers["x-ratelimit-limit"] == "5"
    assert json.loads(ok_body)["headers"]["x-license-plan"] == ["pro"]


def test_a_second_pro_tenant_is_not_slowed_by_the_first(gw):
    assert count(burst(gw, 8, token=mint(plan="pro", tenant="t-pro-a")), 429) >= 2
    assert_bucket(burst(gw, 7, token=mint(plan="pro", tenant="t-pro-b")), 5)


def test_a_basic_tenant_gets_basics_rate(gw):
    assert_bucket(burst(gw, 5, token=mint(plan="basic", tenant="t-basic")), 2)


def test_a_plan_without_a_quota_of_its_own_inherits_one(gw):
    assert_bucket(burst(gw, 8, token=mint(plan="enterprise", tenant="t-ent")), 5)


def test_forged_plan_and_tenant_headers_change_nothing_on_licensed_routes(gw):
    tok = mint(plan="basic", tenant="t-forger")
    assert_bucket(burst(gw, 4, token=tok), 2)
    # The bucket is the license's, whatever the client claims: another
    # tenant, another plan, or both, in any case and with underscores.
    # x-ratelimit-limit names the bucket: basic's is 2 (pro's 5, the default 3).
    statuses = []
    for forged in ({"x-license-tenant": "t-fresh-1"}, {"x-license-plan": "enterprise"},
                   {"x-license-plan": "pro", "x-license-tenant": "t-fresh-2"},
                   {"X-License-Tenant": "t-fresh-3", "X-LICENSE-PLAN": "pro"}):
        status, headers, _ = burst(gw, 1, token=tok, headers=forged)[0]
        assert headers.get("x-ratelimit-limit") == "2", forged
        statuses.append(status)
    # The tenant's bucket is empty: at most one refill lands in between.
    assert statuses.count(429) >= 3, statuses


def test_forged_plan_and_tenant_headers_change_nothing_on_open_routes(gw, upstream):
    # An exhausted tenant's name sent on an open route: the request carries
    # no plan quota (the default bucket), and the upstream sees no forged header.
    assert count(burst(gw, 8, token=mint(plan="pro", tenant="t-open")), 429) >= 2
    status, headers, body = burst(gw, 1, path="/healthz",
                                  headers={"x-license-plan": "pro", "x-license-tenant": "t-open"})[0]
    assert status == 200
    assert headers["x-ratelimit-limit"] == str(DEFAULT_BURST)
    seen = json.loads(body)["headers"]
    assert "x-license-plan" not in seen and "x-license-tenant" not in seen


def test_a_license_without_a_plan_shares_the_default_bucket(upstream, tmp_path):
    gw = start(upstream, tmp_path, plugin_config(plans=PLANS))
    try:
        # Two tenants, no plan, no default_plan: one bucket between them.
        first = burst(gw, 2, token=mint(plan=None, tenant="t-none-1"))
        second = burst(gw, 4, token=mint(plan=None, tenant="t-none-2"))
        assert_bucket(first + second, DEFAULT_BURST)
        assert json.loads(first[0][2])["headers"].get("x-license-plan") is None
        assert gw.stat(RATE_LIMITED.format("_default")) == count(second, 429)
    finally:
        gw.stop()


def test_a_license_without_a_plan_is_on_the_default_plan(upstream, tmp_path):
    gw = start(upstream, tmp_path, plugin_config(plans=PLANS, default_plan="basic"))
    try:
        replies = burst(gw, 4, token=mint(plan=None, tenant="t-default"))
        assert_bucket(replies, 2)
        assert json.loads(replies[0][2])["headers"]["x-license-plan"] == ["basic"]
        # Another tenant on the default plan has its own bucket.
        assert_bucket(burst(gw, 4, token=mint(plan=None, tenant="t-default-2")), 2)
        assert gw.stat(RATE_LIMITED.format("basic")) >= 2
    finally:
        gw.stop()


def test_a_license_without_a_tenant_on_a_quota_plan_is_its_own_tenant(gw):
    # No tenant claim: its license id keys the bucket, so it cannot escape
    # the plan's quota through the default bucket.
    replies = burst(gw, 5, token=mint(plan="basic", tenant=None, jti="lic-no-tenant"))
    assert_bucket(replies, 2)
    assert json.loads(replies[0][2])["headers"]["x-license-tenant"] == ["lic-no-tenant"]
    assert replies[-1][1]["x-ratelimit-limit"] == "2"
    # Another license without a tenant has a bucket of its own.
    assert_bucket(burst(gw, 4, token=mint(plan="basic", tenant=None, jti="lic-no-tenant-2")), 2)


def test_requests_the_gate_denies_never_reach_the_quota(gw):
    tok = mint(plan="basic", tenant="t-denied")
    # /api/reports needs `reports`, which basic lacks: 403, and the tenant's
    # bucket is untouched.
    replies = burst(gw, 6, path="/api/reports", token=tok)
    assert [s for s, _, _ in replies] == [403] * 6
    assert all("x-ratelimit-limit" not in h for _, h, _ in replies)
    assert_bucket(burst(gw, 4, token=tok), 2)


def test_a_per_ip_flood_guard_in_front_of_the_gate_stops_bad_tokens(upstream, tmp_path):
    gw = start(upstream, tmp_path, plugin_config(plans=PLANS), per_ip=PerIp(requests_per_second=1, burst=4))
    try:
        bad = mint(plan="pro", tenant="t-flood", exp_in=-10 ** 6)
        # A spoofed X-Forwarded-For does not make a new client.
        replies = [gw.request("GET", "/api/data", {"authorization": f"Bearer {bad}",
                                                     "x-forwarded-for": f"10.0.0.{i}"}) for i in range(10)]
        statuses = [s for s, _, _ in replies]
        assert 4 <= statuses.count(401) <= 5, statuses
        assert statuses.count(429) == 10 - statuses.count(401), statuses
        # Only what passed the guard reached the gate.
        assert gw.stat("wasmcustom.license_gate.reason=.=expired;.;denied") == statuses.count(401)
        assert gw.stat("per_ip_flood_guard.http_local_rate_limit.rate_limited") == statuses.count(429)
    finally:
        gw.stop()


# --- the generated configurations -------------------------------------------------

def envoy_validate(bootstrap: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "validate.yaml"
    path.write_text(bootstrap)
    return subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(path)], capture_output=True, text=True,
                          timeout=120)


BOOTSTRAP = """\
static_resources:
  listeners:
  - name: gateway
    address: {{socket_address: {{address: 127.0.0.1, port_value: 10000}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: gateway
          route_config:
            virtual_hosts:
            - {{name: all, domains: ["*"], routes: [{{match: {{prefix: "/"}}, route: {{cluster: ratelimit}}}}]}}
          http_filters:
{filters}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: ratelimit
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: ratelimit
      endpoints:
      - lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 8081}}}}}}}}]
"""


@pytest.mark.parametrize("fmt", ["local", "global-filter"])
def test_the_generated_envoy_filters_pass_envoy_validate(tmp_path, fmt):
    block = generated(tmp_path, plugin_config(plans=PLANS), fmt)
    filters = "\n".join(" " * 10 + line for line in block.splitlines())
    proc = envoy_validate(BOOTSTRAP.format(filters=filters), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "OK" in proc.stdout


def test_the_global_service_configuration_has_one_counter_per_tenant_of_each_plan(tmp_path):
    import yaml

    service = yaml.safe_load(generated(tmp_path, plugin_config(plans=PLANS), "global"))
    assert service == {"domain": "license-gate", "descriptors": [
        {"key": "license_plan", "value": plan, "descriptors": [
            {"key": "license_tenant", "rate_limit": {"unit": "second", "requests_per_unit": 1}}]}
        for plan in ("basic", "enterprise", "pro")]}

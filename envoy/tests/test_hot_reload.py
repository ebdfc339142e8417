"""Hot reload: Envoy delivers a changed plugin configuration without a
restart. On a machine that is file-based dynamic resources: the listener's
license-gate filter comes from an extension config (ECDS) that Envoy watches
on disk, as an Istio gateway gets it over xDS. While requests keep flowing,
a new rule, a new key and dry_run -> enforce take effect with no failed
request; a bad configuration is rejected (and counted) while the previous one
keeps serving (Envoy's update_rejected counts it); no verdict cached under one configuration is served under the
next."""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import ISSUER, key, mint, plugin_config, until
from gateway import Ecds, Envoy, ecds_template


class Load:
    """Requests in a loop on one connection per thread (bounded), recording
    every status, while the configuration changes under them."""

    def __init__(self, envoy: Envoy, headers: dict, path: str = "/api/reports"):
        self.envoy, self.headers, self.path = envoy, headers, path
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            status, _, _ = self.envoy.request("GET", self.path, self.headers)
            self.statuses.append(status)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def answer(envoy: Envoy, token: str, path: str = "/api/reports") -> tuple[int, str | None]:
    status, _headers, body = envoy.request("GET", path, {"authorization": f"Bearer {token}"})
    if status == 200:
        return 200, json.loads(body)["headers"].get("x-license-dry-run", [None])[0]
    return status, json.loads(body)["error"]


@pytest.fixture
def reloadable(upstream, tmp_path):
    ecds = Ecds(tmp_path / "license-gate.ecds.json")
    ecds.publish(plugin_config(mode="dry_run"))
    # Dynamic resources need a node id and cluster, as a gateway has.
    envoy = Envoy({}, upstream.port, concurrency=2, workdir=tmp_path, template=ecds_template(tmp_path, ecds.path),
                  extra_args=["--service-node", "gateway-1", "--service-cluster", "gateway"]).start()
    try:
        yield envoy, ecds
    finally:
        envoy.stop()


def config_stat(envoy: Envoy, name: str) -> int:
    return envoy.stat(f"extension_config_discovery.http_filter.license-gate.{name}")


def test_configuration_changes_apply_while_traffic_flows(reloadable):
    envoy, ecds = reloadable
    pid = envoy.process.pid
    basic = mint()  # no `reports` feature
    assert answer(envoy, basic) == (200, "feature_missing"), "dry_run forwards with the would-be reason"

    # dry_run -> enforce, under load: every request is answered by one
    # configuration or the other, none fails.
    with Load(envoy, {"authorization": f"Bearer {basic}"}) as load:
        time.sleep(0.5)
        ecds.publish(plugin_config())
        assert until(lambda: answer(envoy, basic), (403, "feature_missing")) == (403, "feature_missing")
        time.sleep(0.5)
    assert load.statuses and set(load.statuses) <= {200, 403}, sorted(set(load.statuses))
    assert 403 in load.statuses

    # A new rule: /api/reports opens to everyone.
    rules = [{"match": {"path_separated_prefix": "/api/reports"}, "license": "none"}, *plugin_config()["rules"]]
    ecds.publish(plugin_config(rules=rules))
    assert until(lambda: envoy.request("GET", "/api/reports")[0], 200) == 200

    # A new key: a token of a kid the old configuration did not know.
    new_kid = mint(alg="RS256", key_file="rsa-other.key.pem", kid="rotated-1", plan="pro")
    assert answer(envoy, new_kid, "/api/data") == (401, "unknown_kid")
    keys = plugin_config()["keys"]
    keys["pem"] = [*keys.get("pem", []), {"kid": "rotated-1", "alg": "RS256", "key": key("rsa-other.pub.pem")}]
    ecds.publish(plugin_config(keys=keys))
    # Cached under the old configuration as unknown_kid: not served under the new one.
    assert until(lambda: answer(envoy, new_kid, "/api/data"), (200, None)) == (200, None)

    assert config_stat(envoy, "update_success") >= 4
    assert config_stat(envoy, "update_rejected") == 0
    assert envoy.process.pid == pid and envoy.process.poll() is None, "no restart"


def test_a_bad_configuration_is_rejected_and_the_previous_one_keeps_serving(reloadable):
    envoy, ecds = reloadable
    ecds.publish(plugin_config())
    basic = mint()
    assert until(lambda: answer(envoy, basic), (403, "feature_missing")) == (403, "feature_missing")
    time.sleep(1)  # let the file watch settle: one move can be seen twice
    accepted, rejected = config_stat(envoy, "update_success"), config_stat(envoy, "update_rejected")

    with Load(envoy, {"authorization": f"Bearer {basic}"}) as load:
        ecds.publish({**plugin_config(), "issuer": "typo"})  # unknown field: on_configure refuses it
        assert until(lambda: config_stat(envoy, "update_rejected"), rejected + 1) == rejected + 1
        time.sleep(1)
    assert set(load.statuses) == {403}, sorted(set(load.statuses))
    assert config_stat(envoy, "update_success") == accepted
    assert config_stat(envoy, "config_fail") >= 1
    assert answer(envoy, basic) == (403, "feature_missing")
    assert answer(envoy, mint(plan="pro")) == (200, None)
    assert "license-gate: config: issuer: unknown field `issuer`" in envoy.log()


def test_no_verdict_cached_under_one_configuration_is_served_under_the_next(reloadable):
    envoy, ecds = reloadable
    ecds.publish(plugin_config())
    pro = mint(plan="pro")
    assert until(lambda: answer(envoy, pro), (200, None)) == (200, None)
    assert answer(envoy, pro) == (200, None)  # now cached
    # The issuer is no longer trusted: the cached "allowed" must not answer.
    ecds.publish(plugin_config(issuers=[ISSUER + "/other"]))
    assert until(lambda: answer(envoy, pro), (401, "issuer_mismatch")) == (401, "issuer_mismatch")

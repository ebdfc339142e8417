"""The scenario table (host-tests/testdata/scenarios.json) in a real Envoy.
host-tests/tests/filter/scenarios.rs runs the same table in the wasmtime
harness: a scenario that passes in one host and fails in the other is a
harness bug. The table's `format` member describes its shape.

One Envoy (two workers) per distinct configuration patch, started when its
first scenario runs and stopped when the next patch's start; "now" is the wall clock, so tokens are minted
when their scenario runs."""

from __future__ import annotations

import json

import pytest

import reference
from conftest import claims, sign
from gateway import Envoy

TABLE = reference.table()
SCENARIOS = TABLE["scenarios"]

SCENARIO_FIELDS = {"name", "config", "request", "expect"}
REQUEST_FIELDS = {"method", "path", "authority", "headers", "token"}
TOKEN_FIELDS = {"raw", "signer", "alg", "kid", "key_file", "claims", "in"}
EXPECT_FIELDS = {"status", "reason", "missing_features", "upstream"}
UPSTREAM_FIELDS = {"path", "headers", "absent"}
PLACES = {"bearer", "x-license", "query", "cookie", "placeholder"}


def _unknown(fields: dict, allowed: set, where: str) -> list[str]:
    return [f"{where}: unknown field {k!r}" for k in fields if k not in allowed]


def validate(scenarios: list[dict]) -> list[str]:
    """What is wrong with the table: unknown fields (a typo must not turn a
    check off), duplicate names, expectations that do not fit the outcome."""
    errors, names = [], set()
    for s in scenarios:
        name = s.get("name", "?")
        if name in names:
            errors.append(f"duplicate scenario name {name}")
        names.add(name)
        req, exp = s.get("request", {}), s.get("expect", {})
        token, up = req.get("token") or {}, exp.get("upstream") or {}
        errors += _unknown(s, SCENARIO_FIELDS, name) + _unknown(req, REQUEST_FIELDS, f"{name}.request")
        errors += _unknown(token, TOKEN_FIELDS, f"{name}.request.token")
        errors += _unknown(exp, EXPECT_FIELDS, f"{name}.expect")
        errors += _unknown(up, UPSTREAM_FIELDS, f"{name}.expect.upstream")
        forwarded = exp.get("reason") == "forwarded"
        if forwarded != (exp.get("status") == 200):
            errors.append(f"{name}: status 200 if and only if forwarded")
        if (not forwarded and "upstream" in exp) or (forwarded and "missing_features" in exp):
            errors.append(f"{name}: upstream expectations only when forwarded, missing_features only on a denial")
        if token.get("in", "bearer") not in PLACES:
            errors.append(f"{name}: token.in must be one of {sorted(PLACES)}")
        if "raw" in token and set(token) - {"raw", "in"}:
            errors.append(f"{name}: a raw token takes no signing field")
        header_names = [n for n, _ in req.get("headers", [])] + list(up.get("headers", {})) + up.get("absent", [])
        if any(n != n.lower() for n in header_names):
            errors.append(f"{name}: header names in lower case")
    return errors


def test_the_table_is_well_formed():
    assert validate(SCENARIOS) == []
    assert len(SCENARIOS) >= 40


def config_key(scenario: dict) -> str:
    return json.dumps(scenario.get("config") or {}, sort_keys=True)


def token_for(spec: dict) -> str:
    """The scenario's token, minted now."""
    if "raw" in spec:
        return spec["raw"]
    return sign(claims(**spec.get("claims", {})), spec.get("signer", "RS256"), alg=spec.get("alg"),
                key_file=spec.get("key_file"), kid=spec.get("kid", "default"))


def build(scenario: dict) -> tuple[str, list[tuple[str, str]], str | None]:
    """What the scenario sends: path, headers (Host first), token."""
    req = scenario["request"]
    spec = req.get("token")
    token = None if spec is None else token_for(spec)

    def fill(s: str) -> str:
        return s if token is None else s.replace("{token}", token)

    path = fill(req["path"])
    headers = [("host", req.get("authority", "api.example.com"))]
    headers += [(n, fill(v)) for n, v in req.get("headers", [])]
    if token is not None:
        place = spec.get("in", "bearer")
        if place == "bearer":
            headers.append(("authorization", f"Bearer {token}"))
        elif place == "x-license":
            headers.append(("x-license", token))
        elif place == "query":
            path += ("&" if "?" in path else "?") + f"license={token}"
        elif place == "cookie":
            headers.append(("cookie", f"license={token}"))
        else:
            assert place == "placeholder"
            written = "{token}" in req["path"] or any("{token}" in v for _, v in req.get("headers", []))
            assert written, "in: placeholder, but no {token} in the path or a header"
    return path, headers, token


def check(scenario: dict, status: int, headers: dict, body: str, sent_path: str, token: str | None) -> list[str]:
    """Every difference between what the scenario expects and Envoy's answer."""
    want = scenario["expect"]

    def fill(s: str) -> str:
        return s if token is None else s.replace("{token}", token)

    errors = []

    def differ(what: str, got, expected) -> None:
        if got != expected:
            errors.append(f"{what}: got {got!r}, expected {expected!r}")

    try:
        answer = json.loads(body)
    except ValueError:
        return [f"status {status}, body not JSON: {body[:300]!r}"]
    differ("status", status, want["status"])
    forwarded = status == 200 and "error" not in answer and "headers" in answer
    differ("reason", "forwarded" if forwarded else answer.get("error"), want["reason"])
    if forwarded:
        up = want.get("upstream") or {}
        seen = answer["headers"]
        differ("upstream path", answer["path"], fill(up["path"]) if "path" in up else sent_path)
        for name, values in up.get("headers", {}).items():
            differ(f"upstream {name}", seen.get(name, []), [fill(v) for v in values])
        for name in up.get("absent", []):
            differ(f"upstream {name}", seen.get(name, []), [])
    else:
        differ("missing_features", answer.get("missing_features"), want.get("missing_features", []))
        if status == 401:
            error = "invalid_request" if want["reason"] == "missing" else "invalid_token"
            challenge = f'Bearer realm="license-gate", error="{error}"'
        else:
            challenge = None
        differ("www-authenticate", headers.get("www-authenticate"), challenge)
    return errors


class Gateways:
    """One Envoy per distinct configuration patch, started on first use; the
    previous one is stopped then (the scenarios run grouped by patch)."""

    def __init__(self, upstream_port: int, tmp_path_factory):
        self.upstream_port = upstream_port
        self.tmp = tmp_path_factory
        self.running: dict[str, Envoy] = {}
        self.failed: dict[str, str] = {}

    def get(self, scenario: dict) -> Envoy:
        key = config_key(scenario)
        if key in self.failed:
            pytest.fail(f"Envoy with the configuration patch {key} did not start:\n{self.failed[key]}")
        if key not in self.running:
            self.close()
            config = reference.with_key_files(
                reference.merge_patch(TABLE["reference_config"], scenario.get("config") or {}))
            envoy = Envoy(config, self.upstream_port, concurrency=2,
                          workdir=self.tmp.mktemp("envoy"))
            try:
                envoy.start()
            except (RuntimeError, TimeoutError) as e:
                self.failed[key] = str(e)[-3000:]
                pytest.fail(f"Envoy with the configuration patch {key} did not start:\n{self.failed[key]}")
            self.running[key] = envoy
        return self.running[key]

    def close(self) -> None:
        for envoy in self.running.values():
            envoy.stop()
        self.running.clear()


@pytest.fixture(scope="module")
def gateways(upstream, tmp_path_factory):
    gws = Gateways(upstream.port, tmp_path_factory)
    yield gws
    gws.close()


# Grouped by configuration, so each Envoy serves its scenarios back to back.
ORDERED = sorted(SCENARIOS, key=lambda s: (config_key(s) != "{}", config_key(s)))


@pytest.mark.parametrize("scenario", ORDERED, ids=[s["name"] for s in ORDERED])
def test_scenario(gateways, scenario):
    envoy = gateways.get(scenario)
    path, headers, token = build(scenario)
    status, answer_headers, body = envoy.request(scenario["request"].get("method", "GET"), path, headers)
    errors = check(scenario, status, answer_headers, body, path, token)
    assert not errors, "\n".join(errors)

"""licensectl against the module in a real Envoy (issue 12): tokens minted by
licensectl, sent to Envoy and asked of `licensectl check`, give the same
outcome, reason, status, deny answer and upstream headers; and they verify in
Envoy's own jwt_authn, for every algorithm."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

import licensectl
from conftest import until
from gateway import Envoy, free_port, request
from keyserver import JWKS_PATH, REVOCATIONS_PATH, KeyServer

ISSUER = "https://licenses.example.com"
AUDIENCE = "gateway.example.com"
HOST = "api.example.com"
NODE = "gw-eu-1"
KID = "es-2026"
GRACE = 7 * 86_400
DAY = 86_400
# Headers the filter owns or touches: compared as a set between Envoy's upstream and licensectl.
FILTER_HEADERS = {"authorization", "x-license-status", "x-license-dry-run",
                  "x-license-tenant", "x-license-plan", "x-license-id"}


def remote(path: str) -> dict:
    return {"cluster": "license-keys", "path": path, "authority": "keys.example.com",
            "refresh_seconds": 300, "timeout_ms": 2000}


def config(**overrides) -> dict:
    base = {
        "issuers": [ISSUER],
        "audiences": [AUDIENCE],
        "algorithms": ["ES256"],
        "keys": {"remote": remote(JWKS_PATH)},
        "revocation": {"remote": remote(REVOCATIONS_PATH)},
        "grace_period_seconds": GRACE,
        "plans": {"basic": {"features": ["api"]}, "pro": {"inherits": ["basic"], "features": ["reports"]}},
        "rules": [
            {"match": {"path_separated_prefix": "/healthz"}, "license": "none"},
            {"match": {"path_separated_prefix": "/internal"}, "license": "deny"},
            {"match": {"path_separated_prefix": "/api/reports"}, "require": {"all": ["reports"]}},
            {"match": {"prefix": "/api/"}, "require": {"all": ["api"]}},
        ],
        "default": "deny",
        "forward": {"headers": {"x-license-tenant": "tenant", "x-license-plan": "plan", "x-license-id": "jti"}},
        "binding": {"claim": "deployments", "identity": "node_id"},
    }
    base.update(overrides)
    return base


CONFIGS = {
    "enforce": config(),
    "dry_run": config(mode="dry_run"),
    "strip_token": config(forward={"headers": {"x-license-tenant": "tenant"}, "strip_token": True}),
}

# License name -> licensectl mint arguments (times relative to now, in seconds).
LICENSES = {
    "pro": ["--plan", "pro", "--tenant", "acme", "--id", "lic-pro", "--expires-in", "30d"],
    "basic": ["--plan", "basic", "--tenant", "initech", "--id", "lic-basic", "--expires-in", "30d"],
    "expired": ["--plan", "pro", "--tenant", "globex", "--id", "lic-expired",
                "--not-before", "-40d", "--expires-at", "-10d"],
    "grace": ["--plan", "pro", "--tenant", "umbrella", "--id", "lic-grace",
              "--not-before", "-30d", "--expires-at", "-1d"],
    "future": ["--plan", "pro", "--tenant", "soylent", "--id", "lic-future",
               "--not-before", "+1d", "--expires-in", "30d"],
    "revoked": ["--plan", "pro", "--tenant", "hooli", "--id", "lic-revoked", "--expires-in", "30d"],
    "bound_here": ["--plan", "pro", "--tenant", "acme", "--id", "lic-bound", "--deployments", f"{NODE},gw-eu-2",
                   "--expires-in", "30d"],
    "bound_elsewhere": ["--plan", "pro", "--tenant", "acme", "--id", "lic-elsewhere",
                        "--deployments", "gw-us-1", "--expires-in", "30d"],
}

# (case, config, path, license or None, expected: outcome, reason, status, upstream filter headers or None)
CASES = [
    ("allowed", "enforce", "/api/reports", "pro",
     ("allow", None, 200, {"authorization": "BEARER", "x-license-status": "active", "x-license-tenant": "acme",
                           "x-license-plan": "pro", "x-license-id": "lic-pro"})),
    ("feature_missing", "enforce", "/api/reports", "basic", ("deny", "feature_missing", 403, None)),
    ("expired", "enforce", "/api/reports", "expired", ("deny", "expired", 401, None)),
    ("grace", "enforce", "/api/reports", "grace",
     ("grace", None, 200, {"authorization": "BEARER", "x-license-status": "grace", "x-license-tenant": "umbrella",
                           "x-license-plan": "pro", "x-license-id": "lic-grace"})),
    ("not_yet_valid", "enforce", "/api/data", "future", ("deny", "not_yet_valid", 401, None)),
    ("route_denied", "enforce", "/internal/metrics", "pro", ("deny", "route_denied", 403, None)),
    ("open", "enforce", "/healthz/live", None, ("open", None, 200, {})),
    ("open_with_token", "enforce", "/healthz", "expired", ("open", None, 200, {"authorization": "BEARER"})),
    ("missing", "enforce", "/api/data", None, ("deny", "missing", 401, None)),
    ("revoked", "enforce", "/api/data", "revoked", ("deny", "revoked", 401, None)),
    ("binding_ok", "enforce", "/api/reports", "bound_here",
     ("allow", None, 200, {"authorization": "BEARER", "x-license-status": "active", "x-license-tenant": "acme",
                           "x-license-plan": "pro", "x-license-id": "lic-bound"})),
    ("binding_mismatch", "enforce", "/api/data", "bound_elsewhere", ("deny", "binding_mismatch", 403, None)),
    ("dry_run", "dry_run", "/api/reports", "basic",
     # A verified license lacking a feature: forwarded with its headers and the would-be denial.
     ("dry_run", "feature_missing", 200, {"authorization": "BEARER", "x-license-dry-run": "feature_missing",
                                          "x-license-status": "active", "x-license-tenant": "initech",
                                          "x-license-plan": "basic", "x-license-id": "lic-basic"})),
    ("dry_run_revoked", "dry_run", "/api/data", "revoked",
     ("dry_run", "revoked", 200, {"authorization": "BEARER", "x-license-dry-run": "revoked"})),
    ("strip_token", "strip_token", "/api/reports", "pro",
     # x-license-plan although forward.headers does not name it: the quota limiters read it.
     ("allow", None, 200, {"x-license-status": "active", "x-license-tenant": "acme", "x-license-plan": "pro"})),
    ("strip_token_open", "strip_token", "/healthz", "pro", ("open", None, 200, {})),
]


@pytest.fixture(scope="session")
def ctl() -> Path:
    started = time.monotonic()
    binary = licensectl.build()
    print(f"licensectl ready in {time.monotonic() - started:.1f}s")
    return binary


def relative(now: int, args: list[str]) -> list[str]:
    """`-10d` / `+1d` in LICENSES -> unix seconds from `now`."""
    out = []
    for arg in args:
        if arg[:1] in "+-" and arg[-1:] == "d" and arg[1:-1].isdigit():
            arg = str(now + int(arg[:-1]) * DAY)
        out.append(arg)
    return out


@pytest.fixture(scope="module")
def vendor(ctl, tmp_path_factory):
    """The vendor's side, all made by licensectl: an ES256 key, its JWKS, a
    revocation list naming lic-revoked, the licenses, the configurations."""
    work = tmp_path_factory.mktemp("vendor")
    licensectl.output(ctl, "keygen", "--alg", "ES256", "--kid", KID, "--out", str(work / "keys"))
    key = str(work / "keys" / f"{KID}.key.pem")
    (work / "jwks.json").write_text(licensectl.output(ctl, "jwks", key))
    assert json.loads((work / "jwks.json").read_text())["keys"][0]["kid"] == KID
    (work / "revocations.jwt").write_text(licensectl.output(
        ctl, "revoke", "--key", key, "--kid", KID, "--iss", ISSUER, "--id", "lic-revoked"))
    now = int(time.time())
    tokens = {name: licensectl.output(ctl, "mint", "--key", key, "--kid", KID, "--iss", ISSUER, "--aud", AUDIENCE,
                                      *relative(now, args))
              for name, args in LICENSES.items()}
    configs = {}
    for name, plugin in CONFIGS.items():
        configs[name] = work / f"{name}.json"
        configs[name].write_text(json.dumps(plugin))
        assert licensectl.output(ctl, "config", "check", str(configs[name])) == "ok"
    return {"dir": work, "tokens": tokens, "configs": configs}


def fetched(envoy: Envoy) -> bool:
    return (envoy.stat("wasmcustom.license_gate.jwks_fetch_success") > 0
            and envoy.stat("wasmcustom.license_gate.revocation_fetch_success") > 0)


@pytest.fixture(scope="module")
def gateways(vendor, upstream, tmp_path_factory):
    """One Envoy per configuration, bound to deployment NODE, fetching the
    licensectl JWKS and revocation list from one key server."""
    keys = KeyServer()
    keys.serve(JWKS_PATH, (vendor["dir"] / "jwks.json").read_text())
    keys.serve(REVOCATIONS_PATH, (vendor["dir"] / "revocations.jwt").read_text())
    envoys = {name: Envoy(plugin, upstream.port, key_server_port=keys.port, extra_args=["--service-node", NODE],
                          workdir=tmp_path_factory.mktemp(f"envoy-{name}"))
              for name, plugin in CONFIGS.items()}
    with keys:
        try:
            for envoy in envoys.values():
                envoy.start()
            for envoy in envoys.values():
                assert until(lambda e=envoy: fetched(e), True, 15), envoy.log()[-3000:]
            time.sleep(0.6)  # one tick: the worker has installed them
            yield envoys
        finally:
            for envoy in envoys.values():
                envoy.stop()


def envoy_answer(envoy: Envoy, path: str, token: str | None) -> dict:
    headers = {"host": HOST}
    if token:
        headers["authorization"] = f"Bearer {token}"
    status, resp_headers, body = envoy.request("GET", path, headers)
    data = json.loads(body)
    if "headers" in data:  # the echo upstream answered: forwarded
        seen = {k: v for k, v in data["headers"].items() if k in FILTER_HEADERS}
        assert all(len(v) == 1 for v in seen.values()), seen
        seen = {k: v[0] for k, v in seen.items()}
        if "x-license-dry-run" in seen:
            outcome, reason = "dry_run", seen["x-license-dry-run"]
        else:
            outcome, reason = {"active": "allow", "grace": "grace", None: "open"}[seen.get("x-license-status")], None
        return {"outcome": outcome, "reason": reason, "status": status, "forwarded": True, "upstream": seen,
                "path": data["path"], "host": data["headers"]["host"][0]}
    return {"outcome": "deny", "reason": data["error"], "status": status, "forwarded": False, "body": data,
            "headers": resp_headers}


def check_answer(ctl: Path, config: Path, jwks: Path, revocations: Path, path: str, token: str | None) -> dict:
    args = ["check", "--config", str(config), "--jwks", str(jwks), "--revocations", str(revocations),
            "--path", path, "--host", HOST, "--node-id", NODE, "--json"]
    proc = licensectl.run(ctl, *args, *([token] if token else ["--no-token"]))
    out = json.loads(proc.stdout)
    assert proc.returncode == (0 if out["forwarded"] else 1), proc
    answer = {"outcome": out["outcome"], "reason": out["reason"], "forwarded": out["forwarded"]}
    if out["forwarded"]:
        headers = dict(out["upstream_headers"])
        answer.update(status=200, upstream={k: v for k, v in headers.items() if k in FILTER_HEADERS},
                      path=headers[":path"], host=headers[":authority"], all_upstream=headers)
    else:
        answer.update(status=out["status"], body=out["response"]["body"], headers=dict(out["response"]["headers"]),
                      response_status=out["response"]["status"], missing=out["missing_features"])
    return answer


@pytest.mark.parametrize("case,config_name,path,license,expected", CASES, ids=[c[0] for c in CASES])
def test_envoy_and_licensectl_check_agree(ctl, vendor, gateways, case, config_name, path, license, expected):
    token = vendor["tokens"][license] if license else None
    envoy = envoy_answer(gateways[config_name], path, token)
    check = check_answer(ctl, vendor["configs"][config_name], vendor["dir"] / "jwks.json",
                         vendor["dir"] / "revocations.jwt", path, token)
    for field in ("outcome", "reason", "status", "forwarded"):
        assert envoy[field] == check[field], (field, envoy, check)
    outcome, reason, status, upstream = expected
    assert (envoy["outcome"], envoy["reason"], envoy["status"]) == (outcome, reason, status)
    if envoy["forwarded"]:
        assert envoy["upstream"] == check["upstream"], (envoy, check)
        want = {k: (f"Bearer {token}" if v == "BEARER" else v) for k, v in upstream.items()}
        assert envoy["upstream"] == want
        assert (envoy["path"], envoy["host"]) == (check["path"], check["host"]) == (path, HOST)
        # Every other header licensectl says the upstream gets, it gets, with that value.
        sent = json.loads(gateways[config_name].request("GET", path, {"host": HOST, **(
            {"authorization": f"Bearer {token}"} if token else {})})[2])["headers"]
        for name, value in check["all_upstream"].items():
            if not name.startswith(":"):
                assert sent.get(name) == [value], name
    else:
        assert upstream is None
        assert envoy["body"] == check["body"], (envoy, check)
        assert check["response_status"] == envoy["status"]
        for name, value in check["headers"].items():
            assert envoy["headers"].get(name) == value, (name, envoy["headers"])
        assert envoy["body"]["missing_features"] == check["missing"]
        assert envoy["body"]["missing_features"] == (["reports"] if reason == "feature_missing" else [])


# --- Envoy's jwt_authn accepts licensectl's tokens -------------------------------------------------

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]

JWT_AUTHN_TEMPLATE = """\
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: {{admin_port}}}}
static_resources:
  listeners:
  - name: jwt
    address: {socket_address: {address: 127.0.0.1, port_value: {{listen_port}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: jwt
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "ok"}}
          http_filters:
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                licenses: PROVIDER
              rules:
              - match: {prefix: "/"}
                requires: {provider_name: licenses}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def tamper(token: str) -> str:
    """The same token with one claim changed and the signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["tenant"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_licensectl_tokens_verify_in_envoys_jwt_authn(ctl, tmp_path):
    keys = tmp_path / "keys"
    tokens = {}
    for alg in ALGORITHMS:
        kid = f"k-{alg.lower()}"
        args = ["--bits", "2048"] if alg[:2] in ("RS", "PS") else []
        licensectl.output(ctl, "keygen", "--alg", alg, "--kid", kid, "--out", str(keys), *args)
        tokens[alg] = licensectl.output(ctl, "mint", "--key", str(keys / f"{kid}.key.pem"), "--kid", kid,
                                        "--iss", ISSUER, "--aud", AUDIENCE, "--id", f"lic-{alg}",
                                        "--tenant", "acme", "--expires-in", "1d")
        header = json.loads(base64.urlsafe_b64decode(tokens[alg].split(".")[0] + "=="))
        assert (header["alg"], header["kid"]) == (alg, kid)
    jwks = json.loads(licensectl.output(ctl, "jwks", *sorted(str(p) for p in keys.glob("*.key.pem"))))
    assert sorted(k["alg"] for k in jwks["keys"]) == sorted(ALGORITHMS)
    provider = {"issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": {"inline_string": json.dumps(jwks)},
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}]}
    template = tmp_path / "jwt_authn.yaml"
    template.write_text(JWT_AUTHN_TEMPLATE.replace("PROVIDER", json.dumps(provider)))
    with Envoy({}, free_port(), template=template, workdir=tmp_path / "envoy") as envoy:
        results = {alg: request(envoy.listen_port, "GET", "/", {"authorization": f"Bearer {token}"})[0]
                   for alg, token in tokens.items()}
        tampered = {alg: request(envoy.listen_port, "GET", "/", {"authorization": f"Bearer {tamper(token)}"})[0]
                    for alg, token in tokens.items()}
        unsigned = request(envoy.listen_port, "GET", "/")[0]
    assert results == dict.fromkeys(ALGORITHMS, 200)
    assert tampered == dict.fromkeys(ALGORITHMS, 401)
    assert unsigned == 401

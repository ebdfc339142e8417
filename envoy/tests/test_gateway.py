"""license-gate in a real Envoy 1.40 (V8): the allow/deny matrix over HTTP."""

import json

import pytest

from conftest import GRACE, SKEW, claims, mint, upstream_saw  # noqa: F401


def deny_body(reason: str, message: str, missing=()) -> dict:
    return {"error": reason, "message": message, "missing_features": list(missing)}


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "EdDSA", "JWK_RS256"])
def test_each_algorithm_is_verified(gateway, alg):
    status, _headers, body = gateway.request("GET", "/api/data", {"authorization": f"Bearer {mint(alg)}"})
    assert status == 200, body
    seen = upstream_saw(body)["headers"]
    assert seen["x-license-status"] == ["active"]
    assert seen["x-license-tenant"] == ["acme"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_signature_by_another_key_is_refused(gateway, alg):
    other = {"RS256": "rsa-other.key.pem", "ES256": "p256-other.key.pem", "EdDSA": "ed25519-other.key.pem"}[alg]
    status, headers, body = gateway.request("GET", "/api/data",
                                            {"authorization": f"Bearer {mint(alg, key_file=other)}"})
    assert status == 401
    assert json.loads(body) == deny_body("bad_signature", "the license token's signature is invalid")
    assert headers["www-authenticate"] == 'Bearer realm="license-gate", error="invalid_token"'


MATRIX = [
    # name, method, path, token kwargs (None: no token), status, reason, missing
    ("open route", "GET", "/healthz", None, 200, None, []),
    ("no token", "GET", "/api/data", None, 401, "missing", []),
    ("pro reads reports", "GET", "/api/reports/1", dict(plan="pro"), 200, None, []),
    ("basic lacks reports", "GET", "/api/reports/1", dict(), 403, "feature_missing", ["reports"]),
    ("enterprise admin via inheritance", "GET", "/admin", dict(plan="enterprise"), 200, None, []),
    ("pro lacks sso or audit", "GET", "/admin", dict(plan="pro"), 403, "feature_missing", ["sso", "audit"]),
    ("closed route", "GET", "/internal/x", dict(plan="enterprise"), 403, "route_denied", []),
    ("default deny", "GET", "/other", dict(plan="enterprise"), 403, "route_denied", []),
    ("wrong issuer", "GET", "/api/data", dict(iss="https://evil.example.com"), 401, "issuer_mismatch", []),
    ("wrong audience", "GET", "/api/data", dict(aud="x"), 401, "audience_mismatch", []),
    ("not yet valid", "GET", "/api/data", dict(nbf=4102444800), 401, "not_yet_valid", []),
    ("expired past grace", "GET", "/api/data", dict(exp=1), 401, "expired", []),
]

MESSAGES = {
    "missing": "a license token is required",
    "feature_missing": "the license does not grant the features this route requires",
    "route_denied": "this route is closed",
    "issuer_mismatch": "the license was not issued by a trusted issuer",
    "audience_mismatch": "the license is not intended for this gateway",
    "not_yet_valid": "the license is not valid yet",
    "expired": "the license has expired",
}


@pytest.mark.parametrize("name,method,path,token,status,reason,missing", MATRIX, ids=[m[0] for m in MATRIX])
def test_allow_deny_matrix(gateway, name, method, path, token, status, reason, missing):
    headers = {} if token is None else {"authorization": f"Bearer {mint(**token)}"}
    got_status, got_headers, body = gateway.request(method, path, headers)
    assert got_status == status, body
    if reason is None:
        assert upstream_saw(body)["path"] == path
    else:
        assert json.loads(body) == deny_body(reason, MESSAGES[reason], missing)
        assert got_headers["content-type"] == "application/json"
        if status == 401:
            error = "invalid_request" if reason == "missing" else "invalid_token"
            assert got_headers["www-authenticate"] == f'Bearer realm="license-gate", error="{error}"'
        else:
            assert "www-authenticate" not in got_headers


def test_grace_period_is_forwarded_as_grace(gateway):
    import time
    token = mint(exp=int(time.time()) - SKEW - 3600)
    status, _, body = gateway.request("GET", "/api/data", {"authorization": f"Bearer {token}"})
    assert status == 200
    assert upstream_saw(body)["headers"]["x-license-status"] == ["grace"]


def test_spoofed_license_headers_never_reach_the_upstream(gateway):
    token = mint(plan="pro", tenant="acme", jti="lic-7")
    status, _, body = gateway.request("GET", "/api/data", [
        ("authorization", f"Bearer {token}"),
        ("x-license-tenant", "evil-corp"),
        ("x-license-tenant", "evil-corp-2"),  # a set replaces every value
        ("x-license-plan", "enterprise"),
        ("x-license-status", "active"),
        ("x-license-status", "grace"),
        ("x-license-dry-run", "x"),
    ])
    assert status == 200
    seen = upstream_saw(body)["headers"]
    assert seen["x-license-tenant"] == ["acme"]
    assert seen["x-license-plan"] == ["pro"]
    assert seen["x-license-id"] == ["lic-7"]
    assert seen["x-license-status"] == ["active"]
    assert "x-license-dry-run" not in seen
    status, _, body = gateway.request("GET", "/healthz", {"x-license-tenant": "evil-corp"})
    assert status == 200
    assert "x-license-tenant" not in upstream_saw(body)["headers"]


def test_token_in_query_and_cookie(gateway):
    token = mint()
    status, _, _ = gateway.request("GET", f"/api/data?license={token}")
    assert status == 200
    status, _, _ = gateway.request("GET", "/api/data", {"cookie": f"a=1; license={token}"})
    assert status == 200

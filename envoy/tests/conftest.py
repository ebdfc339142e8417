"""Fixtures for the end-to-end tests: test keys, token minting, the
reference plugin configuration, and a running Envoy with license-gate."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway import ROOT, Envoy, EchoUpstream  # noqa: E402

KEYS = ROOT / "host-tests" / "testdata" / "keys"
ISSUER = "https://licenses.example.com"
AUDIENCE = "gateway.example.com"
SKEW = 60
GRACE = 86_400

SIGNERS = {
    "RS256": ("rs1", "rsa.key.pem"),
    "PS256": ("ps1", "rsa.key.pem"),
    "ES256": ("es1", "p256.key.pem"),
    "EdDSA": ("ed1", "ed25519.key.pem"),
}


def key(name: str) -> str:
    return (KEYS / name).read_text()


def claims(**extra) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "customer-42", "tenant": "acme",
        "jti": "lic-0001", "iat": now - 3600, "nbf": now - 3600, "exp": now + 30 * 86_400,
    }
    for k, v in extra.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


def mint(alg: str = "RS256", key_file: str | None = None, kid: str | None = "default", **extra) -> str:
    default_kid, default_key = SIGNERS[alg]
    headers = {"kid": default_kid if kid == "default" else kid} if kid is not None else {}
    return jwt.encode(claims(**extra), key(key_file or default_key), algorithm=alg, headers=headers)


def plugin_config(**overrides) -> dict:
    config = {
        "issuers": [ISSUER],
        "audiences": [AUDIENCE],
        "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
        "keys": {"pem": [
            {"kid": "rs1", "alg": "RS256", "key": key("rsa.pub.pem")},
            {"kid": "ps1", "alg": "PS256", "key": key("rsa.pub.pem")},
            {"kid": "es1", "alg": "ES256", "key": key("p256.pub.pem")},
            {"kid": "ed1", "alg": "EdDSA", "key": key("ed25519.pub.pem")},
        ]},
        "token": [{"header": "authorization", "prefix": "Bearer "}, {"header": "x-license"},
                  {"query": "license"}, {"cookie": "license"}],
        "clock_skew_seconds": SKEW,
        "grace_period_seconds": GRACE,
        "plans": {"pro": {"features": ["reports"]},
                  "enterprise": {"inherits": ["pro"], "features": ["sso", "audit"]}},
        "rules": [
            {"match": {"path_separated_prefix": "/healthz"}, "license": "none"},
            {"match": {"path_separated_prefix": "/api/reports", "methods": ["GET"]}, "require": {"all": ["reports"]}},
            {"match": {"path_separated_prefix": "/admin"}, "require": {"any": ["sso", "audit"]}},
            {"match": {"path_separated_prefix": "/internal"}, "license": "deny"},
            {"match": {"prefix": "/api/"}},
        ],
        "default": "deny",
        "forward": {"headers": {"x-license-tenant": "tenant", "x-license-plan": "plan",
                                "x-license-id": "jti"}},
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def upstream():
    with EchoUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    """Envoy with two workers and the reference configuration."""
    with Envoy(plugin_config(), upstream.port, concurrency=2,
               workdir=tmp_path_factory.mktemp("envoy")) as envoy:
        yield envoy


def upstream_saw(body: str) -> dict:
    """The echo upstream's view of the request (its JSON answer)."""
    return json.loads(body)

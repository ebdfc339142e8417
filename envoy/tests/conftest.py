"""Fixtures for the end-to-end tests: test keys, token minting, the
reference plugin configuration (from host-tests/testdata/scenarios.json, via
envoy/reference.py), and a running Envoy with license-gate."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import reference
from gateway import EchoUpstream, Envoy

KEYS = reference.KEYS
ISSUER = reference.ISSUER
AUDIENCE = reference.AUDIENCE
SKEW = reference.SKEW
GRACE = reference.GRACE

# Signer name (RS256, PS256, ES256, ES384, EdDSA, JWK_RS256) -> (kid, private key file).
SIGNERS = {name: (s["kid"], s["key_file"]) for name, s in reference.SIGNERS.items()}


def key(name: str) -> str:
    return reference.key(name)


def claims(**extra) -> dict:
    """A valid license's claims now, `extra` merged over them (None removes a
    claim; `exp_in=-60` and the like are seconds from now)."""
    return reference.claims(int(time.time()), extra)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload: dict, signer: str = "RS256", alg: str | None = None, key_file: str | None = None,
         kid: str | None = "default") -> str:
    """`payload` signed as `signer` (a name in SIGNERS); `alg` signs with
    another algorithm (`"none"`: unsigned), `kid=None` leaves the kid out."""
    spec = reference.SIGNERS[signer]
    alg = alg or spec["alg"]
    headers = {"kid": spec["kid"] if kid == "default" else kid} if kid is not None else {}
    if alg == "none":
        header = {"alg": "none", "typ": "JWT", **headers}
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."
    return jwt.encode(payload, key(key_file or spec["key_file"]), algorithm=alg, headers=headers)


def mint(alg: str = "RS256", key_file: str | None = None, kid: str | None = "default", **extra) -> str:
    """A valid license signed as `alg` (a signer name), `extra` merged over its claims."""
    return sign(claims(**extra), alg, key_file=key_file, kid=kid)


def plugin_config(**overrides) -> dict:
    """The reference configuration (host-tests/testdata/scenarios.json), with
    top-level fields replaced by `overrides`."""
    config = reference.reference_config()
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


def until(check, want, seconds: float = 10.0):
    """Polls `check` until it returns `want` or `seconds` pass; returns the
    last value, so `assert until(f, x, 5) == x` shows what came instead."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)

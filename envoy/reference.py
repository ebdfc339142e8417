"""The reference plugin configuration, test signers, default claims and
scenario table, read from host-tests/testdata/scenarios.json: the one copy
the wasmtime harness (host-tests/tests/filter/support.rs), the end-to-end
tests (tests/conftest.py, tests/test_scenarios.py) and the benchmark share.
Plain Python (no PyJWT): minting is conftest's job."""

from __future__ import annotations

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "host-tests" / "testdata"
TABLE_PATH = TESTDATA / "scenarios.json"
KEYS = TESTDATA / "keys"
TIME_CLAIMS = ("exp", "nbf", "iat")

_TABLE = json.loads(TABLE_PATH.read_text())

# name -> {"alg", "kid", "key_file"}: RS256, PS256, ES256, ES384, EdDSA, JWK_RS256.
SIGNERS: dict[str, dict] = _TABLE["signers"]
ISSUER: str = _TABLE["reference_config"]["issuers"][0]
AUDIENCE: str = _TABLE["reference_config"]["audiences"][0]
SKEW: int = _TABLE["reference_config"]["clock_skew_seconds"]
GRACE: int = _TABLE["reference_config"]["grace_period_seconds"]


def table() -> dict:
    """The whole table (a copy)."""
    return copy.deepcopy(_TABLE)


def key(name: str) -> str:
    """A test key file's contents."""
    return (KEYS / name).read_text()


def with_key_files(value):
    """`value` with every `{"key_file": name}` member replaced by `{"key": <contents>}`."""
    if isinstance(value, dict):
        return {("key" if k == "key_file" else k): (key(v) if k == "key_file" else with_key_files(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [with_key_files(v) for v in value]
    return value


def reference_config() -> dict:
    """The reference plugin configuration, PEM keys read in."""
    return with_key_files(copy.deepcopy(_TABLE["reference_config"]))


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge member by member, None
    removes a member, anything else replaces. Returns the result; `target`
    is not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def resolve_time_claims(claims: dict, now: int) -> dict:
    """`exp_in`, `nbf_in`, `iat_in` (seconds from `now`) turned into `exp`, `nbf`, `iat`."""
    out = {}
    for k, v in claims.items():
        if k.endswith("_in") and k[:-3] in TIME_CLAIMS:
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{k}: an offset in seconds, got {v!r}")
            out[k[:-3]] = now + v
        else:
            out[k] = v
    return out


def claims(now: int, extra: dict | None = None) -> dict:
    """A valid license's claims at `now`, `extra` merged over them (None
    removes a claim; `exp_in` and the like are seconds from `now`)."""
    base = resolve_time_claims(_TABLE["default_claims"], now)
    for k, v in resolve_time_claims(extra or {}, now).items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base

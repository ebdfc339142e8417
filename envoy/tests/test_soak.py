"""100,000 requests with distinct tokens: Envoy keeps serving and its memory
stays flat once the verdict cache is full (shared data has no eviction, so the
cache's slot bound is what holds memory)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time

from conftest import claims, mint, plugin_config
from gateway import Envoy

TOTAL = 100_000
VALID = 2_000          # distinct, properly signed: each is verified once
SLOTS = 1_000
WARMUP = 20_000        # by then every slot has been written many times over


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def foreign_token(i: int) -> str:
    """A distinct, well-formed token from an untrusted issuer: refused on its
    claims, before any signature work, and cached as a denial."""
    header = b64(json.dumps({"alg": "ES256", "kid": "es1"}).encode())
    payload = b64(json.dumps(claims(iss=f"https://issuer-{i}.example.com", jti=f"soak-{i}")).encode())
    return f"{header}.{payload}.{b64(os.urandom(64))}"


def allocated(envoy: Envoy) -> int:
    return int(json.loads(envoy.admin("GET", "/memory")[2])["allocated"])


def counter(envoy: Envoy, name: str) -> int:
    _, _, body = envoy.admin("GET", f"/stats?filter=^wasmcustom\\.{name}$&format=json")
    return json.loads(body)["stats"][0]["value"]


def send(envoy: Envoy, tokens: list[str], statuses: dict, lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", envoy.listen_port, timeout=30)
    seen: dict[int, int] = {}
    for token in tokens:
        status = envoy.request("GET", "/api/data", {"authorization": f"Bearer {token}"}, conn=conn)[0]
        seen[status] = seen.get(status, 0) + 1
    conn.close()
    with lock:
        for k, v in seen.items():
            statuses[k] = statuses.get(k, 0) + v


def run(envoy: Envoy, tokens: list[str], threads: int = 4) -> dict[int, int]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    workers = [threading.Thread(target=send, args=(envoy, tokens[i::threads], statuses, lock))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)
    return statuses


def test_memory_stays_flat_with_100k_distinct_tokens(upstream, tmp_path):
    valid = [mint("ES256", jti=f"soak-valid-{i}") for i in range(VALID)]
    tokens = [foreign_token(i) for i in range(TOTAL - VALID)]
    # Spread the valid tokens evenly through the run.
    step = len(tokens) // VALID
    for i, token in enumerate(valid):
        tokens.insert(i * (step + 1), token)
    assert len(set(tokens)) == TOTAL

    config = plugin_config(cache={"max_entries": SLOTS, "ttl_seconds": 3600, "negative_ttl_seconds": 3600})
    with Envoy(config, upstream.port, concurrency=2, workdir=tmp_path) as envoy:
        started = time.monotonic()
        first = run(envoy, tokens[:WARMUP])
        after_warmup = allocated(envoy)
        rest = run(envoy, tokens[WARMUP:])
        after_all = allocated(envoy)
        elapsed = time.monotonic() - started

        statuses = {s: first.get(s, 0) + rest.get(s, 0) for s in set(first) | set(rest)}
        assert statuses == {200: VALID, 401: TOTAL - VALID}
        growth = after_all - after_warmup
        print(f"\n{TOTAL} requests in {elapsed:.1f}s; Envoy allocated {after_warmup / 2**20:.1f} MiB "
              f"after {WARMUP}, {after_all / 2**20:.1f} MiB after {TOTAL} (growth {growth / 2**10:.0f} KiB)")
        assert growth < 4 * 2**20, f"memory grew by {growth} bytes over {TOTAL - WARMUP} distinct tokens"

        # Still serving, and every verdict was counted once.
        fresh = mint("RS256", jti="after-soak")
        assert envoy.request("GET", "/api/data", {"authorization": f"Bearer {fresh}"})[0] == 200
        assert counter(envoy, "license_gate.allowed") == VALID + 1
        assert counter(envoy, "license_gate.reason=.=issuer_mismatch;.;denied") == TOTAL - VALID
        assert counter(envoy, "license_gate.signature_verifications") == VALID + 1
        assert counter(envoy, "license_gate.cache_miss") == TOTAL + 1
        assert counter(envoy, "license_gate.cache_hit") == 0

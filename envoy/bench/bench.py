"""Side-by-side benchmark: license-gate against no filter, an empty proxy-wasm
filter and Envoy's native jwt_authn (with and without its cache), in ONE Envoy
(--concurrency 1), one listener per filter chain, the same keys and tokens.

The figure of merit is Envoy's own CPU time per request (user+sys of the Envoy
process over the requests served), far steadier than requests/s on a shared
machine. Rounds are interleaved and medians reported. Run via scripts/bench.sh.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway import ROOT, envoy_binary, free_port, request
from keyserver import JWKS_PATH, REVOCATIONS_PATH, KeyServer, revocation_list
from reference import AUDIENCE, ISSUER, KEYS, SIGNERS

# The reference signers measured (host-tests/testdata/scenarios.json): alg ->
# (kid, stem of the key files keys/<stem>.key.pem and keys/<stem>.pub.pem).
ALGS = {alg: (SIGNERS[alg]["kid"], SIGNERS[alg]["key_file"].removesuffix(".key.pem"))
        for alg in ("RS256", "ES256", "EdDSA")}
LICENSE_GATE = ROOT / "dist" / "license_gate.wasm"
EMPTY_FILTER = ROOT / "target" / "wasm32-wasip1" / "release" / "bench_empty_filter.wasm"
WORK = ROOT / ".bench"

# The route measured requires this feature; every token grants it.
FEATURE = "reports"

TARGETS = [
    # (label, numerator config, denominator config, minimum ratio of CPU/request)
    ("hit vs the native chain (jwt_authn + rbac)", "native_chain_RS256", "lg_hit_RS256", 0.90),
    ("hit vs the Wasm floor", "floor_RS256", "lg_hit_RS256", 0.95),
    ("miss RS256 vs jwt_authn", "jwt_RS256", "lg_miss_RS256", 0.50),
    ("miss ES256 vs jwt_authn", "jwt_ES256", "lg_miss_ES256", 0.45),
    ("miss EdDSA vs jwt_authn", "jwt_EdDSA", "lg_miss_EdDSA", 0.70),
    # Remote keys, a revocation list and binding must not make a hit dearer.
    ("hit, lifecycle on vs off", "lg_hit_RS256", "lg_hit_lifecycle_RS256", 0.95),
]
MAX_MODULE_BYTES = 720 * 1024
HIT_HOST_CALLS = 10


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks() -> dict:
    """The public test keys as a JWKS, for jwt_authn."""
    from cryptography.hazmat.primitives import serialization

    keys = []
    for alg, (kid, stem) in ALGS.items():
        pub = serialization.load_pem_public_key((KEYS / f"{stem}.pub.pem").read_bytes())
        if alg == "RS256":
            n = pub.public_numbers()
            keys.append({"kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
                         "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
                         "e": b64u(n.e.to_bytes(3, "big"))})
        elif alg == "ES256":
            n = pub.public_numbers()
            keys.append({"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": "P-256",
                         "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))})
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            keys.append({"kty": "OKP", "kid": kid, "alg": alg, "use": "sig", "crv": "Ed25519", "x": b64u(raw)})
    return {"keys": keys}


def _mint(args: tuple[str, int, int]) -> list[str]:
    import jwt
    from cryptography.hazmat.primitives import serialization

    alg, start, count = args
    kid, stem = ALGS[alg]
    # Parse the key once: PyJWT would re-parse (and re-validate) it per token.
    key = serialization.load_pem_private_key((KEYS / f"{stem}.key.pem").read_bytes(), password=None)
    now = int(time.time())
    # Every token grants the feature the measured route requires.
    return [jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "tenant": "acme", "jti": f"bench-{alg}-{i}",
                        "features": [FEATURE], "nbf": now - 60, "exp": now + 7 * 86_400},
                       key, algorithm=alg, headers={"kid": kid})
            for i in range(start, start + count)]


def token_pool(alg: str, count: int) -> Path:
    """`count` distinct valid tokens, one per line; kept a day in .bench/."""
    path = WORK / f"tokens-{FEATURE}-{alg}-{count}.txt"
    if path.exists() and time.time() - path.stat().st_mtime < 86_400:
        return path
    chunks = [(alg, i, min(5000, count - i)) for i in range(0, count, 5000)]
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        tokens = [t for part in pool.map(_mint, chunks) for t in part]
    path.write_text("\n".join(tokens) + "\n")
    return path


def single_token(alg: str) -> Path:
    path = WORK / f"token-{alg}-single.txt"
    path.write_text(_mint((alg, 10**9, 1))[0] + "\n")
    return path


def plugin_config(cache_ttl: int = 3600, lifecycle: bool = False) -> dict:
    def pem(kid: str, alg: str, stem: str) -> dict:
        return {"kid": kid, "alg": alg, "key": (KEYS / f"{stem}.pub.pem").read_text()}

    config = {
        "issuers": [ISSUER], "audiences": [AUDIENCE], "algorithms": list(ALGS),
        "keys": {"pem": [pem(kid, alg, stem) for alg, (kid, stem) in ALGS.items()]},
        "rules": [{"match": {"prefix": "/"}, "require": {"all": [FEATURE]}}],
        "forward": {"headers": {"x-license-tenant": "tenant"}},
        "cache": {"max_entries": 200_000, "ttl_seconds": cache_ttl},
    }
    if lifecycle:
        # The same keys from the key server, a revocation list, and binding on.
        def remote(path: str) -> dict:
            return {"cluster": "license-keys", "path": path, "refresh_seconds": 60}

        config["keys"] = {"remote": remote(JWKS_PATH)}
        config["revocation"] = {"remote": remote(REVOCATIONS_PATH)}
        config["binding"] = {"identity": {"value": "bench-gateway"}}
    return config


def wasm_filter(name: str, path: Path, configuration: str = "") -> dict:
    return {"name": name, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"name": name, "root_id": name, "fail_open": False,
                   "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                                 "code": {"local": {"filename": str(path)}}},
                   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                     "value": configuration}}}}


def jwt_authn(cached: bool, entitlement: bool = False) -> dict:
    provider = {"issuer": ISSUER, "audiences": [AUDIENCE],
                "local_jwks": {"inline_string": json.dumps(jwks())},
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}]}
    if cached:
        provider["jwt_cache_config"] = {"jwt_cache_size": 1000}
    if entitlement:
        # What the rbac filter after it reads, and the header license-gate forwards.
        provider["payload_in_metadata"] = "jwt_payload"
        provider["claim_to_headers"] = [{"header_name": "x-license-tenant", "claim_name": "tenant"}]
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"licenses": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "licenses"}}]}}


def rbac_feature(feature: str) -> dict:
    """Envoy's rbac filter allowing a request only when the verified payload's
    features claim (jwt_authn's metadata) lists `feature`."""
    features = {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "features"}],
                "value": {"list_match": {"one_of": {"string_match": {"exact": feature}}}}}
    return {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": {"licensed": {
            "permissions": [{"any": True}], "principals": [{"metadata": features}]}}}}}


HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def listener(name: str, port: int, filters: list[dict]) -> dict:
    router = {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": HCM_TYPE,
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
                "http_filters": [*filters, router]}}]}]}


CHAINS = {
    "none": lambda: [],
    "empty": lambda: [wasm_filter("empty", EMPTY_FILTER)],
    # The same empty filter making as many host calls per request as a
    # license-gate cache hit does here (headers, clock, 2 counters, 1
    # histogram, 3 access-log properties, 2 header sets): their floor.
    "empty_calls": lambda: [wasm_filter("empty_calls", EMPTY_FILTER, str(HIT_HOST_CALLS))],
    # ... or fetching the request headers once, as license-gate does.
    "empty_headers": lambda: [wasm_filter("empty_headers", EMPTY_FILTER, "headers")],
    # The least host work any Wasm license gate does: read :path and the
    # token header, count, set one upstream header (the empty filter's
    # `floor` mode).
    "floor": lambda: [wasm_filter("floor", EMPTY_FILTER, "floor")],
    # What an admin configures to enforce an entitlement without
    # license-gate: jwt_authn (cached, payload in metadata, a claim to a
    # header), then rbac allowing the route only with the feature.
    "native_chain": lambda: [jwt_authn(cached=True, entitlement=True), rbac_feature(FEATURE)],
    "jwt": lambda: [jwt_authn(cached=False)],
    "jwt_cached": lambda: [jwt_authn(cached=True)],
    "license_gate": lambda: [wasm_filter("license_gate", LICENSE_GATE, json.dumps(plugin_config()))],
    # Same filter, but cached verdicts live one second: the token pool comes
    # round again only after that, so every request is a real cache miss
    # (lookup, verification, write) whatever the request rate.
    "license_gate_miss": lambda: [wasm_filter("license_gate_miss", LICENSE_GATE, json.dumps(plugin_config(1)))],
    # Keys fetched from a key server, a revocation list and deployment binding:
    # what a cache hit costs with the whole license lifecycle on.
    "license_gate_lifecycle": lambda: [wasm_filter("license_gate_lifecycle", LICENSE_GATE,
                                                   json.dumps(plugin_config(lifecycle=True)))],
}


def configurations(algs: list[str]) -> list[tuple[str, str, str]]:
    """(name, listener chain, token traffic: 'single-ALG' | 'pool-ALG').

    Every configuration gets requests that carry a token, even those that
    ignore it: a 700-byte Authorization header alone costs Envoy several µs
    per request (parsing, copying), and a reference without it would charge
    that to the filters that read it."""
    first = algs[0]
    single = f"single-{first}"
    # What a target compares runs side by side in every round (the hit
    # between the Wasm floor and the native chain, each miss right after
    # jwt_authn's): the machine's load moves less between neighbours.
    out = [(f"empty_{HIT_HOST_CALLS}_host_calls", "empty_calls", single),
           (f"empty_headers_{first}", "empty_headers", single),
           (f"floor_{first}", "floor", single),
           (f"lg_hit_{first}", "license_gate", single),
           (f"native_chain_{first}", "native_chain", single),
           (f"lg_hit_lifecycle_{first}", "license_gate_lifecycle", single)]
    for alg in algs:
        out += [(f"none_{alg}", "none", f"single-{alg}"),
                (f"empty_{alg}", "empty", f"single-{alg}"),
                (f"jwt_cached_{alg}", "jwt_cached", f"single-{alg}")]
        if alg != first:
            out.append((f"lg_hit_{alg}", "license_gate", f"single-{alg}"))
        out += [(f"jwt_{alg}", "jwt", f"pool-{alg}"),
                (f"lg_miss_{alg}", "license_gate_miss", f"pool-{alg}")]
    return out


LUA = """
local tokens, i = {}, 0
function init(args)
  if args[1] ~= "none" then
    for line in io.lines(args[1]) do if #line > 0 then tokens[#tokens + 1] = line end end
  end
  i = tonumber(args[2] or "0")
end
function request()
  if #tokens == 0 then return wrk.format("GET", "/") end
  i = i + 1
  return wrk.format("GET", "/", {["Authorization"] = "Bearer " .. tokens[(i - 1) % #tokens + 1]})
end
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: float, tokens: str, offset: int, lua: Path) -> dict:
    proc = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds:g}s", "--latency", "-s", str(lua),
                           f"http://127.0.0.1:{port}/", "--", tokens, str(offset)],
                          capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    found = re.search(r"(\d+) requests in", out)
    if not found:
        raise RuntimeError(f"wrk failed: {out}{proc.stderr}")
    requests = int(found.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def latency(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]

    return {"requests": requests, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_us": latency("50"), "p99_us": latency("99")}


def stat(admin: int, name: str) -> int:
    _, _, body = request(admin, "GET", f"/stats?filter=^wasmcustom\\.license_gate\\.{name}$&format=json")
    stats = json.loads(body)["stats"]
    return stats[0]["value"] if stats else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pool", type=int, default=30_000, help="distinct tokens per algorithm")
    parser.add_argument("--algs", default="RS256,ES256,EdDSA")
    parser.add_argument("--json", type=Path, default=WORK / "results.json")
    args = parser.parse_args()
    algs = args.algs.split(",")
    WORK.mkdir(exist_ok=True)

    print(f"minting {args.pool} tokens per algorithm (cached in .bench/) ...", flush=True)
    traffic = {"none": "none"}
    for alg in algs:
        traffic[f"pool-{alg}"] = str(token_pool(alg, args.pool))
        traffic[f"single-{alg}"] = str(single_token(alg))
    lua = WORK / "tokens.lua"
    lua.write_text(LUA)

    keys = KeyServer().__enter__()
    keys.serve_jwks(jwks()["keys"])
    kid, stem = ALGS["RS256"]
    keys.serve(REVOCATIONS_PATH, revocation_list((KEYS / f"{stem}.key.pem").read_text(), "RS256", kid, ISSUER,
                                                 [f"revoked-{i}" for i in range(1000)]))
    ports = {chain: free_port() for chain in CHAINS}
    admin = free_port()
    key_cluster = {"name": "license-keys", "connect_timeout": "1s", "type": "STATIC", "load_assignment": {
        "cluster_name": "license-keys", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": keys.port}}}}]}]}}
    bootstrap = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
                 "static_resources": {"listeners": [listener(c, p, CHAINS[c]()) for c, p in ports.items()],
                                      "clusters": [key_cluster]}}
    workdir = Path(tempfile.mkdtemp(prefix="license-gate-bench-"))
    (workdir / "bench.json").write_text(json.dumps(bootstrap))
    log = open(workdir / "envoy.log", "wb")
    envoy = subprocess.Popen([str(envoy_binary()), "-c", str(workdir / "bench.json"), "--concurrency", "1",
                              "--disable-hot-restart", "-l", "warning"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(admin, "GET", "/ready")[0] == 200:
                    break
            except OSError:
                pass
            if envoy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((workdir / "envoy.log").read_text()[-3000:])
            time.sleep(0.1)
        while stat(admin, "revocation_fetch_success") == 0:
            if time.monotonic() > deadline:
                log_tail = (workdir / "envoy.log").read_text()[-3000:]
                raise RuntimeError(f"the lifecycle configuration fetched no keys: {log_tail}")
            time.sleep(0.1)
        time.sleep(1)  # one tick more: the worker has installed both

        configs = configurations(algs)
        results: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
        offsets = {t: 0 for t in traffic}
        for rnd in range(1, args.rounds + 1):
            print(f"round {rnd}/{args.rounds}", flush=True)
            for name, chain, tokens in configs:
                hits, verifications = stat(admin, "cache_hit"), stat(admin, "signature_verifications")
                before = cpu_seconds(envoy.pid)
                run = wrk(ports[chain], args.seconds, traffic[tokens], offsets[tokens], lua)
                time.sleep(0.3)  # let in-flight requests finish inside this measurement
                run["cpu_us"] = (cpu_seconds(envoy.pid) - before) * 1e6 / max(run["requests"], 1)
                run["cache_hits"] = stat(admin, "cache_hit") - hits
                run["verifications"] = stat(admin, "signature_verifications") - verifications
                offsets[tokens] += run["requests"]
                results[name].append(run)
                if run["non2xx"]:
                    print(f"  {name}: {run['non2xx']} non-2xx answers!", flush=True)
    finally:
        envoy.terminate()
        envoy.wait(timeout=10)
        keys.__exit__()

    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    size = LICENSE_GATE.stat().st_size
    version = subprocess.run([str(envoy_binary()), "--version"], capture_output=True, text=True, check=False)
    lines = [f"Envoy {version.stdout.split('version:')[-1].strip()}, "
             f"--concurrency 1, wrk -t1 -c16 -d{args.seconds:g}s, {args.rounds} interleaved rounds (medians), "
             f"{os.cpu_count()} cores", "",
             "| configuration | Envoy CPU µs/request | requests/s | p50 µs | p99 µs | cache hits | verifications |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, m in med.items():
        lines.append(f"| {name} | {m['cpu_us']:.0f} | {m['rps']:.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | "
                     f"{m['cache_hits']:.0f} | {m['verifications']:.0f} |")
    lines += ["", "| target (ratio of CPU per request) | ratio (median of rounds) | per round | "
              "ratio of the medians | minimum | |",
              "| --- | ---: | ---: | ---: | ---: | --- |"]
    verdicts = []

    def per_round(num: str, den: str) -> list[float]:
        # Both configurations ran seconds apart in each round: their ratio
        # there is what the machine's load moved least.
        return sorted(n["cpu_us"] / d["cpu_us"] for n, d in zip(results[num], results[den], strict=True))

    def row(label: str, num: str, den: str) -> tuple[float, str]:
        rounds = per_round(num, den)
        ratio = statistics.median(rounds)
        return ratio, (f"| {label} ({num} / {den}) | {ratio:.2f} | {rounds[0]:.2f}-{rounds[-1]:.2f} | "
                       f"{med[num]['cpu_us'] / med[den]['cpu_us']:.2f} |")

    for label, num, den, minimum in TARGETS:
        if num in med and den in med:
            ratio, line = row(label, num, den)
            ok = ratio >= minimum
            verdicts.append(ok)
            lines.append(f"{line} {minimum:.2f} | {'met' if ok else 'NOT met'} |")
    for alg in algs[1:]:
        ref, hit = f"empty_{alg}", f"lg_hit_{alg}"
        if ref in med and hit in med:
            lines.append(row(f"not a target: hit vs empty Wasm filter, {alg}", ref, hit)[1] + " | |")
    ok = size <= MAX_MODULE_BYTES
    verdicts.append(ok)
    lines.append(f"| dist/license_gate.wasm size | {size / 1024:.0f} KiB | | | ≤ {MAX_MODULE_BYTES // 1024} KiB | "
                 f"{'met' if ok else 'NOT met'} |")
    print("\n" + "\n".join(lines))
    args.json.write_text(json.dumps({"medians": med, "runs": results, "module_bytes": size}, indent=2))
    print(f"\nraw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

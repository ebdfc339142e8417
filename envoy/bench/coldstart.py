"""Cold start and memory of license-gate in real Envoy (issue 13): what a
configuration push costs before requests are served again, what the first
request on a fresh VM costs per algorithm, and Envoy's memory per worker
with the module loaded and with a full verdict cache.

The filter comes from an extension config file (ECDS) that Envoy watches, as
an Istio gateway gets it over xDS. A push either changes only the plugin
configuration (Envoy keeps the VM and calls on_configure again) or names a
new vm_id (Envoy compiles the module into a new VM, then on_configure).
Times are wall clock on 127.0.0.1 and include the file watch; medians over
rounds. Run: scripts/bench.sh --coldstart (or this file directly).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ALGS, WORK, plugin_config, token_pool

from gateway import WASM, Ecds, EchoUpstream, Envoy, ecds_template, request

PROBE = "/bench-probe"


def probe_config(base: dict, open_probe: bool) -> dict:
    """`base` with a first rule that opens or closes PROBE: which one is in
    force shows which push a worker has applied."""
    rule = {"match": {"exact": PROBE}, "license": "none" if open_probe else "deny"}
    return {**base, "rules": [rule, *base["rules"]]}


def probe(envoy: Envoy) -> int:
    return request(envoy.listen_port, "GET", PROBE)[0]


def wait_for(envoy: Envoy, want: int, timeout: float = 30.0, streak: int = 10) -> float:
    """Seconds until `streak` probes in a row (each on a new connection, so
    every worker answers some) answer `want`; the time of the first of them."""
    start = time.monotonic()
    first, run = None, 0
    while time.monotonic() - start < timeout:
        if probe(envoy) == want:
            first = first if first is not None else time.monotonic() - start
            run += 1
            if run >= streak:
                return first
        else:
            first, run = None, 0
        time.sleep(0.001)
    raise RuntimeError(f"the push did not take effect within {timeout} s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def heap_bytes(envoy: Envoy) -> int:
    _, _, body = envoy.admin("GET", "/memory")
    return int(json.loads(body)["allocated"])


def start(upstream: EchoUpstream, workdir: Path, workers: int, config: dict) -> tuple[Envoy, Ecds]:
    ecds = Ecds(workdir / "license-gate.ecds.json")
    ecds.publish(config)
    envoy = Envoy({}, upstream.port, concurrency=workers, workdir=workdir, template=ecds_template(workdir, ecds.path),
                  extra_args=["--service-node", "bench", "--service-cluster", "bench"]).start()
    return envoy, ecds


def pushes(upstream: EchoUpstream, workers: int, rounds: int) -> dict:
    """Median seconds from writing a push to every worker serving it."""
    base = plugin_config()
    with tempfile.TemporaryDirectory() as tmp:
        envoy, ecds = start(upstream, Path(tmp), workers, probe_config(base, False))
        try:
            wait_for(envoy, 403)
            same_vm, new_vm = [], []
            for i in range(rounds):
                open_probe = i % 2 == 0
                t0 = time.monotonic()
                ecds.publish(probe_config(base, open_probe))
                wait_for(envoy, 200 if open_probe else 403)
                same_vm.append(time.monotonic() - t0)
            for i in range(rounds):
                open_probe = i % 2 == 0
                t0 = time.monotonic()
                ecds.publish(probe_config(base, open_probe), vm_id=f"license-gate-{workers}-{i}")
                wait_for(envoy, 200 if open_probe else 403)
                new_vm.append(time.monotonic() - t0)
            return {"config_push_s": statistics.median(same_vm), "new_vm_push_s": statistics.median(new_vm)}
        finally:
            envoy.stop()


def process_start(upstream: EchoUpstream, workers: int, rounds: int) -> float:
    """Median seconds from starting Envoy to the first request the gate serves."""
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            envoy = Envoy(probe_config(plugin_config(), True), upstream.port, concurrency=workers, workdir=Path(tmp))
            t0 = time.monotonic()
            envoy.start()
            try:
                wait_for(envoy, 200, streak=1)
                times.append(time.monotonic() - t0)
            finally:
                envoy.stop()
    return statistics.median(times)


def first_requests(upstream: EchoUpstream, tokens: dict[str, list[str]]) -> dict:
    """Per algorithm: the first request on a fresh VM (keys not used yet)
    against the median of the next 20 misses (distinct tokens), client-side."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        envoy, ecds = start(upstream, Path(tmp), 1, probe_config(plugin_config(), True))
        try:
            wait_for(envoy, 200)
            for n, (alg, pool) in enumerate(tokens.items()):
                ecds.publish(probe_config(plugin_config(), n % 2 == 1), vm_id=f"first-{alg}")
                wait_for(envoy, 200 if n % 2 == 1 else 403)

                def timed(token: str) -> float:
                    t0 = time.perf_counter()
                    status, _, _ = request(envoy.listen_port, "GET", "/api", {"authorization": f"Bearer {token}"})
                    assert status == 200, status
                    return (time.perf_counter() - t0) * 1e6

                first = timed(pool[0])
                rest = [timed(t) for t in pool[1:21]]
                out[alg] = {"first_us": round(first), "next_median_us": round(statistics.median(rest))}
        finally:
            envoy.stop()
    return out


def memory(upstream: EchoUpstream, fill: list[str]) -> dict:
    """Envoy's RSS and heap with the module loaded (1 and 2 workers), and
    after `len(fill)` distinct tokens filled the verdict cache (2 workers)."""
    out = {}
    config = plugin_config()
    config["cache"] = {"max_entries": len(fill), "ttl_seconds": 3600}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            envoy = Envoy(probe_config(config, True), upstream.port, concurrency=workers, workdir=Path(tmp)).start()
            try:
                # Touch every worker's VM.
                for _ in range(20):
                    probe(envoy)
                time.sleep(1)
                out[f"rss_kib_{workers}_workers"] = rss_kib(envoy.process.pid)
                out[f"heap_bytes_{workers}_workers"] = heap_bytes(envoy)
                if workers == 2:
                    conn = http.client.HTTPConnection("127.0.0.1", envoy.listen_port, timeout=10)
                    for token in fill:
                        status, _, _ = request(envoy.listen_port, "GET", "/api",
                                               {"authorization": f"Bearer {token}"}, conn)
                        assert status == 200, status
                    conn.close()
                    time.sleep(1)
                    out["rss_kib_full_cache"] = rss_kib(envoy.process.pid)
                    out["heap_bytes_full_cache"] = heap_bytes(envoy)
                    out["cache_entries"] = len(fill)
            finally:
                envoy.stop()
    out["rss_kib_per_worker"] = out["rss_kib_2_workers"] - out["rss_kib_1_workers"]
    out["rss_kib_full_cache_delta"] = out["rss_kib_full_cache"] - out["rss_kib_2_workers"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache-entries", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=WORK / "coldstart.json")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    print(f"module: {WASM} ({WASM.stat().st_size} bytes)", flush=True)
    tokens = {alg: token_pool(alg, 30_000).read_text().split()[:21] for alg in ALGS}
    fill = token_pool("RS256", max(args.cache_entries, 30_000)).read_text().split()[:args.cache_entries]
    results: dict = {"module_bytes": WASM.stat().st_size}
    with EchoUpstream() as upstream:
        for workers in (1, 2):
            results[f"start_to_first_request_s_{workers}_workers"] = process_start(upstream, workers, args.rounds)
            results.update({f"{k}_{workers}_workers": v for k, v in pushes(upstream, workers, args.rounds).items()})
            print(json.dumps({k: v for k, v in results.items() if str(workers) in k}), flush=True)
        results["first_request"] = first_requests(upstream, tokens)
        print(json.dumps(results["first_request"]), flush=True)
        results["memory"] = memory(upstream, fill)
        print(json.dumps(results["memory"]), flush=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

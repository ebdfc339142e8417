//! Per-request cost of the real module, without Envoy: wall time (median) and
//! Wasm instructions (wasmtime fuel, independent of machine load) for a cache
//! hit and a cache miss per algorithm. Run: `cargo bench -p license-gate-host-tests`;
//! `LICENSE_GATE_BENCH_ALGS=EdDSA,RS256` measures only those algorithms.
//! A regression shows here before it shows in scripts/bench.sh.

#[allow(dead_code)]
#[path = "../tests/filter/support.rs"]
mod support;

use std::time::Instant;

use license_gate_host_tests::{Process, Vm, compile_metered};
use serde_json::json;
use support::*;

const MISSES: usize = 40;
const HITS: usize = 400;

fn request(vm: &mut Vm, token: &str) {
    let auth = format!("Bearer {token}");
    let reply = vm
        .request(&[
            (":method", "GET"),
            (":authority", "api.example.com"),
            (":path", "/api/data"),
            ("authorization", &auth),
        ])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(reply.status(), 200, "{}", reply.body());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (median µs per request, Wasm instructions per request) over `tokens`.
fn measure(vm: &mut Vm, metered: &mut Vm, tokens: &[String]) -> (f64, u64) {
    let times = tokens
        .iter()
        .map(|t| {
            let start = Instant::now();
            request(vm, t);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let before = metered.fuel_consumed();
    for t in tokens {
        request(metered, t);
    }
    (median(times), (metered.fuel_consumed() - before) / tokens.len() as u64)
}

fn main() {
    let wasm_path = std::env::var("LICENSE_GATE_WASM")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/license_gate.wasm").to_string());
    let wasm = std::fs::read(&wasm_path).unwrap_or_else(|e| panic!("{wasm_path}: {e}"));
    let metered_module = compile_metered(&wasm).unwrap_or_else(|e| panic!("{e:#}"));
    let config = with(config(), &["cache"], json!({"max_entries": 100_000}));

    // `LICENSE_GATE_HIT_LOOP=N` / `LICENSE_GATE_MISS_LOOP=N`: only N RS256
    // cache hits (or misses), for a profiler (with LICENSE_GATE_PERFMAP set,
    // `perf record` names the Wasm functions).
    for (var, distinct) in [("LICENSE_GATE_HIT_LOOP", 1), ("LICENSE_GATE_MISS_LOOP", usize::MAX)] {
        if let Some(n) = std::env::var(var).ok().and_then(|n| n.parse::<usize>().ok()) {
            let process = Process::new();
            process.clock().set_seconds(NOW);
            let mut vm = Vm::start(module(), &process).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(vm.configure(config.to_string().as_bytes()).unwrap_or(false));
            let tokens: Vec<String> =
                (0..n.min(distinct)).map(|i| mint(RS256, &claims(json!({"jti": format!("p{i}")})))).collect();
            for i in 0..n {
                request(&mut vm, &tokens[i % tokens.len()]);
            }
            return;
        }
    }

    // The floor of any Wasm filter: the empty filter scripts/bench.sh builds.
    let empty = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm32-wasip1/release/bench_empty_filter.wasm");
    match std::fs::read(empty) {
        Ok(bytes) => {
            let module = compile_metered(&bytes).unwrap_or_else(|e| panic!("{e:#}"));
            let mut vm = Vm::start(&module, &Process::new()).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(vm.configure(b"").unwrap_or(false));
            let headers = [(":method", "GET"), (":authority", "api.example.com"), (":path", "/healthz")];
            let before = vm.fuel_consumed();
            for _ in 0..HITS {
                vm.request(&headers).unwrap_or_else(|e| panic!("{e:#}"));
            }
            println!("empty filter: {} instructions per request", (vm.fuel_consumed() - before) / HITS as u64);
        }
        Err(_) => println!("empty filter: not built (scripts/bench.sh builds it)"),
    }
    // An open route, where license-gate looks at no token.
    {
        let process = Process::new();
        let mut metered = Vm::start(&metered_module, &process).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(metered.configure(config.to_string().as_bytes()).unwrap_or(false));
        let headers = [(":method", "GET"), (":authority", "api.example.com"), (":path", "/healthz")];
        let before = metered.fuel_consumed();
        for _ in 0..HITS {
            metered.request(&headers).unwrap_or_else(|e| panic!("{e:#}"));
        }
        println!("open route: {} instructions per request\n", (metered.fuel_consumed() - before) / HITS as u64);
    }
    println!("{:<10} {:>14} {:>16} {:>14} {:>16}", "alg", "hit µs", "hit instr", "miss µs", "miss instr");
    let only = std::env::var("LICENSE_GATE_BENCH_ALGS").ok();
    let algs = [("RS256", RS256), ("PS256", PS256), ("ES256", ES256), ("ES384", ES384), ("EdDSA", EDDSA)];
    for (name, signer) in
        algs.into_iter().filter(|(name, _)| only.as_deref().is_none_or(|o| o.split(',').any(|a| a == *name)))
    {
        let process = Process::new();
        process.clock().set_seconds(NOW);
        let start = |module| {
            let mut vm = Vm::start(module, &process).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(vm.configure(config.to_string().as_bytes()).unwrap_or(false));
            vm
        };
        let mut vm = start(module());
        let mut metered = start(&metered_module);
        // Distinct tokens for misses (each VM pair sees each token once: the
        // metered VM gets its own set so that it misses too).
        let mint_n = |tag: &str| -> Vec<String> {
            (0..MISSES).map(|i| mint(signer, &claims(json!({"jti": format!("{tag}-{i}")})))).collect()
        };
        let (timed, counted) = (mint_n("t"), mint_n("m"));
        // Steady state: a key's first verification builds its tables (ECDSA).
        for (vm, tag) in [(&mut vm, "warm-t"), (&mut metered, "warm-m")] {
            request(vm, &mint(signer, &claims(json!({"jti": tag}))));
        }
        let times: Vec<f64> = timed
            .iter()
            .map(|t| {
                let s = Instant::now();
                request(&mut vm, t);
                s.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let before = metered.fuel_consumed();
        for t in &counted {
            request(&mut metered, t);
        }
        let miss = (median(times), (metered.fuel_consumed() - before) / MISSES as u64);
        // Hits: one token, already cached by the loops above.
        let hit_tokens = vec![timed[0].clone(); HITS];
        let hit = measure(&mut vm, &mut metered, &hit_tokens);
        println!("{name:<10} {:>14.1} {:>16} {:>14.1} {:>16}", hit.0, hit.1, miss.0, miss.1);
    }
}

//! The verdict cache in shared data (shared by the VMs of one process, as by
//! Envoy's workers) and the stats that count what happened.

use license_gate_host_tests::{Process, Vm, compile};
use serde_json::{Value, json};

use crate::support::*;

fn vm(process: &Process, config: &Value) -> Vm {
    let mut vm = Vm::start(module(), process).unwrap_or_else(|e| panic!("vm start: {e:#}"));
    assert!(vm.configure(config.to_string().as_bytes()).unwrap_or(false), "{:?}", vm.logs());
    vm
}

fn get(vm: &mut Vm, path: &str, token: &str) -> (u32, String) {
    let auth = format!("Bearer {token}");
    let reply = vm
        .request(&[(":method", "GET"), (":authority", "api.example.com"), (":path", path), ("authorization", &auth)])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let outcome = match reply.status() {
        200 => reply.header("x-license-status").unwrap_or_default(),
        _ => reason_of(&reply),
    };
    (reply.status(), outcome)
}

/// Every license_gate stat that is not zero, by name.
fn stats(process: &Process) -> Vec<(String, u64)> {
    let metrics = process.metrics();
    let mut out: Vec<(String, u64)> =
        metrics.all.iter().filter(|m| m.value > 0).map(|m| (m.name.clone(), m.value)).collect();
    out.sort();
    out
}

fn expect(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    out.sort();
    out
}

fn clock_at(process: &Process, t: u64) {
    process.clock().set_seconds(t);
}

#[test]
fn exact_stats_after_a_known_sequence() {
    let process = Process::new();
    clock_at(&process, NOW);
    let mut vm = vm(&process, &config());
    let pro = mint(RS256, &claims(json!({"plan": "pro", "exp": NOW + 1000})));
    let basic = mint(ES256, &claims(json!({})));
    let forged = mint(Signer { key: "rsa-other.key.pem", ..RS256 }, &claims(json!({})));
    let foreign = mint(RS256, &claims(json!({"iss": "https://evil.example.com"})));
    let grace = mint(EDDSA, &claims(json!({"exp": NOW - 3600})));

    let sequence: Vec<(&str, &str, (u32, &str))> = vec![
        ("/api/reports", &pro, (200, "active")),            // miss, verify
        ("/api/reports", &pro, (200, "active")),            // hit
        ("/api/data", &pro, (200, "active")),               // hit: one entry serves every route
        ("/api/reports", &basic, (403, "feature_missing")), // miss, verify
        ("/api/reports", &basic, (403, "feature_missing")), // hit
        ("/api/data", &forged, (401, "bad_signature")),     // miss, verify
        ("/api/data", &forged, (401, "bad_signature")),     // negative hit: no second verification
        ("/api/data", &foreign, (401, "issuer_mismatch")),  // miss, rejected before the signature
        ("/api/data", &foreign, (401, "issuer_mismatch")),  // negative hit
        ("/api/data", &grace, (200, "grace")),              // miss, verify
        ("/healthz", "", (200, "")),                        // open route
        ("/internal", &pro, (403, "route_denied")),         // no token looked at
        ("/api/data", "x.y", (401, "malformed")),           // miss
    ];
    for (i, (path, token, want)) in sequence.into_iter().enumerate() {
        let got = if token.is_empty() {
            let reply = vm
                .request(&[(":method", "GET"), (":authority", "h"), (":path", path)])
                .unwrap_or_else(|e| panic!("{e:#}"));
            (reply.status(), String::new())
        } else {
            get(&mut vm, path, token)
        };
        assert_eq!((got.0, got.1.as_str()), want, "step {i}: {path}");
    }
    assert_eq!(
        stats(&process),
        expect(&[
            ("license_gate.allowed", 4),
            ("license_gate.allowed_grace", 1),
            ("license_gate.open", 1),
            ("license_gate.cache_hit", 5),
            ("license_gate.cache_miss", 6),
            ("license_gate.signature_verifications", 4),
            ("license_gate.reason=.=feature_missing;.;denied", 2),
            ("license_gate.reason=.=bad_signature;.;denied", 2),
            ("license_gate.reason=.=issuer_mismatch;.;denied", 2),
            ("license_gate.reason=.=route_denied;.;denied", 1),
            ("license_gate.reason=.=malformed;.;denied", 1),
        ])
    );
    // Remaining validity of every request that carried a valid license:
    // pro ×3, basic ×2 (30 days), the grace license (past exp: 0).
    let month = 30 * 86_400;
    assert_eq!(process.samples("license_gate.license_remaining_seconds"), [1000, 1000, 1000, month, month, 0]);
}

#[test]
fn a_token_verified_on_one_worker_is_a_hit_on_another() {
    let process = Process::new();
    clock_at(&process, NOW);
    let mut worker_a = vm(&process, &config());
    let mut worker_b = vm(&process, &config());
    let token = mint(PS256, &claims(json!({})));
    assert_eq!(get(&mut worker_a, "/api/data", &token), (200, "active".into()));
    assert_eq!(get(&mut worker_b, "/api/data", &token), (200, "active".into()));
    assert_eq!(get(&mut worker_b, "/api/data", &token), (200, "active".into()));
    assert_eq!(process.metric("license_gate.signature_verifications"), Some(1));
    assert_eq!(process.metric("license_gate.cache_hit"), Some(2));
    assert_eq!(process.metric("license_gate.cache_miss"), Some(1));
}

#[test]
fn a_slot_collision_never_serves_another_tokens_verdict() {
    let process = Process::new();
    clock_at(&process, NOW);
    // One slot: every token lands on the same entry.
    let mut vm = vm(&process, &with(config(), &["cache"], json!({"max_entries": 1})));
    let pro = mint(RS256, &claims(json!({"plan": "pro", "tenant": "acme"})));
    let other = mint(RS256, &claims(json!({"tenant": "globex"})));
    let expired = mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE - 1})));
    for _ in 0..2 {
        assert_eq!(get(&mut vm, "/api/reports", &pro), (200, "active".into()));
        assert_eq!(get(&mut vm, "/api/reports", &other), (403, "feature_missing".into()));
        assert_eq!(get(&mut vm, "/api/data", &expired), (401, "expired".into()));
    }
    let auth = format!("Bearer {other}");
    let reply = vm
        .request(&[(":method", "GET"), (":authority", "h"), (":path", "/api/data"), ("authorization", &auth)])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(reply.header("x-license-tenant").as_deref(), Some("globex"));
    assert_eq!(process.metric("license_gate.cache_hit"), Some(0), "every lookup collided");
    assert_eq!(process.shared_data().len(), 1);
}

#[test]
fn the_cache_is_bounded_however_many_tokens_arrive() {
    let process = Process::new();
    clock_at(&process, NOW);
    let mut vm = vm(&process, &with(config(), &["cache"], json!({"max_entries": 32})));
    for i in 0..400 {
        // Distinct tokens, cheaply refused (foreign issuer): each is cached.
        let token = mint(ES256, &claims(json!({"iss": format!("https://x{i}.example.com")})));
        assert_eq!(get(&mut vm, "/api/data", &token).1, "issuer_mismatch");
    }
    let entries = process.shared_data().len();
    assert!(entries <= 32, "{entries} entries for 32 slots");
    assert!(entries >= 24, "the tokens should spread over the slots, got {entries}");
}

#[test]
fn cached_licenses_move_to_grace_and_expire_on_time() {
    let process = Process::new();
    clock_at(&process, NOW);
    let cfg = with(config(), &["cache"], json!({"max_entries": 100, "ttl_seconds": 1_000_000}));
    let mut vm = vm(&process, &cfg);
    let token = mint(RS256, &claims(json!({"exp": NOW + 100})));
    assert_eq!(get(&mut vm, "/api/data", &token), (200, "active".into()));
    clock_at(&process, NOW + 100 + SKEW);
    assert_eq!(get(&mut vm, "/api/data", &token), (200, "grace".into()));
    assert_eq!(process.metric("license_gate.cache_hit"), Some(1), "grace came from the cache");
    clock_at(&process, NOW + 100 + SKEW + GRACE);
    assert_eq!(get(&mut vm, "/api/data", &token), (401, "expired".into()));
    assert_eq!(process.metric("license_gate.cache_miss"), Some(2), "the entry died with the license");
}

#[test]
fn positive_entries_expire_after_the_ttl_and_denials_after_the_negative_ttl() {
    let process = Process::new();
    clock_at(&process, NOW);
    let cfg = with(config(), &["cache"], json!({"max_entries": 100, "ttl_seconds": 60, "negative_ttl_seconds": 5}));
    let mut vm = vm(&process, &cfg);
    let good = mint(RS256, &claims(json!({})));
    let bad = mint(Signer { key: "rsa-other.key.pem", ..RS256 }, &claims(json!({})));
    let steps: [(u64, &str, &str); 6] = [
        (NOW, "good", "miss"),
        (NOW + 59, "good", "hit"),
        (NOW + 60, "good", "miss"),
        (NOW + 60, "bad", "miss"),
        (NOW + 64, "bad", "hit"),
        (NOW + 65, "bad", "miss"),
    ];
    for (at, which, want) in steps {
        clock_at(&process, at);
        let before = process.metric("license_gate.cache_hit").unwrap_or(0);
        get(&mut vm, "/api/data", if which == "good" { &good } else { &bad });
        let hit = process.metric("license_gate.cache_hit").unwrap_or(0) > before;
        assert_eq!(if hit { "hit" } else { "miss" }, want, "{which} at now+{}", at - NOW);
    }
}

#[test]
fn a_new_configuration_does_not_read_old_verdicts() {
    let process = Process::new();
    clock_at(&process, NOW);
    let token = mint(RS256, &claims(json!({})));
    let mut old = vm(&process, &config());
    assert_eq!(get(&mut old, "/api/data", &token), (200, "active".into()));
    // The issuer is no longer trusted: the cached "active" must not be reused.
    let mut new = vm(&process, &with(config(), &["issuers"], json!(["https://new-issuer.example.com"])));
    assert_eq!(get(&mut new, "/api/data", &token), (401, "issuer_mismatch".into()));
    assert_eq!(process.metric("license_gate.cache_hit"), Some(0));
}

/// During a module update, old and new VMs share one Envoy process and its
/// shared data. A second build (the real module with another build id
/// patched in) must never read the first one's entries, whose layout it
/// cannot know: same configuration, same token, two verifications.
#[test]
fn two_builds_in_one_process_never_read_each_others_entries() {
    const MARKER: &[u8] = b"license-gate-build-id:";
    let wasm = module_bytes();
    let at =
        wasm.windows(MARKER.len()).position(|w| w == MARKER).expect("build id marker in the module") + MARKER.len();
    let id = String::from_utf8(wasm[at..at + 16].to_vec()).expect("a hex build id");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let mut other = wasm.to_vec();
    for b in &mut other[at..at + 16] {
        *b = if *b == b'f' { b'0' } else { b'f' };
    }
    let other_id = String::from_utf8(other[at..at + 16].to_vec()).unwrap();
    let other = compile(&other).unwrap_or_else(|e| panic!("compiling the second build: {e:#}"));

    let process = Process::new();
    clock_at(&process, NOW);
    let token = mint(RS256, &claims(json!({})));
    let mut old = vm(&process, &config());
    let mut new = Vm::start(&other, &process).unwrap_or_else(|e| panic!("vm start: {e:#}"));
    assert!(new.configure(config().to_string().as_bytes()).unwrap_or(false), "{:?}", new.logs());

    assert_eq!(get(&mut old, "/api/data", &token), (200, "active".into()));
    assert_eq!(get(&mut new, "/api/data", &token), (200, "active".into()));
    assert_eq!(process.metric("license_gate.cache_hit"), Some(0));
    assert_eq!(process.metric("license_gate.signature_verifications"), Some(2));
    let mut prefixes: Vec<String> = process
        .shared_data()
        .keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).split(':').take(2).collect::<Vec<_>>().join(":"))
        .collect();
    prefixes.sort();
    let mut want = vec![format!("lg2:{id}"), format!("lg2:{other_id}")];
    want.sort();
    assert_eq!(prefixes, want);
}

#[test]
fn max_entries_zero_disables_the_cache() {
    let process = Process::new();
    clock_at(&process, NOW);
    let mut vm = vm(&process, &with(config(), &["cache"], json!({"max_entries": 0})));
    let token = mint(EDDSA, &claims(json!({})));
    get(&mut vm, "/api/data", &token);
    get(&mut vm, "/api/data", &token);
    assert_eq!(process.metric("license_gate.signature_verifications"), Some(2));
    assert_eq!(process.metric("license_gate.cache_miss"), Some(0));
    assert!(process.shared_data().is_empty());
}

#[test]
fn dry_run_counts_would_be_denials_not_denials() {
    let process = Process::new();
    clock_at(&process, NOW);
    let mut vm = vm(&process, &with(config(), &["mode"], json!("dry_run")));
    let expired = mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE - 1})));
    assert_eq!(get(&mut vm, "/api/data", &expired).0, 200);
    assert_eq!(
        stats(&process),
        expect(&[("license_gate.reason=.=expired;.;dry_run_would_deny", 1), ("license_gate.cache_miss", 1),])
    );
}

#[test]
fn access_log_properties() {
    let process = Process::new();
    clock_at(&process, NOW);
    let mut vm = vm(&process, &config());
    let prop = |vm: &Vm, name: &str| {
        vm.state().properties.get(name.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let token = mint(RS256, &claims(json!({"tenant": "acme", "jti": "lic-42"})));
    get(&mut vm, "/api/data", &token);
    assert_eq!(prop(&vm, "license_gate.decision").as_deref(), Some("allow"));
    assert_eq!(prop(&vm, "license_gate.reason"), None, "nothing to say: not set");
    assert_eq!(prop(&vm, "license_gate.license_id").as_deref(), Some("lic-42"));
    assert_eq!(prop(&vm, "license_gate.tenant").as_deref(), Some("acme"));
    get(&mut vm, "/api/reports", &token);
    assert_eq!(prop(&vm, "license_gate.decision").as_deref(), Some("deny"));
    assert_eq!(prop(&vm, "license_gate.reason").as_deref(), Some("feature_missing"));
    assert_eq!(prop(&vm, "license_gate.license_id").as_deref(), Some("lic-42"));
    get(&mut vm, "/api/data", "garbage");
    assert_eq!(prop(&vm, "license_gate.reason").as_deref(), Some("malformed"));
    assert_eq!(prop(&vm, "license_gate.tenant"), None);
    get(&mut vm, "/healthz", "");
    assert_eq!(prop(&vm, "license_gate.decision").as_deref(), Some("open"));
    assert_eq!(vm.state().properties.len(), 1, "an open route sets the decision only");
}

//! A license's life at the gateway: remote JWKS with rotation, revocation
//! lists, deployment binding. The harness plays Envoy's event loop: VMs of
//! one process share shared data and a clock; `proxy_http_call`s go to
//! scripted clusters and come back (or time out) as the clock moves; ticks
//! fire on the test clock.

use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use license_gate_host_tests::{Process, Reply, Scripted, Vm};
use serde_json::{Value, json};

use crate::support::*;

const KEYS_CLUSTER: &str = "license-keys";
const K1: Signer = Signer { alg: Algorithm::RS256, kid: Some("k1"), key: "rsa.key.pem" };
const K2: Signer = Signer { alg: Algorithm::ES256, kid: Some("k2"), key: "p256.key.pem" };
const K3: Signer = Signer { alg: Algorithm::EdDSA, kid: Some("k3"), key: "ed25519.key.pem" };

/// What the key server answers, changed by the test as it goes.
#[derive(Clone)]
struct Served {
    jwks: Scripted,
    revocations: Scripted,
}

fn jwks_of(signers: &[Signer]) -> Vec<u8> {
    json!({"keys": signers.iter().map(|s| jwk(*s)).collect::<Vec<_>>()}).to_string().into_bytes()
}

/// A revocation list signed by `signer`, issued at `iat`.
fn revocation_list(signer: Signer, iat: u64, ids: &[&str]) -> Vec<u8> {
    let header = json!({"alg": format!("{:?}", signer.alg), "kid": signer.kid, "typ": "license-revocations+jwt"});
    let payload = json!({
        "iss": ISSUER, "iat": iat, "next_update": iat + 60,
        "revoked": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
    });
    sign_parts(signer, &header, &payload).into_bytes()
}

fn sign_parts(signer: Signer, header: &Value, payload: &Value) -> String {
    sign_raw(signer, &header.to_string(), &payload.to_string())
}

fn remote(path: &str, refresh: u64) -> Value {
    json!({"cluster": KEYS_CLUSTER, "path": path, "authority": "keys.example.com",
           "refresh_seconds": refresh, "timeout_ms": 2000, "max_stale_seconds": 3600})
}

/// The reference configuration with its keys only from the key server.
fn remote_config() -> Value {
    let config = with(config(), &["keys"], json!({"remote": remote("/.well-known/jwks.json", 300)}));
    with(config, &["algorithms"], json!(["RS256", "ES256", "EdDSA"]))
}

/// One Envoy process: VMs, a clock, a key server.
struct Mesh {
    process: Process,
    vms: Vec<Vm>,
    served: Arc<Mutex<Served>>,
}

impl Mesh {
    fn new(config: &Value, workers: usize) -> Mesh {
        Mesh::with_node(config, workers, |_| {})
    }

    fn with_node(config: &Value, workers: usize, node: impl Fn(&Process)) -> Mesh {
        let process = Process::new();
        process.clock().set_seconds(NOW);
        node(&process);
        let served = Arc::new(Mutex::new(Served {
            jwks: Scripted::ok(jwks_of(&[K1])),
            revocations: Scripted::ok(revocation_list(K1, NOW - 10, &[])),
        }));
        let script = served.clone();
        process.clusters().script(KEYS_CLUSTER, move |call| {
            let served = script.lock().unwrap_or_else(|p| p.into_inner());
            let path = call.headers.iter().find(|(n, _)| n == ":path").map(|(_, v)| v.clone()).unwrap_or_default();
            if path.ends_with(b".jwt") { served.revocations.clone() } else { served.jwks.clone() }
        });
        let vms = (0..workers)
            .map(|_| {
                let mut vm = Vm::start(module(), &process).unwrap_or_else(|e| panic!("vm: {e:#}"));
                let ok = vm.configure(config.to_string().as_bytes()).unwrap_or_else(|e| panic!("configure: {e:#}"));
                assert!(ok, "refused: {:?}", vm.logs());
                vm
            })
            .collect();
        Mesh { process, vms, served }
    }

    fn serve(&self, change: impl FnOnce(&mut Served)) {
        change(&mut self.served.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Moves the clock on in 100 ms steps, each VM catching up at each step.
    fn run(&mut self, millis: u64) {
        for _ in 0..millis.div_ceil(100) {
            self.process.clock().advance_millis(100);
            for vm in &mut self.vms {
                vm.pump().unwrap_or_else(|e| panic!("pump: {e:#}"));
            }
        }
    }

    /// Like [`Mesh::run`], but only `worker` catches up: the others see no
    /// tick (a worker whose next tick has not come yet).
    fn run_only(&mut self, worker: usize, millis: u64) {
        for _ in 0..millis.div_ceil(100) {
            self.process.clock().advance_millis(100);
            self.vms[worker].pump().unwrap_or_else(|e| panic!("pump: {e:#}"));
        }
    }

    fn fetches(&self, path_suffix: &str) -> usize {
        let clusters = self.process.clusters();
        clusters
            .calls
            .iter()
            .filter(|c| c.headers.iter().any(|(n, v)| n == ":path" && v.ends_with(path_suffix.as_bytes())))
            .count()
    }

    fn get(&mut self, worker: usize, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.vms[worker]
            .request(&[(":method", "GET"), (":authority", "h"), (":path", "/api/data"), ("authorization", &auth)])
            .unwrap_or_else(|e| panic!("request: {e:#}"))
    }

    fn outcome(&mut self, worker: usize, token: &str) -> (u32, String) {
        let reply = self.get(worker, token);
        (reply.status(), reason_of(&reply))
    }

    fn metric(&self, name: &str) -> u64 {
        self.process.metric(name).unwrap_or(0)
    }

    fn logs(&mut self) -> Vec<String> {
        self.vms.iter_mut().flat_map(|vm| vm.take_logs()).map(|l| l.message).collect()
    }
}

fn token(signer: Signer) -> String {
    mint(signer, &claims(json!({})))
}

fn ok() -> (u32, String) {
    (200, "forwarded".into())
}

fn denied(status: u32, reason: &str) -> (u32, String) {
    (status, reason.into())
}

#[test]
fn before_the_first_fetch_remote_keys_are_unavailable_then_serve() {
    let mut mesh = Mesh::new(&remote_config(), 2);
    let t1 = token(K1);
    let reply = mesh.get(0, &t1);
    assert_eq!((reply.status(), reason_of(&reply)), denied(503, "keys_unavailable"));
    assert_eq!(reply.header("retry-after").as_deref(), Some("5"));
    assert_eq!(reply.header("www-authenticate"), None);
    assert_eq!(
        reply.body(),
        deny_body("keys_unavailable", "the gateway cannot verify licenses right now; retry later", &[])
    );
    mesh.run(1_100);
    assert_eq!(mesh.outcome(0, &t1), ok());
    assert_eq!(mesh.outcome(1, &t1), ok());
    assert_eq!(mesh.metric("license_gate.jwks_fetch_success"), 1);
    assert_eq!(mesh.metric("license_gate.jwks_keys"), 1);
    // The keys_unavailable answer was not cached.
    assert_eq!(mesh.metric("license_gate.reason=.=keys_unavailable;.;denied"), 1);
}

#[test]
fn one_fetch_per_process_per_period_however_many_workers() {
    let config = with(remote_config(), &["keys", "remote", "refresh_seconds"], json!(10));
    let mut mesh = Mesh::new(&config, 3);
    mesh.run(35_000);
    // At 0.5 s (answered at 0.6), then 10 s after each success, on the
    // next tick: 11.0, 21.5, 32.0.
    assert_eq!(mesh.fetches("jwks.json"), 4);
    assert_eq!(mesh.metric("license_gate.jwks_fetch_success"), 4);
    let request = mesh.process.clusters().calls[0].clone();
    let header = |name: &str| request.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(header(":authority"), Some(b"keys.example.com".to_vec()));
    assert_eq!(header(":method"), Some(b"GET".to_vec()));
}

#[test]
fn rotation_new_key_accepted_removed_key_refused_at_the_next_refresh() {
    let config = with(remote_config(), &["keys", "remote", "refresh_seconds"], json!(10));
    let mut mesh = Mesh::new(&config, 2);
    mesh.run(1_100);
    let (t1, t2) = (token(K1), token(K2));
    assert_eq!(mesh.outcome(0, &t1), ok());
    assert_eq!(mesh.outcome(1, &t1), ok());
    assert_eq!(mesh.outcome(0, &t2), denied(401, "unknown_kid"));

    // The vendor adds k2 and drops k1; the cache held k1's verdict "allowed"
    // and k2's "unknown_kid": neither survives the new generation.
    mesh.serve(|s| s.jwks = Scripted::ok(jwks_of(&[K2])));
    mesh.run(11_000);
    assert_eq!(mesh.outcome(0, &t2), ok());
    assert_eq!(mesh.outcome(1, &t2), ok());
    assert_eq!(mesh.outcome(0, &t1), denied(401, "unknown_kid"));
    assert_eq!(mesh.outcome(1, &t1), denied(401, "unknown_kid"));
}

#[test]
fn an_unchanged_document_keeps_its_generation_and_the_cache() {
    let config = with(remote_config(), &["keys", "remote", "refresh_seconds"], json!(10));
    let mut mesh = Mesh::new(&config, 1);
    mesh.run(1_100);
    let t1 = token(K1);
    assert_eq!(mesh.outcome(0, &t1), ok());
    // The same keys, re-serialised with other whitespace and order.
    let mut reordered: Value = serde_json::from_slice(&jwks_of(&[K1])).unwrap();
    reordered["extra"] = json!("ignored");
    mesh.serve(|s| s.jwks = Scripted::ok(serde_json::to_vec_pretty(&reordered).unwrap()));
    mesh.run(10_000);
    assert_eq!(mesh.metric("license_gate.jwks_fetch_success"), 2);
    assert_eq!(mesh.outcome(0, &t1), ok());
    assert_eq!(mesh.metric("license_gate.signature_verifications"), 1, "the cached verdict still serves");
}

#[test]
fn failures_keep_the_last_good_keys_until_max_stale() {
    let config = with(
        remote_config(),
        &["keys", "remote"],
        json!({
        "cluster": KEYS_CLUSTER, "path": "/jwks.json", "refresh_seconds": 60, "timeout_ms": 1000,
        "max_stale_seconds": 120}),
    );
    let mut mesh = Mesh::new(&config, 2);
    mesh.run(1_100);
    let t1 = token(K1);
    assert_eq!(mesh.outcome(0, &t1), ok());

    let bad_documents = [
        (Scripted::status(500), "status"),
        (Scripted::Silence, "timeout"),
        (Scripted::ok(b"{not json".to_vec()), "invalid"),
        (Scripted::ok(json!({"keys": [{"kty": "oct", "k": "AAAA"}]}).to_string().into_bytes()), "invalid"),
        (Scripted::ok(vec![b' '; 70_000]), "too_large"),
    ];
    for (answer, reason) in bad_documents {
        let before = mesh.metric(&format!("license_gate.reason=.={reason};.;jwks_fetch_failed"));
        mesh.serve(|s| s.jwks = answer.clone());
        mesh.run(61_000);
        assert!(mesh.metric(&format!("license_gate.reason=.={reason};.;jwks_fetch_failed")) > before, "{reason}");
        // Within max_stale of the last success the last good keys serve.
        if mesh.process.clock().now_millis() < (NOW + 120) * 1000 {
            assert_eq!(mesh.outcome(1, &t1), ok(), "{reason}");
        }
    }
    // Long past max_stale_seconds since the last success: remote keys are gone.
    assert_eq!(mesh.outcome(0, &t1), denied(503, "keys_unavailable"));
    assert_eq!(mesh.metric("license_gate.jwks_keys"), 0);
    let logs = mesh.logs();
    assert!(
        logs.iter().any(|l| l.contains(
            "keys.remote: fetching /jwks.json from cluster \"license-keys\" failed (status): HTTP status 500"
        )),
        "{logs:?}"
    );
    // Recovery: the next good fetch brings them back.
    mesh.serve(|s| s.jwks = Scripted::ok(jwks_of(&[K1])));
    mesh.run(61_000);
    assert_eq!(mesh.outcome(0, &t1), ok());
}

#[test]
fn failures_back_off_from_one_second_up_to_the_refresh_period() {
    let config = with(remote_config(), &["keys", "remote", "refresh_seconds"], json!(8));
    let mut mesh = Mesh::new(&config, 2);
    mesh.serve(|s| s.jwks = Scripted::status(503));
    mesh.run(20_000);
    // At 0.5 s, then 1, 2, 4, 8, 8 s later: 0.5, 1.5, 3.5, 7.5, 15.5 (and 23.5).
    assert_eq!(mesh.fetches("jwks.json"), 5);
    assert_eq!(mesh.metric("license_gate.reason=.=status;.;jwks_fetch_failed"), 5);
}

#[test]
fn an_unknown_kid_brings_the_refresh_forward_at_most_every_30_seconds() {
    let mut mesh = Mesh::new(&remote_config(), 2);
    mesh.run(1_100);
    assert_eq!(mesh.fetches("jwks.json"), 1);
    mesh.serve(|s| s.jwks = Scripted::ok(jwks_of(&[K1, K2])));
    let t2 = token(K2);
    assert_eq!(mesh.outcome(0, &t2), denied(401, "unknown_kid"));
    mesh.run(1_000);
    assert_eq!(mesh.fetches("jwks.json"), 2, "refreshed early, not after 300 s");
    assert_eq!(mesh.outcome(1, &t2), ok());
    // Another unknown kid right away: no new fetch for 30 s.
    let t3 = token(K3);
    for _ in 0..5 {
        assert_eq!(mesh.outcome(0, &t3), denied(401, "unknown_kid"));
        mesh.run(2_000);
    }
    assert_eq!(mesh.fetches("jwks.json"), 2);
    mesh.run(25_000);
    assert_eq!(mesh.outcome(1, &t3), denied(401, "unknown_kid"));
    mesh.run(1_000);
    assert_eq!(mesh.fetches("jwks.json"), 3);
}

#[test]
fn inline_keys_stay_valid_beside_remote_ones() {
    let config = with(
        remote_config(),
        &["keys", "pem"],
        json!([{"kid": "es1", "alg": "ES256", "key": key_file("p256.pub.pem")}]),
    );
    let mut mesh = Mesh::new(&config, 1);
    let inline = mint(ES256, &claims(json!({})));
    assert_eq!(mesh.outcome(0, &inline), ok(), "no fetch needed for an inline key");
    assert_eq!(mesh.outcome(0, &token(K1)), denied(503, "keys_unavailable"));
    mesh.run(1_100);
    assert_eq!(mesh.outcome(0, &token(K1)), ok());
}

#[test]
fn an_unknown_cluster_is_a_counted_failure() {
    let config = with(remote_config(), &["keys", "remote", "cluster"], json!("no-such-cluster"));
    let mut mesh = Mesh::new(&config, 1);
    mesh.run(2_000);
    assert_eq!(mesh.metric("license_gate.reason=.=status;.;jwks_fetch_failed"), 2);
    let logs = mesh.logs();
    assert!(logs.iter().any(|l| l.contains("cluster \"no-such-cluster\" is unknown")), "{logs:?}");
}

fn revocation_config(extra: Value) -> Value {
    let mut revocation = json!({"remote": remote("/revocations.jwt", 60)});
    if let (Value::Object(r), Value::Object(e)) = (&mut revocation, extra) {
        r.extend(e);
    }
    with(remote_config(), &["revocation"], revocation)
}

#[test]
fn inline_revocations_refuse_a_license() {
    let config = with(config(), &["revocation"], json!({"ids": ["lic-0001"]}));
    let mut gw = Gateway::new(&config);
    let revoked = mint(RS256, &claims(json!({})));
    let reply = gw.get("/api/data", &revoked);
    assert_eq!((reply.status(), reason_of(&reply)), (401, "revoked".into()));
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"license-gate\", error=\"invalid_token\"")
    );
    assert_eq!(reply.body(), deny_body("revoked", "the license has been revoked", &[]));
    let other = mint(RS256, &claims(json!({"jti": "lic-0002"})));
    assert_eq!(gw.get("/api/data", &other).status(), 200);
}

/// Two workers with revocation.remote, a license both have allowed (and
/// cached), and the key server now listing it as revoked.
fn a_license_both_workers_allowed_then_revoked_at_the_key_server() -> (Mesh, String) {
    let mut mesh = Mesh::new(&revocation_config(json!({})), 2);
    mesh.run(1_100);
    let license = mint(K1, &claims(json!({"jti": "lic-123"})));
    assert_eq!(mesh.outcome(0, &license), ok());
    assert_eq!(mesh.outcome(1, &license), ok());
    mesh.serve(|s| s.revocations = Scripted::ok(revocation_list(K1, NOW + 30, &["lic-123"])));
    (mesh, license)
}

#[test]
fn a_revoked_license_is_refused_within_one_list_period_even_when_cached() {
    let (mut mesh, license) = a_license_both_workers_allowed_then_revoked_at_the_key_server();
    mesh.run(61_000);
    assert_eq!(mesh.metric("license_gate.revocation_fetch_success"), 2);
    assert_eq!(mesh.metric("license_gate.revocation_ids"), 1);
    assert_eq!(mesh.outcome(0, &license), denied(401, "revoked"));
    assert_eq!(mesh.outcome(1, &license), denied(401, "revoked"));
    // Taken off a newer list: accepted again.
    mesh.serve(|s| s.revocations = Scripted::ok(revocation_list(K1, NOW + 90, &[])));
    mesh.run(61_000);
    assert_eq!(mesh.outcome(0, &license), ok());
}

#[test]
fn what_one_worker_publishes_is_in_force_on_every_worker_before_their_next_tick() {
    let (mut mesh, license) = a_license_both_workers_allowed_then_revoked_at_the_key_server();
    // Only worker 0 ticks: it fetches and publishes the new list; worker 1
    // holds an "allowed" verdict in its own cache and has had no tick since.
    mesh.run_only(0, 61_000);
    assert_eq!(mesh.metric("license_gate.revocation_fetch_success"), 2);
    assert_eq!(mesh.outcome(1, &license), denied(401, "revoked"));
    assert_eq!(mesh.outcome(0, &license), denied(401, "revoked"));
    // The same for a key rotation.
    mesh.serve(|s| s.jwks = Scripted::ok(jwks_of(&[K2])));
    mesh.run_only(0, 301_000);
    let t2 = token(K2);
    assert_eq!(mesh.outcome(1, &t2), ok());
    assert_eq!(mesh.outcome(1, &token(K1)), denied(401, "unknown_kid"));
}

#[test]
fn a_tampered_foreign_older_or_oversized_list_is_ignored() {
    let config = revocation_config(json!({}));
    let mut mesh = Mesh::new(&config, 1);
    mesh.serve(|s| s.revocations = Scripted::ok(revocation_list(K1, NOW, &["lic-1"])));
    mesh.run(1_100);
    let lic1 = mint(K1, &claims(json!({"jti": "lic-1"})));
    let lic2 = mint(K1, &claims(json!({"jti": "lic-2"})));
    assert_eq!(mesh.outcome(0, &lic1), denied(401, "revoked"));

    let good_then = String::from_utf8(revocation_list(K1, NOW + 100, &["lic-2"])).unwrap();
    let (head, rest) = good_then.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_payload = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"iss": ISSUER, "iat": NOW + 100, "next_update": NOW + 200, "revoked": []}).to_string())
    };
    let not_a_list = sign_parts(
        K1,
        &json!({"alg": "RS256", "kid": "k1"}),
        &json!({"iss": ISSUER, "iat": NOW + 100, "next_update": NOW, "revoked": []}),
    );
    let lists: Vec<(&str, Vec<u8>)> = vec![
        ("tampered payload", format!("{head}.{forged_payload}.{sig}").into_bytes()),
        ("signed by a key the gateway does not trust", revocation_list(JWK_RS256, NOW + 100, &[])),
        ("older than the list in force", revocation_list(K1, NOW - 100, &[])),
        ("a license, not a list (no typ)", not_a_list.into_bytes()),
        ("over max_bytes", vec![b'a'; 1_048_577]),
    ];
    for (name, list) in lists {
        let reason = if name == "over max_bytes" { "too_large" } else { "invalid" };
        let before = mesh.metric(&format!("license_gate.reason=.={reason};.;revocation_fetch_failed"));
        mesh.serve(|s| s.revocations = Scripted::ok(list));
        mesh.run(60_000);
        assert!(mesh.metric(&format!("license_gate.reason=.={reason};.;revocation_fetch_failed")) > before, "{name}");
        assert_eq!(mesh.outcome(0, &lic1), denied(401, "revoked"), "{name}");
        assert_eq!(mesh.outcome(0, &lic2), ok(), "{name}");
    }
}

#[test]
fn on_stale_deny_refuses_every_license_once_the_list_is_stale() {
    let config = revocation_config(json!({"on_stale": "deny"}));
    let config = with(config, &["revocation", "remote", "max_stale_seconds"], json!(120));
    let mut mesh = Mesh::new(&config, 1);
    let lic = mint(K1, &claims(json!({"jti": "lic-9"})));
    mesh.run(1_100);
    assert_eq!(mesh.outcome(0, &lic), ok());
    mesh.serve(|s| s.revocations = Scripted::status(502));
    mesh.run(100_000);
    assert_eq!(mesh.outcome(0, &lic), ok(), "within max_stale_seconds");
    mesh.run(30_000);
    assert_eq!(mesh.outcome(0, &lic), denied(503, "keys_unavailable"));
    // on_stale keep (the default) keeps enforcing the last good list instead.
    let keep = with(revocation_config(json!({})), &["revocation", "remote", "max_stale_seconds"], json!(120));
    let mut mesh = Mesh::new(&keep, 1);
    mesh.run(1_100);
    mesh.serve(|s| s.revocations = Scripted::status(502));
    mesh.run(200_000);
    assert_eq!(mesh.outcome(0, &lic), ok());
}

fn binding_config(identity: Value, required: bool) -> Value {
    with(config(), &["binding"], json!({"claim": "deployments", "identity": identity, "required": required}))
}

#[test]
fn binding_for_each_identity_source() {
    let node = |p: &Process| {
        p.set_node_property(&["xds", "node", "id"], b"gw-eu-1");
        p.set_node_property(&["xds", "node", "cluster"], b"eu-prod");
        p.set_node_property(&["xds", "node", "metadata", "CLUSTER_ID"], b"Kubernetes-eu");
    };
    let cases: [(Value, &str); 4] = [
        (json!("node_id"), "gw-eu-1"),
        (json!("node_cluster"), "eu-prod"),
        (json!({"metadata": "CLUSTER_ID"}), "Kubernetes-eu"),
        (json!({"value": "fixed-1"}), "fixed-1"),
    ];
    for (identity, name) in cases {
        let mut mesh = Mesh::with_node(&binding_config(identity.clone(), false), 1, node);
        let bound = |deployments: Value| mint(RS256, &claims(json!({"deployments": deployments})));
        assert_eq!(mesh.outcome(0, &bound(json!(name))), ok(), "{identity}");
        assert_eq!(mesh.outcome(0, &bound(json!(["other", name]))), ok(), "{identity}");
        assert_eq!(mesh.outcome(0, &bound(json!("*"))), ok(), "{identity}");
        assert_eq!(mesh.outcome(0, &bound(json!(["somewhere-else"]))), denied(403, "binding_mismatch"), "{identity}");
        assert_eq!(mesh.outcome(0, &mint(RS256, &claims(json!({})))), ok(), "unbound, not required");
        assert_eq!(mesh.outcome(0, &bound(json!(7))), denied(401, "malformed"));
    }
    let mut mesh = Mesh::with_node(&binding_config(json!("node_cluster"), true), 1, node);
    assert_eq!(mesh.outcome(0, &mint(RS256, &claims(json!({})))), denied(403, "binding_mismatch"), "required");
    assert_eq!(
        mesh.outcome(0, &mint(RS256, &claims(json!({"deployments": "*.prod"})))),
        denied(403, "binding_mismatch")
    );
    let mut mesh = Mesh::new(&binding_config(json!({"value": "gw1.eu.prod"}), true), 1);
    assert_eq!(mesh.outcome(0, &mint(RS256, &claims(json!({"deployments": "*.prod"})))), ok());
}

#[test]
fn an_unreadable_identity_refuses_every_bound_license_and_says_why() {
    let mut mesh = Mesh::new(&binding_config(json!("node_id"), false), 1);
    assert_eq!(mesh.outcome(0, &mint(RS256, &claims(json!({"deployments": "*"})))), denied(403, "binding_mismatch"));
    assert_eq!(mesh.outcome(0, &mint(RS256, &claims(json!({})))), ok());
    // Read once, on the first request; one line says why.
    let logs: Vec<String> = mesh.logs().into_iter().filter(|l| l.contains("binding")).collect();
    assert_eq!(
        logs,
        [
            "license-gate: binding: the gateway's identity cannot be read (xds.node.id is not set): every bound license is refused"
        ]
    );
}

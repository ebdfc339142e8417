//! Writes the committed seed corpora, `seeds/<target>/`, and
//! `dicts/verify_token.dict`, from the tests' own inputs:
//! host-tests/testdata/scenarios.json (the reference configuration and the
//! scenario table that both the wasmtime harness and the Envoy tests run:
//! its tokens are minted here the way the harness mints them, with the
//! private test keys in host-tests/testdata/keys, and its requests become
//! `token_extraction` inputs), plus hand-made cases the table has no reason
//! to hold (binary header values, odd claim types, error configurations),
//! and cache entries as the filter writes them.
//!
//! Deterministic (RSA PKCS#1 v1.5, RFC 6979 ECDSA and Ed25519 signatures
//! are; a randomized PS256 token is kept while it signs the same header and
//! claims), so a rerun rewrites the same files:
//!
//!     cd filter/fuzz && cargo +nightly run --example seeds
//!
//! (`scripts/fuzz.sh --seeds` does that.)

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use license_gate::reason::Reason;
use license_gate_fuzz::{
    AUDIENCE, CACHE_EPOCHS, CACHE_FINGERPRINT, Header, HeaderName, NOW, RecordingStore, RequestInput, cache_settings,
    gate_config_json, sample_verdict, verify_config_json,
};
use serde_json::{Map, Value, json};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../host-tests/testdata");

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key_file(name: &str) -> String {
    read(&format!("{TESTDATA}/keys/{name}"))
}

/// The scenario table: `signers`, `default_claims`, `reference_config`, `scenarios`.
fn table() -> Value {
    let path = format!("{TESTDATA}/scenarios.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `value` with every `{"key_file": name}` member replaced by `{"key": <its contents>}`.
fn with_key_files(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("key_file", Value::String(file)) => ("key".to_string(), Value::String(key_file(&file))),
                    (_, v) => (k, with_key_files(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(with_key_files).collect()),
        other => other,
    }
}

/// RFC 7386 merge patch, as the harness applies scenario configurations.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (k, v) in patch {
            if v.is_null() {
                target.remove(k);
            } else {
                merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// `exp_in`, `nbf_in`, `iat_in` (seconds from NOW) turned into `exp`, `nbf`, `iat`.
fn resolve_time_claims(claims: &Value) -> Map<String, Value> {
    let Value::Object(claims) = claims else { panic!("claims must be an object: {claims}") };
    claims
        .iter()
        .map(|(k, v)| match (k.strip_suffix("_in").filter(|c| ["exp", "nbf", "iat"].contains(c)), v.as_i64()) {
            (Some(claim), Some(offset)) => (claim.to_string(), json!(NOW.saturating_add_signed(offset))),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// The table's default claims at NOW, `extra` over them (null removes).
fn claims(table: &Value, extra: &Value) -> Value {
    let mut base = resolve_time_claims(&table["default_claims"]);
    for (k, v) in resolve_time_claims(extra) {
        if v.is_null() {
            base.remove(&k);
        } else {
            base.insert(k, v);
        }
    }
    Value::Object(base)
}

fn encoding_key(alg: Algorithm, file: &str) -> EncodingKey {
    if alg == Algorithm::HS256 {
        return EncodingKey::from_secret(b"not a configured secret");
    }
    let pem = key_file(file);
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// A compact JWS with this exact header, signed with `file`'s key under `alg`.
fn sign(header: &Value, claims: &Value, alg: Algorithm, file: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &encoding_key(alg, file), alg)
        .unwrap_or_else(|e| panic!("sign: {e}"));
    format!("{message}.{signature}")
}

/// A scenario's token, minted as host-tests/tests/filter/scenarios.rs does.
fn scenario_token(table: &Value, spec: &Value) -> String {
    if let Some(raw) = spec["raw"].as_str() {
        return raw.to_string();
    }
    let signer = &table["signers"][spec["signer"].as_str().unwrap_or("RS256")];
    let alg = spec["alg"].as_str().or(signer["alg"].as_str()).expect("an alg");
    let kid = match spec.get("kid") {
        None => signer["kid"].as_str(),
        Some(kid) => kid.as_str(),
    };
    let claims = claims(table, spec.get("claims").unwrap_or(&json!({})));
    if alg == "none" {
        let mut header = json!({"alg": "none", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        return format!("{}.{}.", b64(&header), b64(&claims));
    }
    let alg: Algorithm = alg.parse().unwrap_or_else(|e| panic!("alg {alg}: {e}"));
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    let file = spec["key_file"].as_str().or(signer["key_file"].as_str()).expect("a key file");
    jsonwebtoken::encode(&header, &claims, &encoding_key(alg, file)).unwrap_or_else(|e| panic!("mint: {e}"))
}

/// A scenario's request headers, the token in place, as the harness sends
/// them; `minted` holds the tokens by their spec.
fn scenario_request(scenario: &Value, minted: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let req = &scenario["request"];
    let token = req.get("token").map(|spec| minted[&spec.to_string()].clone());
    let fill = |s: &str| match &token {
        Some(t) => s.replace("{token}", t),
        None => s.to_string(),
    };
    let mut path = fill(req["path"].as_str().expect("a path"));
    let mut extra: Vec<(String, String)> = req["headers"]
        .as_array()
        .map(|hs| {
            hs.iter().map(|h| (h[0].as_str().expect("name").into(), fill(h[1].as_str().expect("value")))).collect()
        })
        .unwrap_or_default();
    if let Some(t) = &token {
        match req["token"]["in"].as_str().unwrap_or("bearer") {
            "bearer" => extra.push(("authorization".into(), format!("Bearer {t}"))),
            "x-license" => extra.push(("x-license".into(), t.clone())),
            "query" => path = format!("{path}{}license={t}", if path.contains('?') { '&' } else { '?' }),
            "cookie" => extra.push(("cookie".into(), format!("license={t}"))),
            "placeholder" => {}
            other => panic!("token.in: unknown place {other:?}"),
        }
    }
    let mut headers = vec![
        (":method".to_string(), req["method"].as_str().unwrap_or("GET").to_string()),
        (":authority".to_string(), req["authority"].as_str().unwrap_or("api.example.com").to_string()),
        (":path".to_string(), path),
        (":scheme".to_string(), "http".to_string()),
    ];
    headers.extend(extra);
    headers
}

struct Seeds {
    dir: PathBuf,
    /// What was there before: a token with a randomized signature is kept
    /// while it signs the same header and claims.
    old: BTreeMap<String, String>,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> Seeds {
        let dir = root.join("seeds").join(target);
        let old = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, fs::read_to_string(e.path()).ok()?)))
            .collect();
        // Rewritten whole: a seed dropped here disappears from the corpus.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Seeds { dir, old }
    }

    fn put(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let path = self.dir.join(name);
        assert!(!path.exists(), "two seeds named {name}");
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Writes the token, or the old one when it signs the same message;
    /// returns what was written.
    fn put_token(&self, name: &str, token: &str) -> String {
        let message = |t: &str| t.rsplit_once('.').map(|(m, _)| m.to_string());
        let token = match self.old.get(name) {
            Some(old) if message(old) == message(token) => old.clone(),
            _ => token.to_string(),
        };
        self.put(name, &token);
        token
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = table();
    let minted = verify_token(root, &table);
    config_from_json(root, &table);
    token_extraction(root, &table, &minted);
    cache_entry_decode(root);
    println!("seeds written under {}", root.join("seeds").display());
}

/// The scenario table's tokens; tokens with every claim the verifier reads
/// for each key; and one for each way verification fails. `valid-*` must
/// verify and `invalid-*` must not (checked), or they would not lead the
/// fuzzer where their names say. Returns the scenario tokens by their spec.
fn verify_token(root: &Path, table: &Value) -> BTreeMap<String, String> {
    let seeds = Seeds::new(root, "verify_token");
    let mut headers = Vec::new();
    let mut minted = BTreeMap::new();
    for scenario in table["scenarios"].as_array().expect("scenarios") {
        if let Some(spec) = scenario["request"].get("token")
            && !minted.contains_key(&spec.to_string())
        {
            let name = format!("scenario-{}", scenario["name"].as_str().expect("a name"));
            minted.insert(spec.to_string(), seeds.put_token(&name, &scenario_token(table, spec)));
        }
    }
    let claims = |extra: Value| claims(table, &extra);
    let rich = || {
        claims(json!({
            "features": ["exports", "api"],
            "plan": "enterprise",
            "seats": 25,
            "deployments": ["eu-1", "*.prod.example"],
        }))
    };
    for (name, alg, kid, file) in [
        ("rs256", Algorithm::RS256, "rs1", "rsa.key.pem"),
        ("ps256", Algorithm::PS256, "ps1", "rsa.key.pem"),
        ("es256", Algorithm::ES256, "es1", "p256.key.pem"),
        ("es384", Algorithm::ES384, "es384", "p384.key.pem"),
        ("eddsa", Algorithm::EdDSA, "ed1", "ed25519.key.pem"),
    ] {
        let header = json!({"alg": format!("{alg:?}"), "typ": "JWT", "kid": kid});
        seeds.put_token(&format!("valid-{name}"), &sign(&header, &rich(), alg, file));
        headers.push(header);
    }
    let es = |name: &str, header: Value, claims: Value| {
        seeds.put(name, sign(&header, &claims, Algorithm::ES256, "p256.key.pem"));
        header
    };
    let es1 = || json!({"alg": "ES256", "kid": "es1"});
    headers.push(es("valid-es256-no-kid", json!({"alg": "ES256"}), claims(json!({"features": "a b  c"}))));
    es("valid-grace", es1(), claims(json!({"exp_in": -3600, "plan": "pro", "deployments": "eu-1"})));
    es("valid-perpetual-aud-array", es1(), claims(json!({"exp": null, "aud": ["other", AUDIENCE]})));
    es("valid-forwarded-values", es1(), claims(json!({"tenant": ["a", 1, true], "jti": 7, "seats": "x\ny"})));
    let (nbf, exp) = ((NOW - 3600) as f64 + 0.5, (NOW + 3600) as f64 + 0.9);
    es("valid-fractional-dates", es1(), claims(json!({"nbf": nbf, "exp": exp})));
    es("invalid-out-of-range-dates", es1(), claims(json!({"nbf": -5.5, "exp": 1.9e12})));
    es("invalid-claim-types", es1(), claims(json!({"features": [1], "plan": 2, "exp": "soon"})));
    es("invalid-deployments-type", es1(), claims(json!({"deployments": {"eu": 1}})));
    headers.push(es("invalid-crit-header", json!({"alg": "ES256", "kid": "es1", "crit": ["exp"]}), claims(json!({}))));
    let hs = json!({"alg": "HS256", "kid": "hs1"});
    seeds.put("invalid-hs256-not-allowed", sign(&hs, &claims(json!({})), Algorithm::HS256, ""));
    headers.push(hs);
    let mut bad_signature = fs::read(seeds.dir.join("valid-rs256")).expect("valid-rs256");
    let last = bad_signature.len() - 2;
    bad_signature[last] = if bad_signature[last] == b'A' { b'B' } else { b'A' };
    seeds.put("invalid-signature-rs256", bad_signature);
    seeds.put("invalid-two-parts", "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0");
    seeds.put("invalid-not-base64", "e!J.e!J.e!J");

    let config = license_gate_fuzz::config(&verify_config_json());
    for entry in fs::read_dir(&seeds.dir).expect("the seed directory") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let token = read(path.to_str().expect("a UTF-8 path"));
        let result = config.policy.verifier.verify(&token, NOW, &config.runtime.keys);
        if name.starts_with("valid-") || name.starts_with("invalid-") {
            assert_eq!(result.is_ok(), name.starts_with("valid-"), "seed {name}: {result:?}");
        }
    }

    // Base64url of whole headers, and claim fragments, for the mutator.
    let mut dict = String::from("# Written by examples/seeds.rs: encoded JOSE headers and claim names.\n\".\"\n");
    for header in headers {
        dict.push_str(&format!("\"{}\"\n", b64(&header)));
    }
    for claim in ["\"iss\":", "\"aud\":", "\"exp\":", "\"nbf\":", "\"features\":", "\"plan\":", "\"deployments\":"] {
        // The three alignments of a fragment in base64: only the characters
        // that no neighbouring byte changes.
        for pad in ["", "a", "ab"] {
            let encoded = URL_SAFE_NO_PAD.encode(format!("{pad}{claim}"));
            let end = (pad.len() + claim.len()) * 4 / 3;
            dict.push_str(&format!("\"{}\"\n", &encoded[(pad.len() * 4).div_ceil(3)..end]));
        }
    }
    fs::write(root.join("dicts/verify_token.dict"), dict).unwrap_or_else(|e| panic!("dict: {e}"));
    minted
}

/// The reference configuration with each scenario's patch, the harness
/// configurations, the newer sections (remote keys and revocations,
/// binding), and error cases like host-tests/tests/filter/config_errors.rs.
fn config_from_json(root: &Path, table: &Value) {
    let seeds = Seeds::new(root, "config_from_json");
    let reference = || with_key_files(table["reference_config"].clone());
    // Pretty-printed: the mutator then works on lines.
    let put = |name: &str, config: &Value| {
        seeds.put(name, serde_json::to_string_pretty(config).unwrap_or_else(|e| panic!("{e}")))
    };
    put("reference", &reference());
    let mut patches = std::collections::BTreeSet::new();
    for scenario in table["scenarios"].as_array().expect("scenarios") {
        if let Some(patch) = scenario.get("config")
            && patches.insert(patch.to_string())
        {
            let mut config = reference();
            merge_patch(&mut config, patch);
            put(&format!("reference-{}", scenario["name"].as_str().expect("a name")), &config);
        }
    }
    put("harness-verify-token", &verify_config_json());
    put("harness-token-extraction", &gate_config_json("dry_run"));
    let remote = |path: &str| {
        json!({"cluster": "keys", "path": path, "authority": "keys.example.com", "refresh_seconds": 300,
               "timeout_ms": 2000, "max_stale_seconds": 3600, "max_bytes": 65536})
    };
    let mut lifecycle = reference();
    merge_patch(
        &mut lifecycle,
        &json!({
            "keys": {"remote": remote("/.well-known/jwks.json")},
            "revocation": {"ids": ["lic-0002"], "remote": remote("/revocations.jwt"), "on_stale": "deny"},
            "binding": {"claim": "deployments", "identity": {"metadata": "CLUSTER_ID"}, "required": true},
            "cache": {"max_entries": 1000, "ttl_seconds": 60, "negative_ttl_seconds": 5, "local_entries": 16}
        }),
    );
    put("remote-revocation-binding", &lifecycle);
    put(
        "minimal-hmac",
        &json!({
            "issuers": ["i"],
            "algorithms": ["HS256"],
            "hmac_secrets": [{"kid": "h", "alg": "HS256", "secret_base64": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}],
            "default": "allow",
            "rules": [{"match": {"host": "*.example.com", "methods": ["post"]}, "license": "deny"}]
        }),
    );
    let with = |patch: Value| {
        let mut config = reference();
        merge_patch(&mut config, &patch);
        config.to_string()
    };
    let off_curve = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "x": "A".repeat(43), "y": "A".repeat(43)});
    let rsa = key_file("rsa.pub.pem");
    let same_kid = json!([{"kid": "rs1", "alg": "RS256", "key": rsa}, {"kid": "rs1", "alg": "PS256", "key": rsa}]);
    let errors = [
        ("error-plans-cycle", with(json!({"plans": {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}}))),
        ("error-rule-require", with(json!({"rules": [{"match": {}}, {"match": {}, "require": {"all": "x"}}]}))),
        ("error-jwk-bad-point", with(json!({"keys": {"jwks": {"keys": [off_curve]}}}))),
        ("error-duplicate-kid", with(json!({"keys": {"pem": same_kid}}))),
        ("error-cache", with(json!({"cache": {"max_entries": 2_000_000, "ttl_seconds": 0}}))),
        ("error-forward-owned", with(json!({"forward": {"headers": {"x-license-status": "plan"}}}))),
        ("error-clock-skew", with(json!({"clock_skew_seconds": -1}))),
        ("error-binding-identity", with(json!({"binding": {"identity": {"value": ""}}}))),
    ];
    for (name, config) in errors {
        seeds.put(name, config);
    }
    seeds.put("not-json", "{\"issuers\": [\"i\"], \"rules\": [{\"match\": {\"prefx\": \"/\"}}]");
}

/// Every scenario's request; and requests the table has no reason to hold:
/// a token in each source with odd encodings, spoofed owned headers, binary
/// values, look-alike names, a token over the size limit, no identity.
fn token_extraction(root: &Path, table: &Value, minted: &BTreeMap<String, String>) {
    let seeds = Seeds::new(root, "token_extraction");
    let mut seen = std::collections::BTreeSet::new();
    for scenario in table["scenarios"].as_array().expect("scenarios") {
        let pairs = scenario_request(scenario, minted);
        let headers = pairs.iter().map(|(n, v)| Header { name: HeaderName::from_name(n), value: v.as_bytes() });
        let dry_run = scenario["config"]["mode"] == "dry_run";
        let input = RequestInput { verdict: 0, clock: if dry_run { 0x80 } else { 0 }, headers: headers.collect() };
        let bytes = input.encode();
        if seen.insert(bytes.clone()) {
            seeds.put(&format!("scenario-{}", scenario["name"].as_str().expect("a name")), bytes);
        }
    }

    // The stub verifier does not read the token: any short one will do.
    let token = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJodHRwczovL2xpY2Vuc2VzLmV4YW1wbGUuY29tIn0.c2lnbmF0dXJl";
    let bearer = format!("Bearer {token}");
    let query = format!("/api/items?a=1&license={token}&b=2#frag");
    let encoded_query = format!("/api/items?licens%65={}&x=%zz+y", token.replace('.', "%2E"));
    let cookie = format!("a=1; license=\"{token}\"; b=2");
    let spaced = format!("  {token}\t");
    let huge = "x".repeat(1100);
    let get = |authority: &str, path: &str| {
        vec![
            (":method", "GET".to_string()),
            (":authority", authority.to_string()),
            (":path", path.to_string()),
            (":scheme", "https".to_string()),
        ]
    };
    let with = |mut base: Vec<(&'static str, String)>, extra: Vec<(&'static str, String)>| {
        base.extend(extra);
        base
    };
    let reason = |r: Reason| u8::try_from(Reason::ALL.iter().position(|x| *x == r).expect("a reason")).expect("few");
    // (name, verdict, clock, headers): see `RequestInput` for the two bytes.
    type Case<'a> = (&'a str, u8, u8, Vec<(&'static str, String)>);
    let cases: Vec<Case> = vec![
        (
            "bearer-reports",
            0,
            0,
            with(get("api.example.com", "/api/reports/2026"), vec![("authorization", bearer.clone())]),
        ),
        ("query-token", 0, 0, get("api.example.com", &query)),
        ("query-percent-encoded", 3 | (reason(Reason::BadSignature) << 2), 0, get("api.example.com", &encoded_query)),
        (
            "cookie-token",
            0,
            0,
            with(get("api.example.com", "/api/items"), vec![("cookie", "theme=dark".into()), ("cookie", cookie)]),
        ),
        (
            "x-license-grace-spoofed",
            1,
            3,
            with(
                get("api.example.com", "/api/items"),
                vec![("x-license", spaced), ("x-license-status", "active".into()), ("x-license-tenant", "evil".into())],
            ),
        ),
        (
            "healthz-open-spoofed",
            0,
            0,
            with(get("api.example.com", "/healthz?license=x"), vec![("x-license-dry-run", "missing".into())]),
        ),
        ("internal-denied", 0, 0, get("api.example.com", "/internal/debug")),
        (
            "admin-host-dry-run",
            0,
            0x80,
            with(get("admin.example.com:8443", "/api/admin"), vec![("authorization", bearer.clone())]),
        ),
        (
            "tenant-wildcard-denied",
            2 | (reason(Reason::IssuerMismatch) << 2),
            2,
            with(get("a.tenant.example.com", "/tenant/x"), vec![("authorization", format!("bearer {token}"))]),
        ),
        (
            "feature-missing-dry-run",
            3,
            0x81,
            with(get("api.example.com", "/api/reports"), vec![("x-license", "ab".into())]),
        ),
        ("too-long", 0, 3, with(get("api.example.com", "/api/items"), vec![("x-license", huge)])),
        (
            "bound-identity-unreadable",
            0,
            2 << 2,
            with(get("api.example.com", "/api/items"), vec![("authorization", bearer.clone())]),
        ),
        (
            "bound-identity-exact",
            0,
            1 << 2,
            with(get("api.example.com", "/api/items"), vec![("authorization", bearer.clone())]),
        ),
    ];
    for (name, verdict, clock, pairs) in &cases {
        let headers = pairs.iter().map(|(n, v)| Header { name: HeaderName::from_name(n), value: v.as_bytes() });
        seeds.put(name, RequestInput { verdict: *verdict, clock: *clock, headers: headers.collect() }.encode());
    }
    let odd = vec![
        Header { name: HeaderName::Method, value: b"HEAD" },
        Header { name: HeaderName::Host, value: b"[::1]:80" },
        Header { name: HeaderName::Path, value: b"/api/x;license=y?q=\xff" },
        Header { name: HeaderName::Other("Authorization"), value: b"Basic \xff\xfe" },
        Header { name: HeaderName::Other("X-License"), value: token.as_bytes() },
        Header { name: HeaderName::Cookie, value: b"license=\xc3\x28" },
    ];
    seeds.put("binary-and-look-alike-names", RequestInput { verdict: 0, clock: 0, headers: odd }.encode());
}

/// Entries as the filter writes them, each after its token and flags, and
/// inputs for the target's mutating mode.
fn cache_entry_decode(root: &Path) {
    let seeds = Seeds::new(root, "cache_entry_decode");
    let short = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJpIn0.c2lnbmF0dXJl";
    let input = |flags: u8, token: &str, rest: &[u8]| {
        let mut out = vec![flags, u8::try_from(token.len()).expect("token under 256 bytes")];
        out.extend_from_slice(token.as_bytes());
        out.extend_from_slice(rest);
        out
    };
    let entry = |token: &str, verdict| {
        let store = RecordingStore::default();
        let cache = license_gate::cache::VerdictCache::new(cache_settings(), CACHE_FINGERPRINT);
        let _ = cache.verdict(&store, token, NOW, CACHE_EPOCHS[0], |_| verdict);
        store.0.into_inner().expect("an entry written")
    };
    let licenses = license_gate_fuzz::sample_licenses().len();
    let reasons = [Reason::Expired, Reason::RouteDenied];
    let picks = (0..licenses)
        .chain(reasons.iter().map(|r| licenses + Reason::ALL.iter().position(|x| x == r).expect("a reason")));
    for pick in picks.map(|p| u8::try_from(p).expect("few")) {
        let verdict = sample_verdict(pick);
        let kind = match &verdict {
            Ok(_) => format!("license{pick}"),
            Err(reason) => reason.code().to_string(),
        };
        seeds.put(&format!("entry-{kind}"), input(0, short, &entry(short, verdict)));
        // Unchanged (a hit), then one bit flipped just past the kind byte.
        let [lo, hi] = u16::try_from(5 + short.len() + 8 + 16 + 1).expect("short").to_le_bytes();
        seeds.put(&format!("mutate-{kind}"), input(1, short, &[pick]));
        seeds.put(&format!("mutate-{kind}-flip"), input(1, short, &[pick, lo, hi, 0x01]));
    }
    // A real token, short enough for the length byte, read at the last live
    // second; and under another epoch (a miss).
    let token = sign(
        &json!({"alg": "EdDSA"}),
        &json!({"iss": "https://licenses.example.com", "exp": NOW + 86_400}),
        Algorithm::EdDSA,
        "ed25519.key.pem",
    );
    let real = entry(&token, sample_verdict(0));
    seeds.put("entry-real-token-last-second", input(6, &token, &real));
    seeds.put("entry-real-token-other-epoch", input(8, &token, &real));
    seeds.put("empty-entry", input(0, "t", b""));
}

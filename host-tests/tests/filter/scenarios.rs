//! The scenario table (`host-tests/testdata/scenarios.json`) in the wasmtime
//! harness. `envoy/tests/test_scenarios.py` runs the same table in real
//! Envoy: a scenario that passes in one host and fails in the other is a
//! harness bug. The table's `format` member describes its shape.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use license_gate_host_tests::Reply;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use crate::support::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(rename = "format")]
    _format: Vec<String>,
    signers: BTreeMap<String, SignerSpec>,
    default_claims: Value,
    reference_config: Value,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerSpec {
    alg: String,
    kid: String,
    key_file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    #[serde(default)]
    config: Option<Value>,
    request: Request,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default = "default_authority")]
    authority: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    token: Option<TokenSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSpec {
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    signer: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    /// Absent: the signer's kid; `null`: no kid.
    #[serde(default, deserialize_with = "present")]
    kid: Option<Value>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    claims: Option<Value>,
    #[serde(default = "bearer", rename = "in")]
    place: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u32,
    reason: String,
    #[serde(default)]
    missing_features: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Upstream>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Upstream {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    absent: Vec<String>,
}

fn get() -> String {
    "GET".into()
}

fn default_authority() -> String {
    "api.example.com".into()
}

fn bearer() -> String {
    "bearer".into()
}

/// A member that is present, `null` included (plain `Option` reads `null` as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn table() -> Table {
    serde_json::from_value(reference().clone()).unwrap_or_else(|e| panic!("scenarios.json: {e}"))
}

/// RFC 7386 JSON merge patch: objects merge member by member, `null` removes
/// a member, anything else replaces.
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

/// The scenario's token, minted at [`NOW`].
fn token(spec: &TokenSpec, table: &Table) -> String {
    if let Some(raw) = &spec.raw {
        let minting = spec.signer.is_some() || spec.alg.is_some() || spec.kid.is_some();
        assert!(!minting && spec.key_file.is_none() && spec.claims.is_none(), "a raw token takes no signing field");
        return raw.clone();
    }
    let signer_name = spec.signer.as_deref().unwrap_or("RS256");
    let signer = table.signers.get(signer_name).unwrap_or_else(|| panic!("unknown signer {signer_name}"));
    let alg = spec.alg.as_deref().unwrap_or(&signer.alg);
    let kid = match &spec.kid {
        None => Some(signer.kid.clone()),
        Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(other) => panic!("kid: a string or null, got {other}"),
    };
    let claims = claims(spec.claims.clone().unwrap_or(json!({})));
    if alg == "none" {
        let mut header = json!({"alg": "none", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        return format!("{}.{}.", b64(&header), b64(&claims));
    }
    let alg: Algorithm = alg.parse().unwrap_or_else(|e| panic!("alg {alg}: {e}"));
    let mut header = Header::new(alg);
    header.kid = kid;
    let key = private_key(alg, spec.key_file.as_deref().unwrap_or(&signer.key_file));
    jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("mint: {e}"))
}

/// What one scenario sends: path and extra headers, the token in place.
fn request(scenario: &Scenario, table: &Table) -> (String, Vec<(String, String)>, Option<String>) {
    let req = &scenario.request;
    let token = req.token.as_ref().map(|spec| token(spec, table));
    let fill = |s: &str| match &token {
        Some(t) => s.replace("{token}", t),
        None => s.to_string(),
    };
    let mut path = fill(&req.path);
    let mut headers: Vec<(String, String)> = req.headers.iter().map(|(n, v)| (n.clone(), fill(v))).collect();
    if let (Some(t), Some(spec)) = (&token, &req.token) {
        match spec.place.as_str() {
            "bearer" => headers.push(("authorization".into(), format!("Bearer {t}"))),
            "x-license" => headers.push(("x-license".into(), t.clone())),
            "query" => path = format!("{path}{}license={t}", if path.contains('?') { '&' } else { '?' }),
            "cookie" => headers.push(("cookie".into(), format!("license={t}"))),
            "placeholder" => {
                let written = req.path.contains("{token}") || req.headers.iter().any(|(_, v)| v.contains("{token}"));
                assert!(written, "in: placeholder, but no {{token}} in the path or a header");
            }
            other => panic!("token.in: unknown place {other:?}"),
        }
    }
    (path, headers, token)
}

/// Every difference between what the scenario expects and `reply`.
fn check(scenario: &Scenario, reply: &Reply, sent_path: &str, token: Option<&str>) -> Vec<String> {
    let want = &scenario.expect;
    let fill = |s: &str| match token {
        Some(t) => s.replace("{token}", t),
        None => s.to_string(),
    };
    let mut errors = Vec::new();
    let mut differ = |what: &str, got: String, expected: String| {
        if got != expected {
            errors.push(format!("{what}: got {got}, expected {expected}"));
        }
    };
    differ("status", reply.status().to_string(), want.status.to_string());
    differ("reason", reason_of(reply), want.reason.clone());
    match reply {
        Reply::Forwarded { headers } => {
            let up = want.upstream.as_ref().map_or_else(Upstream::default, |u| Upstream {
                path: u.path.clone(),
                headers: u.headers.clone(),
                absent: u.absent.clone(),
            });
            let values = |name: &str| -> Vec<String> {
                headers
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .collect()
            };
            let path = up.path.as_deref().map_or_else(|| sent_path.to_string(), fill);
            differ("upstream :path", format!("{:?}", values(":path")), format!("{:?}", [path]));
            for (name, expected) in &up.headers {
                let expected: Vec<String> = expected.iter().map(|v| fill(v)).collect();
                differ(&format!("upstream {name}"), format!("{:?}", values(name)), format!("{expected:?}"));
            }
            for name in &up.absent {
                differ(&format!("upstream {name}"), format!("{:?}", values(name)), "[]".into());
            }
        }
        Reply::Local(_) => {
            let body: Value = serde_json::from_str(&reply.body()).unwrap_or(Value::Null);
            let missing = want.missing_features.clone().unwrap_or_default();
            differ("missing_features", body["missing_features"].to_string(), json!(missing).to_string());
            let challenge = match (reply.status(), want.reason.as_str()) {
                (401, "missing") => Some(r#"Bearer realm="license-gate", error="invalid_request""#),
                (401, _) => Some(r#"Bearer realm="license-gate", error="invalid_token""#),
                _ => None,
            };
            differ(
                "www-authenticate",
                format!("{:?}", reply.header("www-authenticate")),
                format!("{:?}", challenge.map(str::to_string)),
            );
        }
    }
    errors
}

/// The table is well formed: unique names, lower-case header names, and
/// expectations that fit the outcome (upstream only when forwarded).
fn validate(table: &Table) {
    let mut names = std::collections::BTreeSet::new();
    for s in &table.scenarios {
        assert!(names.insert(s.name.as_str()), "duplicate scenario name {}", s.name);
        let forwarded = s.expect.reason == "forwarded";
        assert_eq!(forwarded, s.expect.status == 200, "{}: status 200 if and only if forwarded", s.name);
        assert!(forwarded || s.expect.upstream.is_none(), "{}: upstream expectations on a denial", s.name);
        assert!(!forwarded || s.expect.missing_features.is_none(), "{}: missing_features when forwarded", s.name);
        let lower = |n: &String| n.chars().all(|c| !c.is_ascii_uppercase());
        assert!(s.request.headers.iter().all(|(n, _)| lower(n)), "{}: header names in lower case", s.name);
        if let Some(up) = &s.expect.upstream {
            assert!(up.headers.keys().chain(&up.absent).all(lower), "{}: header names in lower case", s.name);
        }
    }
}

#[test]
fn every_scenario_in_the_harness() {
    let table = table();
    validate(&table);
    let mut gateways: BTreeMap<String, Gateway> = BTreeMap::new();
    let mut failures = Vec::new();
    for scenario in &table.scenarios {
        let patch = scenario.config.clone().unwrap_or(json!({}));
        let gw = gateways.entry(patch.to_string()).or_insert_with(|| {
            let mut cfg = table.reference_config.clone();
            merge_patch(&mut cfg, &patch);
            Gateway::new(&with_key_files(cfg))
        });
        let (path, headers, token) = request(scenario, &table);
        let extra: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let reply = gw.send(&scenario.request.method, &scenario.request.authority, &path, &extra);
        for error in check(scenario, &reply, &path, token.as_deref()) {
            failures.push(format!("{}: {error}", scenario.name));
        }
    }
    assert!(failures.is_empty(), "{} scenario expectation(s) not met:\n{}", failures.len(), failures.join("\n"));
    assert!(table.scenarios.len() >= 40, "{} scenarios", table.scenarios.len());
}

/// The Rust fixtures (`support.rs`) say what the table says.
#[test]
fn the_fixtures_agree_with_the_table() {
    let table = table();
    let cfg = &table.reference_config;
    assert_eq!(cfg["issuers"], json!([ISSUER]));
    assert_eq!(cfg["audiences"], json!([AUDIENCE]));
    assert_eq!(cfg["clock_skew_seconds"], json!(SKEW));
    assert_eq!(cfg["grace_period_seconds"], json!(GRACE));
    assert_eq!(Value::Object(resolve_time_claims(&table.default_claims, NOW)), claims(json!({})));
    assert_eq!(claims(json!({}))["exp"], json!(NOW + 30 * 86_400), "a license valid for 30 days");
    for (name, signer) in [
        ("RS256", RS256),
        ("PS256", PS256),
        ("ES256", ES256),
        ("ES384", ES384),
        ("EdDSA", EDDSA),
        ("JWK_RS256", JWK_RS256),
    ] {
        let spec = &table.signers[name];
        let alg: Algorithm = spec.alg.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (alg, Some(spec.kid.as_str()), spec.key_file.as_str()),
            (signer.alg, signer.kid, signer.key),
            "{name}"
        );
    }
    assert_eq!(table.signers.len(), 6, "a signer without a support.rs constant");
    // The inline JWKS publishes JWK_RS256's key.
    let published = &cfg["keys"]["jwks"]["keys"][0];
    let derived = jwk(JWK_RS256);
    for member in ["kty", "kid", "alg", "n", "e"] {
        assert_eq!(published[member], derived[member], "jwks key {member}");
    }
}

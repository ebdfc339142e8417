//! Token verification: every algorithm, every reason code, and the validity
//! window (skew, grace) against the host clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::*;

/// Verification outcome on `/api/data` (a rule needing a license and no
/// particular feature): `"active"`, `"grace"` or the denial's reason code.
fn outcome(gw: &mut Gateway, token: &str) -> String {
    let reply = gw.get("/api/data", token);
    match reply.status() {
        200 => reply.header("x-license-status").unwrap_or_else(|| "no status header".into()),
        _ => reason_of(&reply),
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A token with an arbitrary header and payload, signed over them with `signer`'s key.
fn forge(signer: Signer, header: Value, payload: Value) -> String {
    sign_raw(signer, &header.to_string(), &payload.to_string())
}

#[test]
fn every_algorithm_verifies() {
    let mut gw = Gateway::new(&config());
    for signer in [RS256, PS256, ES256, ES384, EDDSA, JWK_RS256] {
        let token = mint(signer, &claims(json!({})));
        assert_eq!(outcome(&mut gw, &token), "active", "{signer:?}");
    }
}

#[test]
fn reason_codes() {
    let mut gw = Gateway::new(&config());
    let valid = mint(RS256, &claims(json!({})));
    let (head, rest) = valid.split_once('.').unwrap_or_default();
    let (_, sig) = rest.split_once('.').unwrap_or_default();
    let tampered_payload = b64(&claims(json!({"features": ["everything"]})));

    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rs1".into());
        jsonwebtoken::encode(&h, &claims(json!({})), &EncodingKey::from_secret(&[7u8; 32])).unwrap_or_default()
    };
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": "rs1"})), b64(&claims(json!({}))));
    let rs384 = forge(
        Signer { alg: Algorithm::RS384, kid: Some("rs1"), key: "rsa.key.pem" },
        json!({"alg": "RS384", "kid": "rs1"}),
        claims(json!({})),
    );
    let ps_with_rs_kid = forge(
        Signer { alg: Algorithm::PS256, kid: None, key: "rsa.key.pem" },
        json!({"alg": "PS256", "kid": "rs1"}),
        claims(json!({})),
    );
    let crit = forge(RS256, json!({"alg": "RS256", "kid": "rs1", "crit": ["exp"]}), claims(json!({})));

    let cases: Vec<(&str, String, &str)> = vec![
        ("valid", valid.clone(), "active"),
        ("not three parts", "abc.def".into(), "malformed"),
        ("four parts", format!("{valid}.x"), "malformed"),
        ("header not base64", format!("%%%.{rest}"), "malformed"),
        ("header not JSON", format!("{}.{rest}", URL_SAFE_NO_PAD.encode("nope")), "malformed"),
        ("signature not base64url", format!("{head}.{}.a+b/", rest.split('.').next().unwrap_or("")), "malformed"),
        ("payload not an object", forge(RS256, json!({"alg": "RS256", "kid": "rs1"}), json!([1, 2])), "malformed"),
        ("exp not a number", mint(RS256, &claims(json!({"exp": "tomorrow"}))), "malformed"),
        ("features not strings", mint(RS256, &claims(json!({"features": [1]}))), "malformed"),
        ("plan not a string", mint(RS256, &claims(json!({"plan": ["pro"]}))), "malformed"),
        ("unknown crit extension", crit, "malformed"),
        ("HS256 not allowed", hs256, "alg_not_allowed"),
        ("alg none", alg_none, "alg_not_allowed"),
        ("RS384 not in allow-list", rs384, "alg_not_allowed"),
        ("alg differs from the kid's key", ps_with_rs_kid, "alg_not_allowed"),
        ("unknown kid", mint(Signer { kid: Some("nope"), ..RS256 }, &claims(json!({}))), "unknown_kid"),
        ("no kid, two RS256 keys", mint(Signer { kid: None, ..RS256 }, &claims(json!({}))), "unknown_kid"),
        ("no kid, the only ES256 key", mint(Signer { kid: None, ..ES256 }, &claims(json!({}))), "active"),
        (
            "signed by another key",
            mint(Signer { key: "rsa-other.key.pem", ..RS256 }, &claims(json!({}))),
            "bad_signature",
        ),
        ("tampered payload", format!("{head}.{tampered_payload}.{sig}"), "bad_signature"),
        (
            "ES256 signed by another key",
            mint(Signer { key: "p256-other.key.pem", ..ES256 }, &claims(json!({}))),
            "bad_signature",
        ),
        (
            "EdDSA signed by another key",
            mint(Signer { key: "ed25519-other.key.pem", ..EDDSA }, &claims(json!({}))),
            "bad_signature",
        ),
        ("wrong issuer", mint(RS256, &claims(json!({"iss": "https://evil.example.com"}))), "issuer_mismatch"),
        ("no issuer", mint(RS256, &claims(json!({"iss": null}))), "issuer_mismatch"),
        ("wrong audience", mint(RS256, &claims(json!({"aud": "other.example.com"}))), "audience_mismatch"),
        ("no audience", mint(RS256, &claims(json!({"aud": null}))), "audience_mismatch"),
        ("audience list with ours", mint(RS256, &claims(json!({"aud": ["x", AUDIENCE]}))), "active"),
        ("nbf beyond skew", mint(RS256, &claims(json!({"nbf": NOW + SKEW + 1}))), "not_yet_valid"),
        ("nbf within skew", mint(RS256, &claims(json!({"nbf": NOW + SKEW}))), "active"),
        ("exp just passed, within skew", mint(RS256, &claims(json!({"exp": NOW - SKEW + 1}))), "active"),
        ("exp passed beyond skew", mint(RS256, &claims(json!({"exp": NOW - SKEW}))), "grace"),
        ("exp at the end of grace", mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE + 1}))), "grace"),
        ("exp beyond grace", mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE}))), "expired"),
        ("perpetual license", mint(RS256, &claims(json!({"exp": null}))), "active"),
    ];
    for (name, token, want) in cases {
        assert_eq!(outcome(&mut gw, &token), want, "{name}");
    }
}

#[test]
fn cheap_claims_are_checked_before_the_signature() {
    // Foreign issuer and a signature from the wrong key: the claim check answers first.
    let mut gw = Gateway::new(&config());
    let token = mint(Signer { key: "rsa-other.key.pem", ..RS256 }, &claims(json!({"iss": "https://evil.example.com"})));
    assert_eq!(outcome(&mut gw, &token), "issuer_mismatch");
    let token = mint(Signer { key: "rsa-other.key.pem", ..RS256 }, &claims(json!({"exp": NOW - SKEW - GRACE - 5})));
    assert_eq!(outcome(&mut gw, &token), "expired");
}

#[test]
fn the_host_clock_moves_a_license_through_grace_to_expiry() {
    let mut gw = Gateway::new(&config());
    let token = mint(EDDSA, &claims(json!({"nbf": NOW + 600, "exp": NOW + 3600})));
    let steps: [(u64, &str); 6] = [
        (NOW, "not_yet_valid"),
        (NOW + 600 - SKEW, "active"),
        (NOW + 3600 + SKEW - 1, "active"),
        (NOW + 3600 + SKEW, "grace"),
        (NOW + 3600 + SKEW + GRACE - 1, "grace"),
        (NOW + 3600 + SKEW + GRACE, "expired"),
    ];
    for (at, want) in steps {
        gw.process.clock().set_seconds(at);
        assert_eq!(outcome(&mut gw, &token), want, "at now+{}", at - NOW);
    }
}

#[test]
fn oversized_token_is_malformed_before_parsing() {
    let mut gw = Gateway::new(&config());
    // 4097 bytes of valid-looking base64: rejected on length alone.
    let token = format!("{}.{}.{}", "a".repeat(2000), "b".repeat(2000), "c".repeat(95));
    assert_eq!(token.len(), 4097);
    assert_eq!(outcome(&mut gw, &token), "malformed");
    let reply = gw.get("/api/data", &token);
    assert_eq!(reply.status(), 401);
}

#[test]
fn hmac_only_with_explicit_secrets() {
    let secret = [9u8; 32];
    let cfg = with(config(), &["algorithms"], json!(["RS256", "HS256"]));
    let cfg = with(
        cfg,
        &["hmac_secrets"],
        json!([{"kid": "h1", "alg": "HS256", "secret_base64": base64::engine::general_purpose::STANDARD.encode(secret)}]),
    );
    let mut gw = Gateway::new(&cfg);
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("h1".into());
    let good = jsonwebtoken::encode(&h, &claims(json!({})), &EncodingKey::from_secret(&secret)).unwrap_or_default();
    let bad = jsonwebtoken::encode(&h, &claims(json!({})), &EncodingKey::from_secret(&[8u8; 32])).unwrap_or_default();
    assert_eq!(outcome(&mut gw, &good), "active");
    assert_eq!(outcome(&mut gw, &bad), "bad_signature");
}

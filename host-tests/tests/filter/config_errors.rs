//! Every class of bad configuration is refused in `on_configure` with one
//! error line naming the field; the VM survives to take a good one.

use license_gate_host_tests::{Process, Vm};
use serde_json::{Value, json};

use crate::support::*;

/// Configures a fresh VM; returns whether it was accepted and its error lines.
fn configure(config: &[u8]) -> (bool, Vec<String>) {
    let process = Process::new();
    let mut vm = Vm::start(module(), &process).unwrap_or_else(|e| panic!("vm start: {e:#}"));
    let accepted = vm.configure(config).unwrap_or_else(|e| panic!("configure trapped: {e:#}"));
    let errors = vm.logs().iter().filter(|l| l.level >= 4).map(|l| l.message.clone()).collect();
    (accepted, errors)
}

fn pem(kid: &str, alg: &str, key: &str) -> Value {
    json!([{"kid": kid, "alg": alg, "key": key}])
}

#[test]
fn the_reference_config_is_accepted() {
    assert_eq!(configure(config().to_string().as_bytes()), (true, vec![]));
}

#[test]
fn bad_configs_are_refused_with_one_line_naming_the_field() {
    let rsa_pub = key_file("rsa.pub.pem");
    let p256_pub = key_file("p256.pub.pem");
    let mut rsa_jwk_no_alg = jwk(JWK_RS256);
    rsa_jwk_no_alg.as_object_mut().map(|o| o.remove("alg"));
    let mut ec_jwk_bad_x = jwk(Signer { alg: jsonwebtoken::Algorithm::ES256, kid: Some("e"), key: "p256.key.pem" });
    ec_jwk_bad_x["x"] = json!("A".repeat(43)); // 32 zero bytes: a point off the curve
    let mut ec_jwk_short_y = ec_jwk_bad_x.clone();
    ec_jwk_short_y["x"] =
        jwk(Signer { alg: jsonwebtoken::Algorithm::ES256, kid: None, key: "p256.key.pem" })["x"].clone();
    ec_jwk_short_y["y"] = json!("A".repeat(42)); // 31 bytes: a leading zero lost

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown top-level field",
            with(config(), &["issuer"], json!("x")),
            "license-gate: config: issuer: unknown field `issuer`, expected one of `issuers`, `audiences`, `algorithms`, `keys`, `hmac_secrets`, `token`, `max_token_bytes`, `clock_skew_seconds`, `grace_period_seconds`, `claims`, `plans`, `default_plan`, `rules`, `default`, `forward`, `mode`, `cache`, `revocation`, `binding`",
        ),
        (
            "unknown nested field",
            with(config(), &["rules"], json!([{"match": {"prefix": "/", "regex": ".*"}}])),
            "license-gate: config: rules[0].match.regex: unknown field `regex`, expected one of `prefix`, `path_separated_prefix`, `exact`, `methods`, `host`",
        ),
        (
            "wrong type",
            with(
                config(),
                &["rules"],
                json!([{"match": {}}, {"match": {}}, {"match": {}, "require": {"all": "reports"}}]),
            ),
            "license-gate: config: rules[2].require.all: invalid type: string \"reports\", expected a sequence",
        ),
        (
            "missing issuers",
            with(config(), &["issuers"], Value::Null),
            "license-gate: config: issuers: invalid type: null, expected a sequence",
        ),
        (
            "empty issuers",
            with(config(), &["issuers"], json!([])),
            "license-gate: config: issuers: must name at least one issuer",
        ),
        (
            "HMAC without secrets",
            with(config(), &["algorithms"], json!(["RS256", "HS256"])),
            "license-gate: config: algorithms[1]: HS256 is a shared-secret algorithm: it needs an explicit hmac_secrets entry",
        ),
        (
            "alg none",
            with(config(), &["algorithms"], json!(["none"])),
            "license-gate: config: algorithms[0]: \"none\" is never accepted",
        ),
        (
            "unknown alg",
            with(config(), &["algorithms"], json!(["RS256", "XS999"])),
            "license-gate: config: algorithms[1]: unknown algorithm \"XS999\"",
        ),
        (
            "plan cycle",
            with(config(), &["plans"], json!({"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}})),
            "license-gate: config: plans.b.inherits: inheritance cycle a -> b -> a",
        ),
        (
            "unknown inherited plan",
            with(config(), &["plans"], json!({"pro": {"inherits": ["basic"]}})),
            "license-gate: config: plans.pro.inherits: unknown plan \"basic\"",
        ),
        (
            "EC key under an RSA alg",
            with(config(), &["keys", "pem"], pem("k", "RS256", &p256_pub)),
            "license-gate: config: keys.pem[0].key: key type does not fit RS256",
        ),
        (
            "RSA key under an EC alg",
            with(config(), &["keys", "pem"], pem("k", "ES256", &rsa_pub)),
            "license-gate: config: keys.pem[0].key: key type does not fit ES256",
        ),
        (
            "P-256 key under ES384",
            with(config(), &["keys", "pem"], pem("k", "ES384", &p256_pub)),
            "license-gate: config: keys.pem[0].key: key curve does not fit ES384",
        ),
        (
            "unparsable PEM",
            with(
                config(),
                &["keys", "pem"],
                pem("k", "RS256", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"),
            ),
            "license-gate: config: keys.pem[0].key: not a RS256 public key in PEM: PEM Base64 error: invalid Base64 encoding",
        ),
        (
            "short RSA key",
            with(config(), &["keys", "pem"], pem("k", "RS256", &key_file("rsa-1024.pub.pem"))),
            "license-gate: config: keys.pem[0].key: RSA key of 1024 bits is too short (at least 2048)",
        ),
        (
            "JWK not a key",
            with(config(), &["keys", "jwks"], json!({"keys": [{"kty": "RSA", "kid": "x"}]})),
            "license-gate: config: keys.jwks.keys[0]: not a usable public key (RSA needs n and e, EC needs crv, x and y, OKP needs crv and x)",
        ),
        (
            "RSA JWK without alg",
            with(config(), &["keys", "jwks"], json!({"keys": [rsa_jwk_no_alg]})),
            "license-gate: config: keys.jwks.keys[0].alg: required for RSA keys",
        ),
        (
            "EC JWK off the curve",
            with(config(), &["keys", "jwks"], json!({"keys": [ec_jwk_bad_x]})),
            "license-gate: config: keys.jwks.keys[0]: unusable key for ES256: not a point of its curve",
        ),
        (
            "EC JWK coordinate of the wrong size",
            with(config(), &["keys", "jwks"], json!({"keys": [ec_jwk_short_y]})),
            "license-gate: config: keys.jwks.keys[0].y: must be 32 bytes for P-256",
        ),
        (
            "JWK of an unsupported key type",
            with(config(), &["keys", "jwks"], json!({"keys": [{"kty": "RSA-X", "n": "AQAB"}]})),
            "license-gate: config: keys.jwks.keys[0].kty: unsupported key type \"RSA-X\"",
        ),
        (
            "oct JWK",
            with(config(), &["keys", "jwks"], json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]})),
            "license-gate: config: keys.jwks.keys[0]: symmetric (oct) keys belong in hmac_secrets",
        ),
        (
            "duplicate kid",
            with(
                config(),
                &["keys", "pem"],
                json!([{"kid": "rs1", "alg": "RS256", "key": rsa_pub}, {"kid": "rs1", "alg": "PS256", "key": rsa_pub}]),
            ),
            "license-gate: config: keys: duplicate kid \"rs1\"",
        ),
        ("no keys", with(config(), &["keys"], json!({})), "license-gate: config: keys: no verification key configured"),
        (
            "forward header owned by the filter",
            with(config(), &["forward", "headers"], json!({"x-license-status": "plan"})),
            "license-gate: config: forward.headers.x-license-status: is set by the filter itself",
        ),
        (
            "prefix and exact",
            with(config(), &["rules"], json!([{"match": {"prefix": "/a", "exact": "/a"}}])),
            "license-gate: config: rules[0].match: give one of prefix, path_separated_prefix or exact",
        ),
        (
            "bad default",
            with(config(), &["default"], json!("maybe")),
            "license-gate: config: default: unknown variant `maybe`, expected one of `require`, `allow`, `deny`",
        ),
        (
            "bad mode",
            with(config(), &["mode"], json!("audit")),
            "license-gate: config: mode: unknown variant `audit`, expected `enforce` or `dry_run`",
        ),
        (
            "zero max_token_bytes",
            with(config(), &["max_token_bytes"], json!(0)),
            "license-gate: config: max_token_bytes: must be greater than 0",
        ),
        (
            "cache too large",
            with(config(), &["cache"], json!({"max_entries": 2_000_000})),
            "license-gate: config: cache.max_entries: at most 1000000",
        ),
        (
            "local cache too large",
            with(config(), &["cache"], json!({"local_entries": 100_001})),
            "license-gate: config: cache.local_entries: at most 100000",
        ),
        (
            "cache without ttl",
            with(config(), &["cache"], json!({"ttl_seconds": 0})),
            "license-gate: config: cache.ttl_seconds: must be at least 1 (set cache.max_entries to 0 to disable the cache)",
        ),
        (
            "unknown cache field",
            with(config(), &["cache"], json!({"size": 10})),
            "license-gate: config: cache.size: unknown field `size`, expected one of `max_entries`, `ttl_seconds`, `negative_ttl_seconds`, `local_entries`",
        ),
        (
            "negative skew",
            with(config(), &["clock_skew_seconds"], json!(-1)),
            "license-gate: config: clock_skew_seconds: invalid value: integer `-1`, expected u64",
        ),
        (
            "remote keys without a path",
            with(config(), &["keys", "remote"], json!({"cluster": "license-keys"})),
            "license-gate: config: keys.remote: missing field `path`",
        ),
        (
            "remote keys refreshed never",
            with(config(), &["keys", "remote"], json!({"cluster": "k", "path": "/jwks", "refresh_seconds": 0})),
            "license-gate: config: keys.remote.refresh_seconds: must be at least 1",
        ),
        (
            "remote path not absolute",
            with(config(), &["keys", "remote"], json!({"cluster": "k", "path": "jwks.json"})),
            "license-gate: config: keys.remote.path: must start with \"/\"",
        ),
        (
            "remote keys unknown field",
            with(config(), &["keys", "remote"], json!({"cluster": "k", "path": "/j", "url": "https://x"})),
            "license-gate: config: keys.remote.url: unknown field `url`, expected one of `cluster`, `path`, `authority`, `refresh_seconds`, `timeout_ms`, `max_stale_seconds`, `max_bytes`",
        ),
        (
            "revocation list stale before its refresh",
            with(
                config(),
                &["revocation"],
                json!({"remote": {"cluster": "k", "path": "/r.jwt", "refresh_seconds": 600, "max_stale_seconds": 60}}),
            ),
            "license-gate: config: revocation.remote.max_stale_seconds: must be at least refresh_seconds",
        ),
        (
            "revocation timeout out of range",
            with(config(), &["revocation"], json!({"remote": {"cluster": "k", "path": "/r", "timeout_ms": 0}})),
            "license-gate: config: revocation.remote.timeout_ms: must be from 1 to 60000",
        ),
        (
            "unknown on_stale",
            with(config(), &["revocation"], json!({"on_stale": "ignore"})),
            "license-gate: config: revocation.on_stale: unknown variant `ignore`, expected `keep` or `deny`",
        ),
        (
            "empty revoked id",
            with(config(), &["revocation"], json!({"ids": ["lic-1", ""]})),
            "license-gate: config: revocation.ids[1]: must not be empty",
        ),
        (
            "unknown identity source",
            with(config(), &["binding"], json!({"identity": "node_name"})),
            "license-gate: config: binding.identity: unknown variant `node_name`, expected one of `node_id`, `node_cluster`, `metadata`, `value`",
        ),
        (
            "empty metadata key",
            with(config(), &["binding"], json!({"identity": {"metadata": ""}})),
            "license-gate: config: binding.identity.metadata: must name a node metadata key",
        ),
        (
            "empty binding claim",
            with(config(), &["binding"], json!({"claim": ""})),
            "license-gate: config: binding.claim: must not be empty",
        ),
    ];
    for (name, cfg, want) in cases {
        let (accepted, errors) = configure(cfg.to_string().as_bytes());
        assert!(!accepted, "{name}: accepted");
        assert_eq!(errors, [want], "{name}");
    }
}

#[test]
fn empty_and_non_json_configs_are_refused() {
    assert_eq!(
        configure(b""),
        (false, vec!["license-gate: config: config: the plugin configuration is empty".to_string()])
    );
    assert_eq!(configure(b"issuers: [a]"), (false, vec!["license-gate: config: config: expected value".to_string()]));
}

#[test]
fn a_refused_config_leaves_the_vm_usable() {
    let process = Process::new();
    process.clock().set_seconds(NOW);
    let mut vm = Vm::start(module(), &process).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!vm.configure(b"{}").unwrap_or(true));
    assert!(vm.configure(config().to_string().as_bytes()).unwrap_or(false));
    let token = mint(RS256, &claims(json!({})));
    let auth = format!("Bearer {token}");
    let reply = vm
        .request(&[(":method", "GET"), (":authority", "h"), (":path", "/api/data"), ("authorization", &auth)])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(reply.header("x-license-status").as_deref(), Some("active"));
}

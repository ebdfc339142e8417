//! licensectl as a user runs it: every command, its errors, and the round
//! trips through the filter's own core (keygen → mint → check, revoke,
//! jwks with keys.remote, binding, WasmPlugin and Envoy YAML sources).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};
use tempfile::TempDir;

const ISS: &str = "https://licenses.example.com";

fn licensectl() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("licensectl")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn test_key(name: &str) -> PathBuf {
    repo("host-tests/testdata/keys").join(name)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// RFC 3339 in UTC, by the time crate.
fn rfc3339(seconds: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).unwrap()).unwrap();
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs licensectl; returns (exit code, stdout, stderr).
fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = licensectl();
    cmd.args(args);
    cmd.write_stdin(stdin.unwrap_or(""));
    let output = cmd.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs licensectl, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args, None);
    assert_eq!(code, 0, "licensectl {args:?}: {err}");
    out
}

/// An error: exit status 2 and one line on stderr, starting `licensectl: `.
fn fails(args: &[&str]) -> String {
    let (code, out, err) = run(args, None);
    assert_eq!(code, 2, "licensectl {args:?}: stdout {out} stderr {err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.starts_with("licensectl: ") && err.ends_with('\n') && err.lines().count() == 1, "{err:?}");
    err.trim_end().to_string()
}

/// A directory with a fresh key made by keygen.
fn keygen(dir: &TempDir, alg: &str, kid: &str) -> (PathBuf, Value) {
    let out = dir.path().join("keys");
    let mut args = vec!["keygen", "--alg", alg, "--kid", kid, "--out", s(&out)];
    if alg.starts_with("RS") || alg.starts_with("PS") {
        args.extend(["--bits", "2048"]);
    }
    ok(&args);
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{kid}.jwks.json"))).unwrap()).unwrap();
    (out.join(format!("{kid}.key.pem")), jwks)
}

/// A plugin configuration: issuer, plans, rules, forwarded headers; `patch`
/// replaces top-level members.
fn plugin(dir: &TempDir, name: &str, keys: Value, patch: Value) -> PathBuf {
    let mut config = json!({
        "issuers": [ISS],
        "keys": keys,
        "plans": {
            "pro": {"features": ["reports"]},
            "enterprise": {"inherits": ["pro"], "features": ["sso", "audit"]}
        },
        "rules": [
            {"match": {"path_separated_prefix": "/healthz"}, "license": "none"},
            {"match": {"path_separated_prefix": "/api/reports"}, "require": {"all": ["reports"]}},
            {"match": {"path_separated_prefix": "/admin"}, "require": {"any": ["sso", "audit"]}},
            {"match": {"path_separated_prefix": "/export"}, "require": {"all": ["export"]}}
        ],
        "forward": {"headers": {"x-license-tenant": "tenant", "x-license-id": "jti"}},
    });
    for (k, v) in patch.as_object().unwrap() {
        config[k] = v.clone();
    }
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

fn mint(key: &Path, kid: &str, extra: &[&str]) -> String {
    let mut args = vec!["mint", "--key", s(key), "--kid", kid, "--iss", ISS];
    args.extend(extra);
    ok(&args).trim().to_string()
}

fn check_json(args: &[&str], token: &str) -> (i32, Value) {
    let mut all = vec!["check", "--json"];
    all.extend(args);
    let (code, out, err) = run(&all, Some(token));
    assert!(code == 0 || code == 1, "licensectl {all:?}: {err}");
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

fn header<'a>(report: &'a Value, name: &str) -> Option<&'a str> {
    report["upstream_headers"].as_array()?.iter().find(|h| h[0] == name).and_then(|h| h[1].as_str())
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [&["keygen"][..], &["mint"], &["jwks"], &["revoke"], &["inspect"], &["check"], &["config", "check"]]
    {
        licensectl().args(command).arg("--help").assert().success().stdout(
            predicate::str::contains("Example:\n  licensectl ").and(predicate::str::contains("Usage: licensectl")),
        );
    }
    let help = ok(&["--help"]);
    assert!(help.contains("The vendor loop (") && help.contains("curl -H"), "{help}");
    assert!(ok(&["--version"]).starts_with("licensectl 0.1.0"));
}

#[test]
fn usage_errors_are_one_line() {
    assert_eq!(fails(&["frobnicate"]), "licensectl: unrecognized subcommand 'frobnicate' (see --help)");
    let error = fails(&["mint", "--key", "k.pem", "--kid", "k", "--iss", "i"]);
    assert_eq!(
        error,
        "licensectl: the following required arguments were not provided: \
         <--expires-in <DURATION>|--expires-at <TIME>|--no-expiry> (see --help)"
    );
    let error = fails(&["keygen", "--alg", "HS256", "--kid", "k", "--out", "x"]);
    assert!(error.starts_with("licensectl: invalid value 'HS256' for '--alg <ALG>'"), "{error}");
    let (code, _, err) = run(&[], None);
    assert_eq!(code, 2);
    assert!(err.contains("Usage: licensectl"), "{err}");
}

#[test]
fn keygen_writes_three_files_and_never_overwrites() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("keys");
    let printed = ok(&["keygen", "--alg", "ES256", "--kid", "es-2026", "--out", s(&out)]);
    assert!(printed.contains("es-2026.key.pem  private key (ES256, P-256 key): keep it secret"), "{printed}");
    let private = out.join("es-2026.key.pem");
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(std::fs::read_to_string(out.join("es-2026.pub.pem")).unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(out.join("es-2026.jwks.json")).unwrap()).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kid"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("es-2026"), Some("ES256"), Some("sig"))
    );
    assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert!(key.get("d").is_none());
    // A second run refuses and leaves the key as it was.
    let error = fails(&["keygen", "--alg", "EdDSA", "--kid", "es-2026", "--out", s(&out)]);
    assert!(error.ends_with("es-2026.key.pem exists: keygen never overwrites a file"), "{error}");
    assert_eq!(std::fs::read_to_string(&private).unwrap(), pem);
    for (alg, crv) in [("ES384", "P-384"), ("EdDSA", "Ed25519")] {
        let (_, jwks) = keygen(&dir, alg, &format!("k-{alg}"));
        assert_eq!(jwks["keys"][0]["crv"], crv);
    }
}

#[test]
fn keygen_bad_input() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("k");
    assert_eq!(
        fails(&["keygen", "--alg", "ES256", "--bits", "2048", "--kid", "a", "--out", s(&out)]),
        "licensectl: --bits is for RSA keys; ES256 keys have a fixed size"
    );
    let error = fails(&["keygen", "--alg", "ES256", "--kid", "../a", "--out", s(&out)]);
    assert!(error.starts_with("licensectl: --kid \"../a\": keygen names files after the kid"), "{error}");
    let error = fails(&["keygen", "--alg", "RS256", "--bits", "1024", "--kid", "a", "--out", s(&out)]);
    assert!(error.starts_with("licensectl: invalid value '1024' for '--bits <BITS>'"), "{error}");
    assert!(!out.exists());
}

#[test]
fn vendor_loop_keygen_mint_check() {
    let dir = TempDir::new().unwrap();
    let (key, jwks) = keygen(&dir, "EdDSA", "ed1");
    let config = plugin(&dir, "plugin.json", json!({"jwks": jwks}), json!({}));
    let token =
        mint(&key, "ed1", &["--id", "lic-0001", "--tenant", "acme", "--plan", "enterprise", "--expires-in", "365d"]);
    let (code, out, _) = run(&["check", "--config", s(&config), "--path", "/api/reports", "-"], Some(&token));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("outcome:  allow\nreason:   -\nstatus:   forwarded upstream\n"), "{out}");
    assert!(out.contains("\nroute:    a valid license, all of [reports]\n"), "{out}");
    assert!(out.contains("\nlicense:  lic-0001, tenant acme, plan enterprise, active, expires in 365 days ("), "{out}");
    // The plan's features, inherited ones included.
    assert!(out.contains("\nfeatures: audit, reports, sso\nmissing:  -\n"), "{out}");
    assert!(out.contains("\n  x-license-status: active\n"), "{out}");
    assert!(out.contains("\n  x-license-tenant: acme\n"), "{out}");
    assert!(out.contains("\n  x-license-id: lic-0001\n"), "{out}");
    assert!(out.contains("\n  authorization: Bearer eyJ"), "{out}");
    // The same verdict as JSON.
    let (code, report) = check_json(&["--config", s(&config), "--path", "/admin"], &token);
    assert_eq!(code, 0);
    assert_eq!(report["outcome"], "allow");
    assert_eq!(report["forwarded"], true);
    assert_eq!(report["license"]["features"], json!(["audit", "reports", "sso"]));
    assert_eq!(report["license"]["plan"], "enterprise");
    assert_eq!(header(&report, "x-license-status"), Some("active"));
}

#[test]
fn check_denials_and_exit_codes() {
    let dir = TempDir::new().unwrap();
    let (key, jwks) = keygen(&dir, "ES256", "es1");
    let config = plugin(&dir, "plugin.json", json!({"jwks": jwks}), json!({}));
    let token = mint(&key, "es1", &["--plan", "pro", "--features", "extra", "--expires-in", "1h"]);
    // Lacking a feature: 403, exit 1, the deny answer.
    let (code, out, _) = run(&["check", "--config", s(&config), "--path", "/export/x"], Some(&token));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("outcome:  deny\nreason:   feature_missing\nstatus:   403\n"), "{out}");
    assert!(out.contains("\nfeatures: extra, reports\nmissing:  export\nresponse 403:\n"), "{out}");
    assert!(out.contains("{\"error\":\"feature_missing\""), "{out}");
    let (code, report) = check_json(&["--config", s(&config), "--path", "/admin"], &token);
    assert_eq!(code, 1);
    assert_eq!(report["missing_features"], json!(["sso", "audit"]));
    assert_eq!(report["response"]["status"], 403);
    assert_eq!(report["response"]["body"]["error"], "feature_missing");
    assert_eq!(report["upstream_headers"], Value::Null);
    // Open route, no token: exit 0.
    let (code, report) = check_json(&["--config", s(&config), "--path", "/healthz/live", "--no-token"], "");
    assert_eq!((code, report["outcome"].as_str()), (0, Some("open")));
    // No token on a licensed route.
    let (code, report) = check_json(&["--config", s(&config), "--path", "/api/reports"], "");
    assert_eq!((code, report["reason"].as_str(), report["status"].as_u64()), (1, Some("missing"), Some(401)));
    // --at: the gateway's clock an hour and more later.
    let later = (now() + 3 * 3600).to_string();
    let (code, report) = check_json(&["--config", s(&config), "--path", "/api/reports", "--at", &later], &token);
    assert_eq!((code, report["reason"].as_str()), (1, Some("expired")));
    // A token of another key.
    let (other, _) = keygen(&dir, "ES256", "es2");
    let forged = mint(&other, "es1", &["--no-expiry"]);
    let (_, report) = check_json(&["--config", s(&config), "--path", "/api/reports"], &forged);
    assert_eq!(report["reason"], "bad_signature");
}

#[test]
fn check_grace_dry_run_and_query_tokens() {
    let dir = TempDir::new().unwrap();
    let (key, jwks) = keygen(&dir, "ES256", "es1");
    let config = plugin(
        &dir,
        "grace.json",
        json!({"jwks": jwks}),
        json!({"grace_period_seconds": 86400, "clock_skew_seconds": 0}),
    );
    let past = (now() - 10 * 86_400).to_string();
    let expired = (now() - 3 * 3600).to_string();
    let (code, token, err) = run(
        &[
            "mint",
            "--key",
            s(&key),
            "--kid",
            "es1",
            "--iss",
            ISS,
            "--plan",
            "pro",
            "--not-before",
            &past,
            "--expires-at",
            &expired,
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(err.starts_with("licensectl: warning: the license expired 3 hours ago ("), "{err}");
    let token = token.trim();
    let (code, report) = check_json(&["--config", s(&config), "--path", "/api/reports"], token);
    assert_eq!((code, report["outcome"].as_str()), (0, Some("grace")));
    assert_eq!(header(&report, "x-license-status"), Some("grace"));
    // Dry run: the would-be denial goes upstream as a header.
    let dry = plugin(&dir, "dry.json", json!({"jwks": jwks}), json!({"mode": "dry_run"}));
    let (code, out, _) = run(&["check", "--config", s(&dry), "--path", "/api/reports"], Some(token));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(
            "outcome:  dry_run\nreason:   expired\nstatus:   forwarded upstream (enforcement would answer 401)\n"
        ),
        "{out}"
    );
    assert!(out.contains("\n  x-license-dry-run: expired\n"), "{out}");
    // The token travels in the first configured source: a query parameter, stripped on the way.
    let query = plugin(
        &dir,
        "query.json",
        json!({"jwks": jwks}),
        json!({"token": [{"query": "license"}, {"header": "x-license"}], "forward": {"strip_token": true}}),
    );
    let fresh = mint(&key, "es1", &["--plan", "pro", "--expires-in", "1d"]);
    let (code, report) = check_json(&["--config", s(&query), "--path", "/api/reports?page=2"], &fresh);
    assert_eq!((code, report["outcome"].as_str()), (0, Some("allow")));
    assert_eq!(header(&report, ":path"), Some("/api/reports?page=2"));
}

#[test]
fn check_configuration_and_input_errors() {
    let dir = TempDir::new().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"issuers":["i"],"rules":[{"match":{}},{"match":{}},{"match":{},"require":{"all":"x"}}]}"#,
    )
    .unwrap();
    assert_eq!(
        fails(&["check", "--config", s(&broken), "--no-token"]),
        "licensectl: license-gate: config: rules[2].require.all: invalid type: string \"x\", expected a sequence"
    );
    let error = fails(&["check", "--config", s(&dir.path().join("none.json")), "--no-token"]);
    assert!(error.ends_with("none.json: no such file"), "{error}");
    let (_, jwks) = keygen(&dir, "ES256", "es1");
    let config = plugin(&dir, "plugin.json", json!({"jwks": jwks}), json!({}));
    assert_eq!(
        fails(&["check", "--config", s(&config), "--jwks", s(&config), "--no-token"]),
        "licensectl: --jwks: the configuration has no keys.remote (inline keys go in keys.jwks or keys.pem)"
    );
    assert_eq!(
        fails(&["check", "--config", s(&config), "--header", "nocolon", "--no-token"]),
        "licensectl: --header nocolon: expected NAME:VALUE"
    );
}

#[test]
fn mint_bad_input() {
    let dir = TempDir::new().unwrap();
    let base = |key: &Path| {
        vec!["mint".to_string(), "--key".into(), s(key).into(), "--kid".into(), "k".into(), "--iss".into(), ISS.into()]
    };
    let mint_err = |key: &Path, extra: &[&str]| {
        let mut args = base(key);
        args.extend(extra.iter().map(|a| a.to_string()));
        fails(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let rsa = test_key("rsa.key.pem");
    // An unreadable key.
    let missing = dir.path().join("missing.key.pem");
    assert!(mint_err(&missing, &["--no-expiry"]).ends_with("missing.key.pem: no such file"));
    let unreadable = dir.path().join("secret.key.pem");
    std::fs::write(&unreadable, "not a key").unwrap();
    assert!(mint_err(&unreadable, &["--no-expiry"]).contains("secret.key.pem: not a PEM key file"));
    assert!(
        mint_err(&test_key("rsa.pub.pem"), &["--no-expiry"])
            .ends_with("a public key; signing needs the private key (KID.key.pem from keygen)")
    );
    // A wrong --alg for the key.
    assert_eq!(
        mint_err(&rsa, &["--alg", "ES256", "--no-expiry"]),
        format!(
            "licensectl: --alg ES256 does not fit an RSA key of 2048 bits in {} (use RS256, RS384, RS512, PS256, PS384 or PS512)",
            s(&rsa)
        )
    );
    assert!(
        mint_err(&test_key("p256.key.pem"), &["--alg", "EdDSA", "--no-expiry"]).contains("does not fit a P-256 key")
    );
    // A malformed duration or time.
    let error = mint_err(&rsa, &["--expires-in", "90x"]);
    assert!(error.starts_with("licensectl: invalid value '90x' for '--expires-in <DURATION>': \"90x\" is not a duration like 90d, 12h or 30m"), "{error}");
    assert!(
        mint_err(&rsa, &["--expires-at", "next tuesday"])
            .contains("is neither RFC 3339 (2027-01-31T00:00:00Z) nor unix seconds")
    );
    // A key the gateway would refuse.
    assert_eq!(
        mint_err(&test_key("rsa-1024.key.pem"), &["--no-expiry"]),
        "licensectl: license-gate would refuse this key: RSA key of 1024 bits is too short (at least 2048)"
    );
    // Claims set twice, or not JSON.
    assert_eq!(
        mint_err(&rsa, &["--plan", "pro", "--claim", "plan=\"x\"", "--no-expiry"]),
        "licensectl: the claim \"plan\" would be set twice: by --plan and by --claim plan"
    );
    assert!(
        mint_err(&rsa, &["--claim", "tier=gold", "--no-expiry"])
            .starts_with("licensectl: --claim tier=gold: the value is not JSON")
    );
    assert!(
        mint_err(&rsa, &["--claim", "features=5", "--no-expiry"])
            .starts_with("licensectl: license-gate refuses the token licensectl made: malformed")
    );
    // An unknown claim name mapping, and a configuration with an error.
    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, r#"{"issuers":["i"],"keys":{"pem":[]},"claims":{"feature":"ents"}}"#).unwrap();
    let error = mint_err(&rsa, &["--claims-names", s(&unknown), "--no-expiry"]);
    assert!(
        error.starts_with(&format!(
            "licensectl: --claims-names {}: license-gate: config: claims.feature: unknown field `feature`",
            s(&unknown)
        )),
        "{error}"
    );
    let cycle = dir.path().join("cycle.json");
    std::fs::write(&cycle, r#"{"issuers":["i"],"keys":{"remote":{"cluster":"c","path":"/"}},"plans":{"a":{"inherits":["b"]},"b":{"inherits":["a"]}}}"#).unwrap();
    assert!(
        mint_err(&rsa, &["--claims-names", s(&cycle), "--no-expiry"])
            .ends_with("license-gate: config: plans.b.inherits: inheritance cycle a -> b -> a")
    );
}

#[test]
fn mint_with_the_gateways_claim_names_and_binding() {
    let dir = TempDir::new().unwrap();
    let (key, jwks) = keygen(&dir, "ES384", "es384");
    let config = plugin(
        &dir,
        "custom.json",
        json!({"jwks": jwks}),
        json!({
            "claims": {"features": "entitlements", "plan": "tier", "tenant": "org", "license_id": "lid"},
            "binding": {"claim": "sites", "identity": "node_id", "required": true},
            "forward": {"headers": {"x-license-org": "org"}},
        }),
    );
    let token = mint(
        &key,
        "es384",
        &[
            "--claims-names",
            s(&config),
            "--id",
            "L-9",
            "--tenant",
            "acme",
            "--plan",
            "pro",
            "--features",
            "export",
            "--deployments",
            "eu-prod-1,*.staging.example",
            "--expires-in",
            "30d",
        ],
    );
    let inspected: Value = serde_json::from_str(&ok(&["inspect", "--json", &token])).unwrap();
    let claims = &inspected["claims"];
    assert_eq!(claims["lid"], "L-9");
    assert_eq!(claims["org"], "acme");
    assert_eq!(claims["tier"], "pro");
    assert_eq!(claims["entitlements"], json!(["export"]));
    assert_eq!(claims["sites"], json!(["eu-prod-1", "*.staging.example"]));
    assert!(claims.get("jti").is_none() && claims.get("features").is_none());
    // Binding: the gateway's identity is Envoy's node id.
    let check = |node: &[&str]| {
        let mut args = vec!["--config", s(&config), "--path", "/export/all"];
        args.extend(node);
        check_json(&args, &token)
    };
    let (code, report) = check(&["--node-id", "eu-prod-1"]);
    assert_eq!((code, report["outcome"].as_str()), (0, Some("allow")), "{report}");
    assert_eq!(report["license"]["features"], json!(["export", "reports"]));
    assert_eq!(header(&report, "x-license-org"), Some("acme"));
    assert_eq!(report["identity"]["value"], "eu-prod-1");
    let (code, _) = check(&["--node-id", "gw.staging.example"]);
    assert_eq!(code, 0);
    let (code, report) = check(&["--node-id", "us-prod-1"]);
    assert_eq!((code, report["reason"].as_str(), report["status"].as_u64()), (1, Some("binding_mismatch"), Some(403)));
    let (code, out, _) = run(&["check", "--config", s(&config), "--path", "/export/all"], Some(&token));
    assert_eq!(code, 1);
    assert!(out.contains("\nidentity: unknown: xds.node.id is not set; pass --node-id ID\n"), "{out}");
    assert!(
        out.contains("\nnote: the gateway's identity is unknown (xds.node.id is not set; pass --node-id ID)\n"),
        "{out}"
    );
    // A license for another issuer: minted, with a warning.
    let (code, _, err) = run(
        &[
            "mint",
            "--key",
            s(&key),
            "--kid",
            "es384",
            "--iss",
            "https://other",
            "--claims-names",
            s(&config),
            "--no-expiry",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(
        err.starts_with("licensectl: warning: --iss https://other is not one of the configuration's issuers"),
        "{err}"
    );
}

#[test]
fn revoke_then_check_refuses_revoked() {
    let dir = TempDir::new().unwrap();
    let (key, jwks) = keygen(&dir, "EdDSA", "ed1");
    let config = plugin(
        &dir,
        "plugin.json",
        json!({"jwks": jwks}),
        json!({"revocation": {"remote": {"cluster": "keys", "path": "/revocations.jwt"}}}),
    );
    let exp = now() + 30 * 86_400;
    let revoked = mint(&key, "ed1", &["--id", "lic-2", "--plan", "pro", "--expires-at", &exp.to_string()]);
    let kept = mint(&key, "ed1", &["--id", "lic-3", "--plan", "pro", "--expires-at", &exp.to_string()]);
    let (code, list, err) = run(
        &[
            "revoke",
            "--key",
            s(&key),
            "--kid",
            "ed1",
            "--iss",
            ISS,
            "--id",
            &format!("lic-2:{exp}"),
            "--id",
            "lic-7",
            "--next-update",
            "1h",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("licensectl: revoked lic-2 (until "), "{err}");
    let inspected: Value = serde_json::from_str(&ok(&["inspect", "--json", list.trim()])).unwrap();
    assert_eq!(inspected["header"]["typ"], "license-revocations+jwt");
    assert_eq!(inspected["header"]["kid"], "ed1");
    assert_eq!(inspected["claims"]["revoked"], json!([{"id": "lic-2", "exp": exp}, {"id": "lic-7"}]));
    let next = inspected["claims"]["next_update"].as_u64().unwrap() - inspected["claims"]["iat"].as_u64().unwrap();
    assert_eq!(next, 3600);
    let list_file = dir.path().join("revocations.jwt");
    std::fs::write(&list_file, &list).unwrap();
    let (code, report) =
        check_json(&["--config", s(&config), "--path", "/api/reports", "--revocations", s(&list_file)], &revoked);
    assert_eq!((code, report["reason"].as_str(), report["status"].as_u64()), (1, Some("revoked"), Some(401)));
    let (code, _) =
        check_json(&["--config", s(&config), "--path", "/api/reports", "--revocations", s(&list_file)], &kept);
    assert_eq!(code, 0);
    // Without the list: as before the first fetch (on_stale keep).
    let (code, report) = check_json(&["--config", s(&config), "--path", "/api/reports"], &revoked);
    assert_eq!(code, 0);
    assert_eq!(
        report["notes"][0],
        "revocation.remote is configured and no --revocations was given: only revocation.ids apply"
    );
    // A list signed by a key the gateway does not have is refused.
    let (other, _) = keygen(&dir, "EdDSA", "ed9");
    let foreign = ok(&["revoke", "--key", s(&other), "--kid", "ed9", "--iss", ISS, "--id", "lic-2"]);
    std::fs::write(&list_file, foreign).unwrap();
    let error = fails(&["check", "--config", s(&config), "--revocations", s(&list_file), "--no-token"]);
    assert!(error.ends_with("license-gate would refuse this list: no key to verify it (unknown_kid)"), "{error}");
}

#[test]
fn revoke_bad_input() {
    let key = test_key("p256.key.pem");
    let base = ["revoke", "--key", s(&key), "--kid", "es1", "--iss", ISS];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        fails(&args)
    };
    let error = with(&["--id", "lic-1:1000"]);
    assert!(error.starts_with("licensectl: --id lic-1:1000: read as license \"lic-1\" that expired"), "{error}");
    assert_eq!(with(&["--id", "a", "--id", "a"]), "licensectl: --id a is given twice (entries 1 and 2)");
    assert!(with(&["--id", "a", "--next-update", "soon"]).contains("\"soon\" is not a duration"));
    assert!(with(&["--id", "a", "--alg", "RS256"]).contains("--alg RS256 does not fit a P-256 key"));
    // An id that ends in :DIGITS, with a final colon.
    let list = ok(&[&base[..], &["--id", "urn:lic:7:"]].concat());
    let inspected: Value = serde_json::from_str(&ok(&["inspect", "--json", list.trim()])).unwrap();
    assert_eq!(inspected["claims"]["revoked"], json!([{"id": "urn:lic:7"}]));
}

#[test]
fn jwks_then_check_with_keys_remote() {
    let dir = TempDir::new().unwrap();
    let (es_key, _) = keygen(&dir, "ES256", "es1");
    let (ps_key, _) = keygen(&dir, "PS256", "ps1");
    let (ed_key, ed_jwks) = keygen(&dir, "EdDSA", "ed1");
    let keys = es_key.parent().unwrap();
    let ed_jwks_file = keys.join("ed1.jwks.json");
    let document = ok(&[
        "jwks",
        s(&keys.join("es1.pub.pem")),
        s(&ps_key),
        &format!("old={}", s(&test_key("rsa.pub.pem"))),
        s(&ed_jwks_file),
    ]);
    let jwks: Value = serde_json::from_str(&document).unwrap();
    let summary: Vec<(String, String)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_string(), k["alg"].as_str().unwrap().to_string()))
        .collect();
    let want = [("es1", "ES256"), ("ps1", "PS256"), ("old", "RS256"), ("ed1", "EdDSA")];
    assert_eq!(summary, want.map(|(k, a)| (k.to_string(), a.to_string())));
    assert_eq!(jwks["keys"][3], ed_jwks["keys"][0]);
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none() && k["use"] == "sig"));
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, &document).unwrap();
    // A gateway that only fetches its keys.
    let config = plugin(
        &dir,
        "remote.json",
        json!({"remote": {"cluster": "keys", "path": "/.well-known/jwks.json"}}),
        json!({}),
    );
    // The PS256 key signs PS256 without --alg: keygen recorded it beside the key.
    let token = mint(&ps_key, "ps1", &["--plan", "pro", "--expires-in", "12h"]);
    let header: Value = serde_json::from_str(&ok(&["inspect", "--json", &token])).unwrap();
    assert_eq!(header["header"]["alg"], "PS256");
    let (code, out, _) = run(&["check", "--config", s(&config), "--path", "/api/reports"], Some(&token));
    assert_eq!(code, 1);
    assert!(out.starts_with("outcome:  deny\nreason:   keys_unavailable\nstatus:   503\n"), "{out}");
    assert!(out.contains("note: pass --jwks FILE (what keys.remote serves)"), "{out}");
    for (key, kid) in [(&ps_key, "ps1"), (&es_key, "es1"), (&ed_key, "ed1")] {
        let token = mint(key, kid, &["--plan", "pro", "--expires-in", "12h"]);
        let (code, report) =
            check_json(&["--config", s(&config), "--path", "/api/reports", "--jwks", s(&jwks_file)], &token);
        assert_eq!((code, report["outcome"].as_str()), (0, Some("allow")), "{kid}: {report}");
    }
}

#[test]
fn jwks_bad_input() {
    let dir = TempDir::new().unwrap();
    assert_eq!(
        fails(&["jwks", s(&test_key("rsa-1024.pub.pem"))]),
        format!(
            "licensectl: {}: license-gate would refuse this key: RSA key of 1024 bits is too short (at least 2048)",
            s(&test_key("rsa-1024.pub.pem"))
        )
    );
    let twice = fails(&["jwks", s(&test_key("p256.pub.pem")), &format!("p256={}", s(&test_key("p256.key.pem")))]);
    assert!(twice.starts_with("licensectl: kid \"p256\" twice: "), "{twice}");
    assert_eq!(
        fails(&["jwks", "--alg", "PS256", s(&test_key("p256.pub.pem"))]),
        "licensectl: --alg is for RSA keys, and no RSA PEM key was given"
    );
    // A JWK with private members: only the public ones are copied.
    let private = dir.path().join("private.json");
    std::fs::write(
        &private,
        r#"{"kty":"OKP","crv":"Ed25519","kid":"e","d":"secret","x":"HPD04AazYkNx7NpF5gliU2qy03RpWBBNV5BURUn0a6E"}"#,
    )
    .unwrap();
    let document: Value = serde_json::from_str(&ok(&["jwks", s(&private)])).unwrap();
    assert_eq!(
        document,
        json!({"keys": [{"kty": "OKP", "kid": "e", "crv": "Ed25519", "x": "HPD04AazYkNx7NpF5gliU2qy03RpWBBNV5BURUn0a6E"}]})
    );
    let secret = dir.path().join("oct.json");
    std::fs::write(&secret, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    assert!(fails(&["jwks", s(&secret)]).ends_with("keys[0] is a \"oct\" key, not a public signing key"));
}

#[test]
fn wasmplugin_yaml_as_the_configuration() {
    let wasmplugin = repo("istio/wasmplugin.yaml");
    assert_eq!(ok(&["config", "check", s(&wasmplugin)]), "ok\n");
    // The WasmPlugin's inline key rs1 is the test key rsa.pem.
    let token = mint(
        &test_key("rsa.key.pem"),
        "rs1",
        &[
            "--aud",
            "gateway.example.com",
            "--id",
            "lic-0042",
            "--tenant",
            "acme",
            "--plan",
            "enterprise",
            "--expires-in",
            "30d",
            "--claims-names",
            s(&wasmplugin),
        ],
    );
    let args = [
        "--config",
        s(&wasmplugin),
        "--host",
        "api.example.com",
        "--path",
        "/api/reports?x=1",
        "--header",
        "x-license-plan: forged",
    ];
    let (code, report) = check_json(&args, &token);
    assert_eq!((code, report["outcome"].as_str()), (0, Some("allow")), "{report}");
    assert_eq!(report["license"]["features"], json!(["audit", "reports", "sso"]));
    assert_eq!(header(&report, "x-license-plan"), Some("enterprise"));
    assert_eq!(header(&report, "x-license-id"), Some("lic-0042"));
    // forward.strip_token: the upstream never sees the token.
    assert_eq!(header(&report, "authorization"), None);
    let (code, report) = check_json(&["--config", s(&wasmplugin), "--path", "/healthz"], &token);
    assert_eq!((code, report["outcome"].as_str()), (0, Some("open")));
    let (code, report) = check_json(&["--config", s(&wasmplugin), "--path", "/other"], &token);
    assert_eq!((code, report["reason"].as_str()), (1, Some("route_denied")));
    // A copy with an error: the line on_configure logs, exit 1.
    let dir = TempDir::new().unwrap();
    let broken = dir.path().join("wasmplugin.yaml");
    let text =
        std::fs::read_to_string(&wasmplugin).unwrap().replace("require: {all: [reports]}", "require: {all: reports}");
    std::fs::write(&broken, text).unwrap();
    let (code, out, _) = run(&["config", "check", s(&broken)], None);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "license-gate: config: rules[1].require.all: invalid type: string \"reports\", expected a sequence\n"
    );
}

/// envoy/gateway.yaml with its placeholders filled as envoy/gateway.py does.
fn envoy_yaml(dir: &TempDir, config: &Value) -> PathBuf {
    envoy_yaml_with(dir, config, "")
}

/// The same, with `quota` (an http_filters item) after the gate.
fn envoy_yaml_with(dir: &TempDir, config: &Value, quota: &str) -> PathBuf {
    let quota: Vec<String> =
        quota.lines().map(|l| if l.is_empty() { String::new() } else { format!("{:10}{l}", "") }).collect();
    let json = serde_json::to_string_pretty(config).unwrap();
    let indented: Vec<String> = json.lines().map(|l| format!("{:20}{l}", "")).collect();
    let mut text = std::fs::read_to_string(repo("envoy/gateway.yaml")).unwrap();
    for (name, value) in [
        ("listen_port", "10000".to_string()),
        ("admin_port", "9901".into()),
        ("upstream_port", "8080".into()),
        ("key_server_port", "9".into()),
        ("wasm_path", "/dist/license_gate.wasm".into()),
        ("access_log_path", "/dev/null".into()),
        ("plugin_config", indented.join("\n")),
        ("quota_filter", quota.join("\n")),
        ("per_ip_requests_per_second", "100".into()),
        ("per_ip_burst", "200".into()),
    ] {
        text = text.replace(&format!("{{{{{name}}}}}"), &value);
    }
    let path = dir.path().join("envoy.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn envoy_yaml_as_the_configuration() {
    let dir = TempDir::new().unwrap();
    let (key, jwks) = keygen(&dir, "ES256", "es1");
    let json_config = plugin(&dir, "plugin.json", json!({"jwks": jwks}), json!({}));
    let config: Value = serde_json::from_str(&std::fs::read_to_string(json_config).unwrap()).unwrap();
    let envoy = envoy_yaml(&dir, &config);
    assert_eq!(ok(&["config", "check", s(&envoy)]), "ok\n");
    let token = mint(&key, "es1", &["--plan", "enterprise", "--expires-in", "1d"]);
    let (code, report) = check_json(&["--config", s(&envoy), "--path", "/admin/users"], &token);
    assert_eq!((code, report["outcome"].as_str()), (0, Some("allow")), "{report}");
    let mut bad = config.clone();
    bad["plans"]["pro"]["inherits"] = json!(["gold"]);
    let envoy = envoy_yaml(&dir, &bad);
    let (code, out, _) = run(&["config", "check", s(&envoy)], None);
    assert_eq!((code, out.as_str()), (1, "license-gate: config: plans.pro.inherits: unknown plan \"gold\"\n"));
    let error = fails(&["check", "--config", s(&envoy), "--no-token"]);
    assert!(error.starts_with("licensectl: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_config.config.configuration of the Wasm filter \"license-gate\": license-gate: config: plans.pro.inherits"), "{error}");
}

#[test]
fn config_check() {
    let dir = TempDir::new().unwrap();
    let (_, jwks) = keygen(&dir, "ES256", "es1");
    let good = plugin(&dir, "good.json", json!({"jwks": jwks}), json!({}));
    assert_eq!(ok(&["config", "check", s(&good)]), "ok\n");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"issuers":["i"],"rules":[{"match":{}},{"match":{}},{"match":{},"require":{"all":"reports"}}]}"#,
    )
    .unwrap();
    let (code, out, err) = run(&["config", "check", s(&bad)], None);
    assert_eq!((code, err.as_str()), (1, ""));
    assert_eq!(
        out,
        "license-gate: config: rules[2].require.all: invalid type: string \"reports\", expected a sequence\n"
    );
    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, r#"{"issuers":["i"],"keys":{"pem":[]},"mode":"dryrun"}"#).unwrap();
    let (code, out, _) = run(&["config", "check", s(&typo)], None);
    assert_eq!(code, 1);
    assert!(out.starts_with("license-gate: config: mode: unknown variant `dryrun`"), "{out}");
    let empty = dir.path().join("empty.yaml");
    std::fs::write(
        &empty,
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: lg}\nspec: {url: oci://x}\n",
    )
    .unwrap();
    let (code, out, _) = run(&["config", "check", s(&empty)], None);
    assert_eq!((code, out.as_str()), (1, "license-gate: config: config: the plugin configuration is empty\n"));
    let error = fails(&["config", "check", s(&dir.path().join("nope.json"))]);
    assert!(error.ends_with("nope.json: no such file"), "{error}");
    let list = dir.path().join("list.yaml");
    std::fs::write(&list, "- a\n- b\n").unwrap();
    assert!(fails(&["config", "check", s(&list)]).contains("list.yaml: no plugin configuration found"));
}

#[test]
fn inspect_output() {
    let dir = TempDir::new().unwrap();
    let (key, _) = keygen(&dir, "ES256", "es1");
    let t = now();
    let nbf = t - 3 * 3600 - 600;
    let exp = t + 29 * 86_400 + 3600;
    let token = mint(
        &key,
        "es1",
        &[
            "--aud",
            "gw",
            "--id",
            "lic-1",
            "--features",
            "a,b",
            "--claim",
            "seats=25",
            "--not-before",
            &nbf.to_string(),
            "--expires-at",
            &exp.to_string(),
        ],
    );
    let text = ok(&["inspect", &token]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..4], ["header:", "  alg       ES256", "  kid       es1", "  typ       JWT"], "{text}");
    assert_eq!(lines[4], "claims:");
    assert_eq!(lines[5], "  aud       gw");
    let json: Value = serde_json::from_str(&ok(&["inspect", "--json", &token])).unwrap();
    let exp_rfc = rfc3339(exp);
    assert_eq!(lines[6], format!("  exp       {exp}  {exp_rfc}  expires in 29 days"));
    assert_eq!(lines[7], "  features  [\"a\",\"b\"]");
    // iat: the time of minting, then its RFC 3339 and how long ago.
    let iat: Vec<&str> = lines[8].split_whitespace().collect();
    assert_eq!(iat[0], "iat", "{}", lines[8]);
    let minted: u64 = iat[1].parse().unwrap();
    assert!((t..t + 60).contains(&minted), "{}", lines[8]);
    assert_eq!(iat[2], rfc3339(minted), "{}", lines[8]);
    assert_eq!(iat[3], "issued", "{}", lines[8]);
    assert_eq!(lines[9], format!("  iss       {ISS}"));
    assert_eq!(lines[10], "  jti       lic-1");
    assert!(
        lines[11].starts_with(&format!("  nbf       {nbf}  ")) && lines[11].ends_with("Z  valid since 3 hours ago"),
        "{}",
        lines[11]
    );
    assert_eq!(lines[12], "  seats     25");
    assert_eq!(lines[13], "signature: 64 bytes, not verified (licensectl check verifies)");
    assert_eq!(lines.len(), 14);
    assert_eq!(json["times"]["exp"]["rfc3339"], exp_rfc);
    assert_eq!(json["times"]["exp"]["relative"], "expires in 29 days");
    assert_eq!(json["times"]["exp"]["unix"], exp);
    assert_eq!(json["verified"], false);
    assert_eq!(json["claims"]["seats"], 25);
    // From stdin, "Bearer " and all; an expired, perpetual and broken token.
    let (code, out, _) = run(&["inspect"], Some(&format!("Bearer {token}\n")));
    assert_eq!((code, out), (0, text.clone()));
    let (code, out, _) = run(&["inspect", "-"], Some(&token));
    assert_eq!((code, out), (0, text));
    let old = mint(
        &key,
        "es1",
        &["--not-before", &(t - 86_400).to_string(), "--expires-at", &(t - 3 * 3600 - 60).to_string()],
    );
    assert!(ok(&["inspect", &old]).contains("  expired 3 hours ago\n"));
    let forever = mint(&key, "es1", &["--no-expiry"]);
    assert!(ok(&["inspect", &forever]).contains("\n  (no exp: the license never expires)\n"));
    assert_eq!(fails(&["inspect", "abc"]), "licensectl: not a compact JWT: 1 dot-separated parts, expected 3");
    let (code, _, err) = run(&["inspect"], Some(""));
    assert_eq!((code, err.as_str()), (2, "licensectl: no token: give TOKEN, or one on stdin\n"));
}

/// A plugin configuration whose plans carry quotas.
fn quota_plugin(dir: &TempDir, patch: Value) -> PathBuf {
    let (_, jwks) = keygen(dir, "ES256", "es1");
    let mut plans = json!({
        "basic": {"quota": {"requests_per_second": 5, "burst": 10}},
        "pro": {"inherits": ["basic"], "features": ["reports"], "quota": {"requests_per_second": 50, "burst": 100}},
        "enterprise": {"inherits": ["pro"], "features": ["sso", "audit"]},
        "free": {}
    });
    if let Some(extra) = patch.get("plans") {
        plans = extra.clone();
    }
    let mut patch = patch;
    patch["plans"] = plans;
    plugin(dir, "quota.json", json!({"jwks": jwks}), patch)
}

fn yaml(text: &str) -> yaml_rust2::Yaml {
    let mut docs = yaml_rust2::YamlLoader::load_from_str(text).unwrap();
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}

#[test]
fn quota_local_has_one_bucket_per_tenant_of_each_plan() {
    let dir = TempDir::new().unwrap();
    let config = quota_plugin(&dir, json!({}));
    let out = ok(&["quota", "--config", s(&config), "--tenants", "250"]);
    assert!(out.starts_with("# Generated by licensectl quota --format local."), "{out}");
    assert!(out.contains("# Plans without a quota go to the default bucket (not capped): free."), "{out}");
    let doc = yaml(&out);
    let filter = &doc[0];
    assert_eq!(filter["name"].as_str(), Some("license-gate-quota"));
    let c = &filter["typed_config"];
    assert_eq!(
        c["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit")
    );
    assert_eq!(c["always_consume_default_token_bucket"].as_bool(), Some(false));
    assert_eq!(c["enable_x_ratelimit_headers"].as_str(), Some("DRAFT_VERSION_03"));
    assert_eq!(c["max_dynamic_descriptors"].as_i64(), Some(250));
    // Not capped by default: anonymous traffic must not starve licensed requests.
    assert_eq!(c["token_bucket"]["max_tokens"].as_i64(), Some(1_000_000_000));
    assert_eq!(c["token_bucket"]["tokens_per_fill"].as_i64(), Some(1_000_000_000));
    let capped =
        yaml(&ok(&["quota", "--config", s(&config), "--default-requests-per-second", "7", "--default-burst", "9"]));
    let bucket = &capped[0]["typed_config"]["token_bucket"];
    assert_eq!((bucket["tokens_per_fill"].as_i64(), bucket["max_tokens"].as_i64()), (Some(7), Some(9)));
    let actions = c["rate_limits"][0]["actions"].as_vec().unwrap();
    let headers: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| {
            let h = &a["request_headers"];
            (h["header_name"].as_str().unwrap(), h["descriptor_key"].as_str().unwrap())
        })
        .collect();
    assert_eq!(headers, [("x-license-plan", "license_plan"), ("x-license-tenant", "license_tenant")]);
    let descriptors: Vec<(String, i64, i64, bool)> = c["descriptors"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|d| {
            let entries = d["entries"].as_vec().unwrap();
            assert_eq!(entries[0]["key"].as_str(), Some("license_plan"));
            assert_eq!(entries[1]["key"].as_str(), Some("license_tenant"));
            let wildcard = entries[1]["value"].is_badvalue();
            let b = &d["token_bucket"];
            (
                entries[0]["value"].as_str().unwrap().to_string(),
                b["tokens_per_fill"].as_i64().unwrap(),
                b["max_tokens"].as_i64().unwrap(),
                wildcard,
            )
        })
        .collect();
    assert_eq!(
        descriptors,
        [
            ("basic".to_string(), 5, 10, true),
            ("enterprise".to_string(), 50, 100, true),
            ("pro".to_string(), 50, 100, true)
        ]
    );
}

#[test]
fn quota_global_and_istio() {
    let dir = TempDir::new().unwrap();
    let config = quota_plugin(&dir, json!({}));
    let doc = yaml(&ok(&["quota", "--config", s(&config), "--format", "global"]));
    assert_eq!(doc["domain"].as_str(), Some("license-gate"));
    let pro = &doc["descriptors"][2];
    assert_eq!((pro["key"].as_str(), pro["value"].as_str()), (Some("license_plan"), Some("pro")));
    assert_eq!(pro["descriptors"][0]["key"].as_str(), Some("license_tenant"));
    assert_eq!(pro["descriptors"][0]["rate_limit"]["requests_per_unit"].as_i64(), Some(50));
    assert_eq!(pro["descriptors"][0]["rate_limit"]["unit"].as_str(), Some("second"));
    let filter = yaml(&ok(&["quota", "--config", s(&config), "--format", "global-filter", "--service-cluster", "rls"]));
    let c = &filter[0]["typed_config"];
    assert_eq!(c["domain"].as_str(), Some("license-gate"));
    assert_eq!(c["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"].as_str(), Some("rls"));
    // From a WasmPlugin: its namespace and workload selector.
    let plugin_text = std::fs::read_to_string(&config).unwrap();
    let wasmplugin = dir.path().join("wasmplugin.yaml");
    let indented: Vec<String> = plugin_text.lines().map(|l| format!("    {l}")).collect();
    std::fs::write(
        &wasmplugin,
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {{name: lg, namespace: edge}}\nspec:\n  selector:\n    matchLabels: {{app: api-gw}}\n  failStrategy: FAIL_CLOSE\n  pluginConfig:\n{}\n",
            indented.join("\n")
        ),
    )
    .unwrap();
    let istio = yaml(&ok(&["quota", "--config", s(&wasmplugin), "--format", "istio"]));
    assert_eq!(istio["kind"].as_str(), Some("EnvoyFilter"));
    assert_eq!(istio["metadata"]["namespace"].as_str(), Some("edge"));
    assert_eq!(istio["spec"]["workloadSelector"]["labels"]["app"].as_str(), Some("api-gw"));
    let patch = &istio["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"].as_str(), Some("HTTP_FILTER"));
    assert_eq!(patch["patch"]["operation"].as_str(), Some("INSERT_BEFORE"));
    assert_eq!(
        patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"].as_str(),
        Some("envoy.filters.http.router")
    );
    assert_eq!(patch["patch"]["value"]["typed_config"]["max_dynamic_descriptors"].as_i64(), Some(1000));
    // A WasmPlugin that fails open would let requests reach the limiter ungated.
    let open = dir.path().join("open.yaml");
    std::fs::write(&open, std::fs::read_to_string(&wasmplugin).unwrap().replace("FAIL_CLOSE", "FAIL_OPEN")).unwrap();
    let (code, out, err) = run(&["quota", "--config", s(&open), "--format", "istio"], None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("failStrategy: FAIL_OPEN"), "{err}");
    // Without a workload selector the EnvoyFilter cannot know its gateways.
    let unselected = dir.path().join("unselected.yaml");
    let text =
        std::fs::read_to_string(&wasmplugin).unwrap().replace("  selector:\n    matchLabels: {app: api-gw}\n", "");
    std::fs::write(&unselected, text).unwrap();
    let (code, _, err) = run(&["quota", "--config", s(&unselected), "--format", "istio"], None);
    assert_eq!(code, 1);
    assert!(err.contains("the WasmPlugin has no spec.selector.matchLabels"), "{err}");
}

/// gateway.yaml's text with `block` (taken from start..end) moved in front
/// of the gate (at `gate`).
fn moved_text(text: &str, block: &str, gate: usize, start: usize, end: usize) -> String {
    format!("{}{}{}{}", &text[..gate], block, &text[gate..start], &text[end..])
}

#[test]
fn quota_refuses_a_limiter_before_the_gate_and_configurations_without_quotas() {
    let dir = TempDir::new().unwrap();
    let config_path = quota_plugin(&dir, json!({}));
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let local = ok(&["quota", "--config", s(&config_path)]);
    // Where gateway.yaml puts it (after the gate): accepted.
    let after = envoy_yaml_with(&dir, &config, &local);
    assert!(ok(&["quota", "--config", s(&after)]).contains("license-gate-quota"));
    // The same limiter moved in front of the gate: refused.
    let text = std::fs::read_to_string(&after).unwrap();
    let start = text.find("          - name: license-gate-quota").unwrap();
    let end = text.find("          - name: envoy.filters.http.router").unwrap();
    let block = &text[start..end];
    let gate = text.find("          - name: license-gate\n").unwrap();
    let moved = moved_text(&text, block, gate, start, end);
    let before = dir.path().join("before.yaml");
    std::fs::write(&before, moved).unwrap();
    let (code, out, err) = run(&["quota", "--config", s(&before)], None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("http_filters[1] (license-gate-quota) limits on x-license-plan/x-license-tenant before the license-gate Wasm filter (it is static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[2])"),
        "{err}"
    );
    // A gate that fails open.
    let fail_open = dir.path().join("fail-open.yaml");
    std::fs::write(&fail_open, text.replace("fail_open: false", "fail_open: true")).unwrap();
    let (code, _, err) = run(&["quota", "--config", s(&fail_open)], None);
    assert_eq!(code, 1);
    assert!(err.contains("has fail_open: true"), "{err}");
    // No plan with a quota: nothing to generate.
    let none = plugin(&dir, "none.json", config["keys"].clone(), json!({}));
    let (code, _, err) = run(&["quota", "--config", s(&none)], None);
    assert_eq!(code, 1);
    assert!(
        err.ends_with(
            "no plan has a quota (plans.<name>.quota: {\"requests_per_second\": N, \"burst\": M}): nothing to limit\n"
        ),
        "{err}"
    );
    // A configuration the filter refuses: its on_configure line.
    let bad = plugin(
        &dir,
        "bad.json",
        config["keys"].clone(),
        json!({"plans": {"pro": {"quota": {"requests_per_second": 9, "burst": 3}}}}),
    );
    let (code, _, err) = run(&["quota", "--config", s(&bad)], None);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "licensectl: license-gate: config: plans.pro.quota.burst: must be at least requests_per_second (9): the bucket refills that many each second\n"
        )
    );
    let error =
        fails(&["quota", "--config", s(&config_path), "--default-burst", "5", "--default-requests-per-second", "6"]);
    assert_eq!(error, "licensectl: --default-burst must be at least --default-requests-per-second");
    let error = fails(&["quota", "--config", s(&config_path), "--default-burst", "5"]);
    assert!(error.contains("--default-requests-per-second <R>"), "{error}");
    let error = fails(&["quota", "--config", s(&config_path), "--service-cluster", "rls\nfailure_mode_deny: true"]);
    assert!(error.contains("without spaces, quotes or '#'"), "{error}");
    // A limiter keyed on the license headers in capitals, before the gate.
    let shouting = dir.path().join("shouting.yaml");
    std::fs::write(&shouting, moved_text(&text, &block.replace("x-license-plan", "X-License-Plan"), gate, start, end))
        .unwrap();
    let (code, _, err) = run(&["quota", "--config", s(&shouting)], None);
    assert_eq!(code, 1);
    assert!(err.contains("(license-gate-quota) limits on x-license-plan/x-license-tenant before"), "{err}");
    // The classic layout: a limiter with no rate_limits of its own, keyed
    // through the route's rate_limits, before the gate.
    let own_limits = block.find("    rate_limits:").unwrap();
    let descriptors = block.find("    descriptors:").unwrap();
    let bare = format!("{}{}", &block[..own_limits], &block[descriptors..]);
    let routed = moved_text(&text, &bare, gate, start, end).replace(
        "route: {cluster: upstream}",
        "route: {cluster: upstream, rate_limits: [{actions: [{request_headers: {header_name: x-license-tenant, descriptor_key: t}}]}]}",
    );
    let route_level = dir.path().join("route-level.yaml");
    std::fs::write(&route_level, routed).unwrap();
    let (code, _, err) = run(&["quota", "--config", s(&route_level)], None);
    assert_eq!(code, 1);
    assert!(err.contains("(license-gate-quota) limits on x-license-plan/x-license-tenant before"), "{err}");
}

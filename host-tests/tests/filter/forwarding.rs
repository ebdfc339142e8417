//! What the upstream receives: trusted x-license-* headers set from the
//! claims, forged ones removed, and the token stripped when asked.

use license_gate_host_tests::Reply;
use serde_json::json;

use crate::support::*;

fn values(reply: &Reply, name: &str) -> Vec<String> {
    match reply {
        Reply::Forwarded { headers } => {
            headers.iter().filter(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
        }
        Reply::Local(r) => panic!("denied: {} {}", r.status, String::from_utf8_lossy(&r.body)),
    }
}

#[test]
fn license_headers_replace_forged_ones() {
    let mut gw = Gateway::new(&config());
    let token = mint(RS256, &claims(json!({"plan": "pro", "tenant": "acme", "jti": "lic-9"})));
    let auth = format!("Bearer {token}");
    let reply = gw.send(
        "GET",
        "api.example.com",
        "/api/data",
        &[
            ("authorization", &auth),
            ("x-license-tenant", "evil-corp"),
            ("x-license-tenant", "evil-corp-2"),
            ("x-license-plan", "enterprise"),
            ("x-license-status", "active"),
            ("x-license-dry-run", "nothing"),
        ],
    );
    assert_eq!(values(&reply, "x-license-tenant"), ["acme"]);
    assert_eq!(values(&reply, "x-license-plan"), ["pro"]);
    assert_eq!(values(&reply, "x-license-id"), ["lic-9"]);
    assert_eq!(values(&reply, "x-license-status"), ["active"]);
    assert!(values(&reply, "x-license-dry-run").is_empty());
    assert_eq!(values(&reply, "authorization"), [auth.as_str()], "token kept when strip_token is false");
}

#[test]
fn forged_headers_are_removed_on_open_routes_and_absent_claims_set_nothing() {
    let mut gw = Gateway::new(&config());
    let open = gw.send("GET", "h", "/healthz", &[("x-license-tenant", "evil"), ("x-license-status", "active")]);
    assert!(values(&open, "x-license-tenant").is_empty());
    assert!(values(&open, "x-license-status").is_empty());

    let token = mint(RS256, &claims(json!({"tenant": null, "plan": null, "jti": "a\r\nx-admin: 1"})));
    let reply = gw.get("/api/data", &token);
    assert!(values(&reply, "x-license-tenant").is_empty());
    assert!(values(&reply, "x-license-plan").is_empty());
    assert!(values(&reply, "x-license-id").is_empty(), "a claim with CR/LF is never a header value");
    assert!(values(&reply, "x-admin").is_empty());
}

#[test]
fn grace_status_is_forwarded() {
    let mut gw = Gateway::new(&config());
    let token = mint(ES256, &claims(json!({"exp": NOW - 3600})));
    assert_eq!(values(&gw.get("/api/data", &token), "x-license-status"), ["grace"]);
}

#[test]
fn strip_token_from_each_source() {
    let mut gw = Gateway::new(&with(config(), &["forward", "strip_token"], json!(true)));
    let token = mint(RS256, &claims(json!({})));
    let auth = format!("Bearer {token}");
    let reply = gw.send("GET", "h", "/api/data", &[("authorization", &auth), ("x-other", "kept")]);
    assert!(values(&reply, "authorization").is_empty());
    assert_eq!(values(&reply, "x-other"), ["kept"]);

    let reply = gw.send("GET", "h", &format!("/api/data?a=1&license={token}&b=2"), &[]);
    assert_eq!(values(&reply, ":path"), ["/api/data?a=1&b=2"]);

    let cookie = format!("session=s1; license={token}; theme=dark");
    let reply = gw.send("GET", "h", "/api/data", &[("cookie", &cookie)]);
    assert_eq!(values(&reply, "cookie"), ["session=s1; theme=dark"]);

    // A denied request is answered locally; nothing is forwarded or stripped.
    let expired = mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE - 1})));
    assert_eq!(gw.get("/api/data", &expired).status(), 401);
}

//! Dry-run: never deny; tell the upstream and the log what enforcement would do.

use serde_json::json;

use crate::support::*;

#[test]
fn dry_run_forwards_with_the_would_be_reason() {
    let mut gw = Gateway::new(&with(config(), &["mode"], json!("dry_run")));
    let expired = mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE - 1})));
    let basic = mint(RS256, &claims(json!({"tenant": "acme"})));
    let pro = mint(RS256, &claims(json!({"plan": "pro"})));

    let cases: [(&str, &str, Option<&str>, Option<&str>, Option<&str>); 5] = [
        // path, token, x-license-dry-run, x-license-status, x-license-tenant
        ("/api/data", "", Some("missing"), None, None),
        ("/api/data", &expired, Some("expired"), None, None),
        ("/api/reports", &basic, Some("feature_missing"), Some("active"), Some("acme")),
        ("/internal/x", &pro, Some("route_denied"), None, None),
        ("/api/reports", &pro, None, Some("active"), Some("acme")),
    ];
    for (path, token, dry, status, tenant) in cases {
        let reply = if token.is_empty() { gw.send("GET", "h", path, &[]) } else { gw.get(path, token) };
        assert_eq!(reply.status(), 200, "{path}");
        assert_eq!(reply.header("x-license-dry-run").as_deref(), dry, "{path}");
        assert_eq!(reply.header("x-license-status").as_deref(), status, "{path}");
        assert_eq!(reply.header("x-license-tenant").as_deref(), tenant, "{path}");
    }
    let logs: Vec<String> = gw.logs().into_iter().filter(|l| l.level == 2).map(|l| l.message).collect();
    assert_eq!(
        logs,
        [
            "license-gate: dry_run: would deny GET /api/data: missing",
            "license-gate: dry_run: would deny GET /api/data: expired",
            "license-gate: dry_run: would deny GET /api/reports: feature_missing",
            "license-gate: dry_run: would deny GET /internal/x: route_denied",
        ]
    );
}

#[test]
fn dry_run_header_from_the_client_is_not_trusted() {
    let mut gw = Gateway::new(&with(config(), &["mode"], json!("dry_run")));
    let pro = mint(RS256, &claims(json!({"plan": "pro"})));
    let auth = format!("Bearer {pro}");
    let reply = gw.send("GET", "h", "/api/reports", &[("authorization", &auth), ("x-license-dry-run", "forged")]);
    assert_eq!(reply.header("x-license-dry-run"), None);
}

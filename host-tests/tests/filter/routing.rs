//! Rule selection and feature entitlements: what each route asks of a
//! request, and the exact answer when the request falls short.

use serde_json::json;

use crate::support::*;

#[test]
fn rules_and_features() {
    let mut gw = Gateway::new(&config());
    let basic = mint(RS256, &claims(json!({})));
    let pro = mint(ES256, &claims(json!({"plan": "pro"})));
    let enterprise = mint(EDDSA, &claims(json!({"plan": "enterprise"})));
    let audit_only = mint(PS256, &claims(json!({"features": "audit export"})));
    let reports_array = mint(RS256, &claims(json!({"features": ["reports"]})));
    let unknown_plan = mint(RS256, &claims(json!({"plan": "gold"})));

    struct Case<'a> {
        name: &'a str,
        method: &'a str,
        host: &'a str,
        path: &'a str,
        token: Option<&'a str>,
        status: u32,
        reason: &'a str,
        missing: &'a [&'a str],
    }
    let case = |name, method, host, path, token, status, reason, missing| Case {
        name,
        method,
        host,
        path,
        token,
        status,
        reason,
        missing,
    };
    let h = "api.example.com";
    let admin = "admin.example.com:8443";
    let cases = [
        case("open route, no token", "GET", h, "/healthz", None, 200, "", &[][..]),
        case("open route ignores a bad token", "GET", h, "/healthz/live", Some("garbage"), 200, "", &[]),
        case("reports with pro plan", "GET", h, "/api/reports/7", Some(&pro), 200, "", &[]),
        case("reports with features array", "GET", h, "/api/reports", Some(&reports_array), 200, "", &[]),
        case(
            "reports without the feature",
            "GET",
            h,
            "/api/reports",
            Some(&basic),
            403,
            "feature_missing",
            &["reports"],
        ),
        case(
            "unknown plan grants nothing",
            "GET",
            h,
            "/api/reports",
            Some(&unknown_plan),
            403,
            "feature_missing",
            &["reports"],
        ),
        case("reports rule is GET only", "POST", h, "/api/reports", Some(&basic), 200, "", &[]),
        case(
            "query string is not the path",
            "GET",
            h,
            "/api/reports?next=/healthz",
            Some(&basic),
            403,
            "feature_missing",
            &["reports"],
        ),
        case("admin any-of via inheritance", "GET", admin, "/api/admin", Some(&enterprise), 200, "", &[]),
        case("admin any-of via string features", "GET", admin, "/api/admin", Some(&audit_only), 200, "", &[]),
        case(
            "admin without sso or audit",
            "GET",
            admin,
            "/api/admin",
            Some(&pro),
            403,
            "feature_missing",
            &["sso", "audit"],
        ),
        case(
            "admin host is case-insensitive",
            "GET",
            "ADMIN.example.com",
            "/api/admin",
            Some(&pro),
            403,
            "feature_missing",
            &["sso", "audit"],
        ),
        case("admin path on another host", "GET", h, "/api/admin", Some(&pro), 200, "", &[]),
        case("admin rule is exact", "GET", admin, "/api/admin/x", Some(&pro), 200, "", &[]),
        case(
            "closed route with a valid license",
            "GET",
            h,
            "/internal/metrics",
            Some(&enterprise),
            403,
            "route_denied",
            &[],
        ),
        case("default deny", "GET", h, "/elsewhere", Some(&enterprise), 403, "route_denied", &[]),
        case("license route without token", "GET", h, "/api/data", None, 401, "missing", &[]),
    ];
    for c in cases {
        let auth = c.token.map(|t| format!("Bearer {t}"));
        let extra: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let reply = gw.send(c.method, c.host, c.path, &extra);
        assert_eq!(reply.status(), c.status, "{}: {}", c.name, reply.body());
        if c.status != 200 {
            let message = match c.reason {
                "feature_missing" => "the license does not grant the features this route requires",
                "route_denied" => "this route is closed",
                "missing" => "a license token is required",
                other => panic!("no message for {other}"),
            };
            assert_eq!(reply.body(), deny_body(c.reason, message, c.missing), "{}", c.name);
        }
    }
}

#[test]
fn deny_responses_have_the_jwt_authn_shape() {
    let mut gw = Gateway::new(&config());
    let expired = mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE - 1})));
    let basic = mint(RS256, &claims(json!({})));

    let missing = gw.send("GET", "api.example.com", "/api/data", &[]);
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="license-gate", error="invalid_request""#)
    );
    assert_eq!(missing.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(missing.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(missing.body(), deny_body("missing", "a license token is required", &[]));

    let expired = gw.get("/api/data", &expired);
    assert_eq!(expired.status(), 401);
    assert_eq!(
        expired.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="license-gate", error="invalid_token""#)
    );
    assert_eq!(expired.body(), deny_body("expired", "the license has expired", &[]));

    let forbidden = gw.get("/api/reports", &basic);
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.header("www-authenticate"), None);
    assert_eq!(forbidden.header("content-type").as_deref(), Some("application/json"));
}

#[test]
fn default_allow_and_default_require() {
    let token = mint(RS256, &claims(json!({})));
    let mut allow = Gateway::new(&with(config(), &["default"], json!("allow")));
    assert_eq!(allow.send("GET", "h", "/elsewhere", &[]).status(), 200);
    let mut require = Gateway::new(&with(config(), &["default"], json!("require")));
    assert_eq!(reason_of(&require.send("GET", "h", "/elsewhere", &[])), "missing");
    assert_eq!(require.get("/elsewhere", &token).header("x-license-status").as_deref(), Some("active"));
}

#[test]
fn token_sources_in_order() {
    let mut gw = Gateway::new(&config());
    let good = mint(RS256, &claims(json!({})));
    let expired = mint(RS256, &claims(json!({"exp": NOW - SKEW - GRACE - 1})));
    let bearer_expired = format!("Bearer {expired}");
    let basic_auth = "Basic dXNlcjpwYXNz";
    let query = format!("/api/data?a=1&license={good}");
    let cookie = format!("session=x; license={good}");
    let cases: Vec<(&str, String, Vec<(&str, &str)>, &str)> = vec![
        ("x-license header", "/api/data".into(), vec![("x-license", good.as_str())], "forwarded"),
        ("query parameter", query.clone(), vec![], "forwarded"),
        ("cookie", "/api/data".into(), vec![("cookie", cookie.as_str())], "forwarded"),
        (
            "bearer wins over x-license",
            "/api/data".into(),
            vec![("authorization", bearer_expired.as_str()), ("x-license", good.as_str())],
            "expired",
        ),
        (
            "another auth scheme is not a token",
            "/api/data".into(),
            vec![("authorization", basic_auth), ("x-license", good.as_str())],
            "forwarded",
        ),
        ("nothing anywhere", "/api/data?licence=x".into(), vec![("cookie", "lic=1")], "missing"),
    ];
    for (name, path, headers, want) in cases {
        let reply = gw.send("GET", "api.example.com", &path, &headers);
        assert_eq!(reason_of(&reply), want, "{name}");
    }
}

//! Regression tests for the ways around the gate an adversarial run found
//! (issue 9): each case is a request an attacker would send and what the
//! upstream must (or must not) receive. The same attacks run in real Envoy
//! in `envoy/tests/test_adversarial.py`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use license_gate_host_tests::{Process, Reply, Vm};
use serde_json::{Value, json};

use crate::support::*;

/// A request from raw header bytes (pseudo-headers included).
fn send_raw(gw: &mut Gateway, headers: &[(&str, &[u8])]) -> Reply {
    let pairs = headers.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
    gw.vm.request_bytes(pairs).unwrap_or_else(|e| panic!("request: {e:#}"))
}

/// Every value of a forwarded header, as bytes; panics on a local answer.
fn forwarded(reply: &Reply, name: &str) -> Vec<Vec<u8>> {
    match reply {
        Reply::Forwarded { headers } => headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect(),
        Reply::Local(r) => panic!("denied: {} {}", r.status, String::from_utf8_lossy(&r.body)),
    }
}

/// Status and reason code (`forwarded` for a request that went upstream).
fn outcome(reply: &Reply) -> (u32, String) {
    (reply.status(), reason_of(reply))
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

/// Bytes that are not UTF-8 after the `?` do not hide the path from the rules.
#[test]
fn binary_query_does_not_hide_the_path() {
    let mut gw = Gateway::new(&config());
    let basic = mint(RS256, &claims(json!({})));
    let reply = send_raw(
        &mut gw,
        &[
            (":method", b"GET"),
            (":authority", b"h"),
            (":path", b"/api/reports?x=\xff"),
            ("authorization", &bearer(&basic)),
        ],
    );
    assert_eq!(outcome(&reply), (403, "feature_missing".into()));

    let mut open = Gateway::new(&with(
        with(config(), &["default"], json!("allow")),
        &["rules"],
        json!([{"match": {"prefix": "/api/admin"}, "license": "deny"}]),
    ));
    for path in [&b"/api/admin?x=\xff"[..], b"/api/admin?\xff\xfe=1&a=b", b"/api/admin#\xff"] {
        let reply = send_raw(&mut open, &[(":method", b"GET"), (":authority", b"h"), (":path", path)]);
        assert_eq!(outcome(&reply), (403, "route_denied".into()), "{}", String::from_utf8_lossy(path));
    }
    // Other paths still go through, with the query's bytes as sent.
    let reply = send_raw(&mut open, &[(":method", b"GET"), (":authority", b"h"), (":path", b"/public?x=\xff")]);
    assert_eq!(forwarded(&reply, ":path"), [b"/public?x=\xff".to_vec()]);
}

/// A path the filter cannot read is never matched as another path.
#[test]
fn unreadable_path_fails_closed() {
    let config = with(config(), &["default"], json!("allow"));
    let mut gw =
        Gateway::new(&with(config, &["rules"], json!([{"match": {"prefix": "/api/admin"}, "license": "deny"}])));
    for headers in [
        vec![(":method", &b"GET"[..]), (":authority", b"h"), (":path", b"/api/\xffadmin")],
        vec![(":method", b"GET"), (":authority", b"h")],
        vec![(":method", b"GET"), (":authority", b"h"), (":path", b"/api/admin"), (":path", b"/public")],
    ] {
        let reply = send_raw(&mut gw, &headers);
        assert_eq!(outcome(&reply), (400, "invalid_request".into()), "{headers:?}");
        assert_eq!(
            reply.body(),
            deny_body("invalid_request", "the request's path, host or method cannot be read", &[])
        );
        assert_eq!(reply.header("www-authenticate"), None);
    }
    assert_eq!(gw.process.metric("license_gate.reason=.=invalid_request;.;denied"), Some(3));
}

/// Hosts compare in canonical form; odd hosts never open a host rule.
#[test]
fn hosts_are_canonical_and_odd_ones_fail_closed() {
    let rules = json!([
        {"match": {"host": "internal.example.com"}, "license": "deny"},
        {"match": {"host": "*.corp.example.com"}, "license": "deny"},
    ]);
    let mut gw = Gateway::new(&with(with(config(), &["default"], json!("allow")), &["rules"], rules));
    for host in [
        "internal.example.com",
        "internal.example.com.",
        "INTERNAL.example.com.:443",
        "Internal.Example.Com:80",
        "db.corp.example.com.",
        "DB.Corp.Example.Com.:8443",
    ] {
        assert_eq!(outcome(&gw.send("GET", host, "/x", &[])), (403, "route_denied".into()), "{host}");
    }
    for host in [
        "internal.example.com:80:80",
        "user@internal.example.com",
        "internal.example.com,internal.example.com",
        "internal.example.com..",
        "internal.example.com:",
        "internal .example.com",
        "",
    ] {
        assert_eq!(outcome(&gw.send("GET", host, "/x", &[])), (400, "invalid_request".into()), "{host:?}");
    }
    // Host and :authority that disagree, or a host that is not text.
    let both = [
        (":method", &b"GET"[..]),
        (":path", b"/x"),
        (":authority", b"public.example.com"),
        ("host", b"internal.example.com"),
    ];
    assert_eq!(outcome(&send_raw(&mut gw, &both)), (400, "invalid_request".into()));
    let binary = [(":method", &b"GET"[..]), (":path", b"/x"), (":authority", b"internal.example.com\xff")];
    assert_eq!(outcome(&send_raw(&mut gw, &binary)), (400, "invalid_request".into()));
    assert_eq!(outcome(&gw.send("GET", "public.example.com.", "/x", &[])), (200, "forwarded".into()));

    // Where no rule reads the host, an odd one is none of the filter's business.
    let mut no_host_rules = Gateway::new(&with(config(), &["default"], json!("allow")));
    assert_eq!(outcome(&no_host_rules.send("GET", "a:80:80", "/healthz", &[])), (200, "forwarded".into()));
}

/// RSA keys with a public exponent a forger can use, and Ed25519 keys of
/// small order, are refused at configure time with one line naming the key.
#[test]
fn forgeable_keys_are_refused() {
    let rsa = jwk(JWK_RS256);
    let ed_identity = URL_SAFE_NO_PAD.encode([1u8].iter().chain([0u8; 31].iter()).copied().collect::<Vec<u8>>());
    let cases: [(Value, &str); 3] = [
        (
            json!([{"kty": "RSA", "alg": "RS256", "kid": "e1", "n": rsa["n"], "e": "AQ"}]),
            "license-gate: config: keys.jwks.keys[0]: RSA public exponent must be odd and at least 3 (a forger could sign with this key)",
        ),
        (
            json!([{"kty": "RSA", "alg": "RS256", "kid": "e2", "n": rsa["n"], "e": "Ag"}]),
            "license-gate: config: keys.jwks.keys[0]: RSA public exponent must be odd and at least 3 (a forger could sign with this key)",
        ),
        (
            json!([{"kty": "OKP", "crv": "Ed25519", "kid": "ed0", "x": ed_identity}]),
            "license-gate: config: keys.jwks.keys[0]: Ed25519 key of small order (a forger could sign with it)",
        ),
    ];
    for (keys, want) in cases {
        let process = Process::new();
        let mut vm = Vm::start(module(), &process).unwrap_or_else(|e| panic!("vm: {e:#}"));
        let config = with(config(), &["keys", "jwks", "keys"], keys);
        let accepted = vm.configure(config.to_string().as_bytes()).unwrap_or_else(|e| panic!("configure: {e:#}"));
        let errors: Vec<String> = vm.logs().iter().filter(|l| l.level >= 4).map(|l| l.message.clone()).collect();
        assert_eq!((accepted, errors), (false, vec![want.to_string()]));
    }
}

/// Time claims that are not NumericDates are malformed, not "never expires".
#[test]
fn time_claims_out_of_range_are_malformed() {
    let mut gw = Gateway::new(&config());
    let cases: [(&str, Value); 8] = [
        ("exp 1e30", json!({"exp": 1e30})),
        ("exp 2^64", json!({"exp": 18_446_744_073_709_551_616.0})),
        ("exp negative", json!({"exp": -1})),
        ("nbf negative", json!({"nbf": -1})),
        ("nbf 1e300", json!({"nbf": 1e300})),
        ("iat string", json!({"iat": "yesterday"})),
        ("iat negative", json!({"iat": -5})),
        ("nbf string", json!({"nbf": "0"})),
    ];
    for (name, extra) in cases {
        let token = mint(RS256, &claims(extra));
        assert_eq!(outcome(&gw.get("/api/data", &token)), (401, "malformed".into()), "{name}");
    }
    // The largest NumericDate a u64 holds is fine, and so is a fraction.
    let far = mint(RS256, &claims(json!({"exp": u64::MAX, "iat": (NOW as f64) + 0.5})));
    assert_eq!(outcome(&gw.get("/api/data", &far)), (200, "forwarded".into()));
}

/// A JOSE header or a claims set that names a member twice is malformed,
/// even when correctly signed.
#[test]
fn duplicate_json_members_are_malformed() {
    let mut gw = Gateway::new(&config());
    let header = r#"{"alg":"RS256","kid":"rs1"}"#;
    let payload = claims(json!({})).to_string();
    let good = sign_raw(RS256, header, &payload);
    assert_eq!(outcome(&gw.get("/api/data", &good)), (200, "forwarded".into()));

    let dup_payload = format!(r#"{{"iss":"https://evil.example.com",{}"#, payload.trim_start_matches('{'));
    let dup_nested = payload.replacen('{', r#"{"x":{"a":1,"a":2},"#, 1);
    for token in [
        sign_raw(RS256, r#"{"alg":"RS256","kid":"rs1","kid":"rs1"}"#, &payload),
        sign_raw(RS256, r#"{"alg":"RS256","alg":"RS256","kid":"rs1"}"#, &payload),
        sign_raw(RS256, header, &dup_payload),
        sign_raw(RS256, header, &dup_nested),
    ] {
        assert_eq!(outcome(&gw.get("/api/data", &token)), (401, "malformed".into()));
    }
}

/// With `strip_token`, no copy of the token reaches the upstream, whatever
/// the route; everything else arrives byte for byte.
#[test]
fn strip_token_removes_every_copy_on_every_route() {
    let mut gw = Gateway::new(&with(config(), &["forward", "strip_token"], json!(true)));
    let token = mint(RS256, &claims(json!({"plan": "pro"})));
    let path = format!("/api/reports?a=%41&license={token}&b=\u{e9}&c");
    let cookie = format!("a=\"x y\";license={token};b=2;  c= 3");
    let headers = |path: &str| -> Vec<(String, Vec<u8>)> {
        vec![
            (":method".into(), b"GET".to_vec()),
            (":authority".into(), b"h".to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
            ("authorization".into(), bearer(&token)),
            ("x-license".into(), token.as_bytes().to_vec()),
            ("cookie".into(), cookie.as_bytes().to_vec()),
            ("cookie".into(), format!("license={token}").into_bytes()),
        ]
    };
    for route in ["/api/reports", "/healthz"] {
        let reply = gw.vm.request_bytes(headers(&path.replacen("/api/reports", route, 1))).unwrap();
        let want_path = format!("{route}?a=%41&b=\u{e9}&c");
        assert_eq!(forwarded(&reply, ":path"), [want_path.into_bytes()], "{route}");
        assert_eq!(forwarded(&reply, "authorization"), Vec::<Vec<u8>>::new(), "{route}");
        assert_eq!(forwarded(&reply, "x-license"), Vec::<Vec<u8>>::new(), "{route}");
        assert_eq!(forwarded(&reply, "cookie"), [b"a=\"x y\";b=2;  c= 3".to_vec()], "{route}");
    }
    // Another scheme in the token header is not a token: kept.
    let reply = gw.send("GET", "h", "/healthz", &[("authorization", "Basic dXNlcjpwdw==")]);
    assert_eq!(forwarded(&reply, "authorization"), [b"Basic dXNlcjpwdw==".to_vec()]);
    // Without strip_token nothing is touched.
    let mut keep = Gateway::new(&config());
    let reply = keep.vm.request_bytes(headers(&path)).unwrap();
    assert_eq!(forwarded(&reply, ":path"), [path.clone().into_bytes()]);
    assert_eq!(forwarded(&reply, "cookie").len(), 2);
}

/// A source carrying two different tokens, or one that is not text, is
/// malformed: never read as the other token or as the next source's.
#[test]
fn ambiguous_or_binary_tokens_are_malformed() {
    let mut gw = Gateway::new(&config());
    let a = mint(RS256, &claims(json!({})));
    let b = mint(ES256, &claims(json!({})));
    let base = [(":method", &b"GET"[..]), (":authority", b"h"), (":path", b"/api/data")];
    let cases: [(&str, Vec<(&str, Vec<u8>)>, (u32, &str)); 6] = [
        (
            "two tokens in one header",
            vec![("x-license", a.clone().into_bytes()), ("x-license", b.clone().into_bytes())],
            (401, "malformed"),
        ),
        (
            "the same token twice",
            vec![("x-license", a.clone().into_bytes()), ("x-license", a.clone().into_bytes())],
            (200, "forwarded"),
        ),
        (
            "binary bearer, good x-license",
            vec![("authorization", b"Bearer \xff".to_vec()), ("x-license", a.clone().into_bytes())],
            (401, "malformed"),
        ),
        ("odd-case scheme", vec![("authorization", format!("bEaReR {a}").into_bytes())], (200, "forwarded")),
        ("two license cookies", vec![("cookie", format!("license={a}; license={b}").into_bytes())], (401, "malformed")),
        ("padded token", vec![("x-license", format!("  {a}\t").into_bytes())], (200, "forwarded")),
    ];
    for (name, extra, want) in cases {
        let mut headers: Vec<(&str, &[u8])> = base.to_vec();
        headers.extend(extra.iter().map(|(n, v)| (*n, v.as_slice())));
        let reply = send_raw(&mut gw, &headers);
        assert_eq!(outcome(&reply), (want.0, want.1.to_string()), "{name}");
    }
    let query = format!("/api/data?license={a}&license={b}");
    assert_eq!(outcome(&gw.send("GET", "h", &query, &[])), (401, "malformed".into()));
}

/// `path_separated_prefix` opens a path segment, not every path that starts
/// with the same letters.
#[test]
fn separated_prefix_opens_segments_only() {
    let rules = json!([{"match": {"path_separated_prefix": "/healthz"}, "license": "none"}]);
    let mut gw = Gateway::new(&with(config(), &["rules"], rules));
    for (path, want) in [
        ("/healthz", (200, "forwarded")),
        ("/healthz/live", (200, "forwarded")),
        ("/healthz?x=1", (200, "forwarded")),
        ("/healthzadmin/secret", (403, "route_denied")),
        ("/healthz.json", (403, "route_denied")),
    ] {
        assert_eq!(outcome(&gw.send("GET", "h", path, &[])), (want.0, want.1.to_string()), "{path}");
    }
}

/// Underscore twins of the headers the filter owns never reach the
/// upstream (CGI-style apps read `x_license_tenant` as `HTTP_X_LICENSE_TENANT`).
#[test]
fn underscore_twins_of_owned_headers_are_removed() {
    let mut gw = Gateway::new(&config());
    let token = mint(RS256, &claims(json!({"tenant": "acme"})));
    let auth = format!("Bearer {token}");
    let forged =
        [("x_license_tenant", "evil"), ("X_License_Status", "active"), ("x-license_dry_run", "no"), ("x_tenant", "ok")];
    for (path, token) in [("/api/data", Some(auth.as_str())), ("/healthz", None)] {
        let mut headers: Vec<(&str, &str)> = forged.to_vec();
        if let Some(auth) = token {
            headers.push(("authorization", auth));
        }
        let reply = gw.send("GET", "h", path, &headers);
        for (name, _) in &forged[..3] {
            assert_eq!(forwarded(&reply, name), Vec::<Vec<u8>>::new(), "{path} {name}");
        }
        // Not a twin of a header the filter owns: none of its business.
        assert_eq!(forwarded(&reply, "x_tenant"), [b"ok".to_vec()], "{path}");
    }
}

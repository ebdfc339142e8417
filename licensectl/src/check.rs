//! `check`: one request decided natively by the filter's own pipeline
//! (`decide`, then `Decision::action`), with the keys and revocations a
//! gateway would have fetched, and the identity it would have read.

use std::path::PathBuf;
use std::rc::Rc;

use license_gate::binding::{Identity, IdentitySource};
use license_gate::config::Config;
use license_gate::decision::{Action, LocalResponse, Verdict, decide};
use license_gate::keys::KeySet;
use license_gate::license::{License, LicenseStatus};
use license_gate::request::{HeaderEdit, RequestHeaders, is_header_name};
use license_gate::revocation::RevocationList;
use license_gate::routes::{RouteAction, RouteKey};
use license_gate::token_source::TokenSource;
use serde::Serialize;
use serde_json::{Value, json};

use crate::keys::io_reason;
use crate::times;

/// The request and what the gateway would know beside the configuration.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub host: String,
    /// `NAME:VALUE`, as given.
    pub headers: Vec<String>,
    pub token: Option<String>,
    pub at: u64,
    pub node_id: Option<String>,
    pub node_cluster: Option<String>,
    /// `KEY=VALUE`, as given.
    pub node_metadata: Vec<String>,
    pub jwks: Option<PathBuf>,
    pub revocations: Option<PathBuf>,
}

/// What the filter did with the request.
#[derive(Debug)]
pub struct Report {
    pub outcome: &'static str,
    /// The denial (or, in dry run, the would-be denial).
    pub reason: Option<&'static str>,
    /// The local answer's status; `None` when the request goes upstream.
    pub status: Option<u32>,
    pub would_deny_status: Option<u32>,
    pub route: Value,
    pub route_text: String,
    pub identity: Option<Identity>,
    pub identity_source: Option<String>,
    pub missing: Vec<String>,
    pub license: Option<Rc<License>>,
    pub upstream: Option<Vec<(String, Vec<u8>)>>,
    pub response: Option<LocalResponse>,
    pub notes: Vec<String>,
    pub at: u64,
}

impl Report {
    /// Whether the request reaches the upstream (exit status 0).
    pub fn forwarded(&self) -> bool {
        self.upstream.is_some()
    }
}

/// Decides `request` under `config` as the filter would.
pub fn run(config: Config, request: &Request) -> Result<Report, String> {
    let Config { policy, mut runtime, remote_keys, remote_revocations, .. } = config;
    let at = request.at;
    // What a gateway that has not fetched yet lacks: said when a license is looked at.
    let mut remote_notes = Vec::new();
    // What keys.remote and revocation.remote would have fetched, in force
    // for good (a far fresh_until).
    match (&request.jwks, remote_keys.is_some()) {
        (Some(path), true) => {
            let document = read(path, "--jwks")?;
            let set = KeySet::from_jwks_document(&document, runtime.keys.allowed())
                .map_err(|e| format!("--jwks {}: license-gate would refuse this JWKS: {e}", path.display()))?;
            runtime.keys.set_remote(Rc::new(set), 1);
            runtime.keys.set_fresh_until(u64::MAX);
        }
        (Some(_), false) => {
            return Err("--jwks: the configuration has no keys.remote (inline keys go in keys.jwks or keys.pem)".into());
        }
        (None, true) => remote_notes.push(
            "keys.remote is configured and no --jwks was given: decided as before the first fetch \
             (tokens of fetched keys get keys_unavailable)"
                .to_string(),
        ),
        (None, false) => {}
    }
    match (&request.revocations, &remote_revocations) {
        (Some(path), Some(_)) => {
            let document = read(path, "--revocations")?;
            let verifier = &policy.verifier;
            let list = RevocationList::parse(&document, &runtime.keys, verifier.issuers(), at, verifier.skew())
                .map_err(|e| format!("--revocations {}: license-gate would refuse this list: {e}", path.display()))?;
            runtime.revocations.set_remote(Rc::new(list), 1);
            runtime.revocations.set_fresh_until(u64::MAX);
        }
        (Some(_), None) => {
            return Err(
                "--revocations: the configuration has no revocation.remote (fixed ids go in revocation.ids)".into()
            );
        }
        (None, Some(_)) => remote_notes.push(
            if stale_denies(&runtime, at) {
                "revocation.remote is configured with on_stale: deny and no --revocations was given: \
                 every license is refused (keys_unavailable)"
            } else {
                "revocation.remote is configured and no --revocations was given: only revocation.ids apply"
            }
            .to_string(),
        ),
        (None, None) => {}
    }
    let (identity, identity_source) = match &policy.binding {
        Some(binding) => {
            let identity = identity(&binding.identity, request)?;
            (Some(identity), Some(binding.identity.describe()))
        }
        None => (None, None),
    };
    if let Some(identity) = &identity {
        runtime.identity = identity.clone();
    }
    let pairs = request_pairs(request, policy.sources.first())?;
    let req = RequestHeaders::new(pairs.clone());
    let mut verify = |token: &str, now: u64| runtime.license(&policy, token, now).0.map(Rc::new);
    let decision = decide(&policy, &runtime.identity, &req, at, &mut verify);
    let key = RouteKey::of(&req);
    let route_action = policy.routes.action(&key);
    let mut notes = if matches!(route_action, Ok(RouteAction::Require(_))) { remote_notes } else { Vec::new() };
    let (route, route_text) = match route_action {
        Ok(RouteAction::Open) => (json!({"action": "open"}), "open: no license looked at".to_string()),
        Ok(RouteAction::Deny) => (json!({"action": "deny"}), "closed to everyone".to_string()),
        Ok(RouteAction::Require(r)) => {
            let mut text = "a valid license".to_string();
            if !r.all.is_empty() {
                text.push_str(&format!(", all of [{}]", r.all.join(", ")));
            }
            if !r.any.is_empty() {
                text.push_str(&format!(", any of [{}]", r.any.join(", ")));
            }
            (json!({"action": "require", "all": r.all, "any": r.any}), text)
        }
        Err(unreadable) => (
            json!({"action": "unreadable", "part": unreadable.0}),
            format!("cannot tell: {} cannot be read", unreadable.0),
        ),
    };
    let (outcome, reason, missing, license) = match &decision.verdict {
        Verdict::Open => ("open", None, Vec::new(), None),
        Verdict::Allowed { license, status: LicenseStatus::Active } => {
            ("allow", None, Vec::new(), Some(license.clone()))
        }
        Verdict::Allowed { license, status: LicenseStatus::Grace } => {
            ("grace", None, Vec::new(), Some(license.clone()))
        }
        Verdict::Denied { reason, missing, license } => {
            let outcome = if decision.would_deny.is_some() { "dry_run" } else { "deny" };
            (outcome, Some(reason.code()), missing.clone(), license.clone())
        }
    };
    let would_deny_status = decision.would_deny.map(|r| r.status());
    let (status, upstream, response) = match decision.action(&req, at) {
        Action::Continue(edits) => (None, Some(apply(pairs, &edits)), None),
        Action::Respond(answer) => (Some(answer.status), None, Some(answer)),
    };
    if let Verdict::Denied { reason, .. } = &decision.verdict {
        notes.extend(hint(reason.code(), request, remote_keys.is_some(), identity.as_ref()));
    }
    Ok(Report {
        outcome,
        reason,
        status,
        would_deny_status,
        route,
        route_text,
        identity,
        identity_source,
        missing,
        license,
        upstream,
        response,
        notes,
        at,
    })
}

/// Whether `revocation.on_stale: deny` refuses licenses right now (no list).
fn stale_denies(runtime: &license_gate::runtime::Runtime, at: u64) -> bool {
    runtime.revocations.check(None, at).is_err()
}

/// What to try next after a denial licensectl can explain.
fn hint(reason: &str, request: &Request, remote_keys: bool, identity: Option<&Identity>) -> Vec<String> {
    match reason {
        "missing" if request.token.is_none() => vec!["no token was given".into()],
        "keys_unavailable" if remote_keys && request.jwks.is_none() => {
            vec!["pass --jwks FILE (what keys.remote serves) to decide as a gateway that has fetched its keys".into()]
        }
        "keys_unavailable" if request.revocations.is_none() => {
            vec!["revocation.on_stale is deny: pass --revocations FILE (what revocation.remote serves)".into()]
        }
        "binding_mismatch" => match identity {
            Some(Err(why)) => vec![format!("the gateway's identity is unknown ({why})")],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The gateway's identity as the filter would read it from Envoy's node.
fn identity(source: &IdentitySource, request: &Request) -> Result<Identity, String> {
    let Some(path) = source.property() else {
        return Ok(match source {
            IdentitySource::Value(v) => Ok(v.clone()),
            IdentitySource::Property(_) => Err("not read".into()),
        });
    };
    let not_set = |option: &str| Err(format!("{} is not set; pass {option}", source.describe()));
    Ok(match path.as_slice() {
        ["xds", "node", "id"] => request.node_id.clone().map_or_else(|| not_set("--node-id ID"), Ok),
        ["xds", "node", "cluster"] => request.node_cluster.clone().map_or_else(|| not_set("--node-cluster NAME"), Ok),
        ["xds", "node", "metadata", key] => {
            let mut found = None;
            for entry in &request.node_metadata {
                let (k, v) =
                    entry.split_once('=').ok_or_else(|| format!("--node-metadata {entry}: expected KEY=VALUE"))?;
                if k == *key {
                    found = Some(v.to_string());
                }
            }
            found.map_or_else(|| not_set(&format!("--node-metadata {key}=VALUE")), Ok)
        }
        _ => Err(format!("{} cannot be given to licensectl", source.describe())),
    })
}

/// The request headers: the pseudo-headers, `--header`s, and the token in
/// the first configured source.
fn request_pairs(request: &Request, source: Option<&TokenSource>) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut path = request.path.clone();
    let mut token_header = None;
    if let Some(token) = &request.token {
        match source {
            Some(TokenSource::Header { name, prefix }) => {
                token_header = Some((name.clone(), format!("{}{token}", prefix.as_deref().unwrap_or_default())));
            }
            Some(TokenSource::Query { name }) => {
                let separator = if path.contains('?') { '&' } else { '?' };
                path = format!("{path}{separator}{name}={token}");
            }
            Some(TokenSource::Cookie { name }) => token_header = Some(("cookie".into(), format!("{name}={token}"))),
            None => return Err("the configuration names no token source".into()),
        }
    }
    let mut pairs = vec![
        (":authority".to_string(), request.host.clone().into_bytes()),
        (":path".to_string(), path.into_bytes()),
        (":method".to_string(), request.method.clone().into_bytes()),
    ];
    for header in &request.headers {
        let (name, value) = split_header(header)?;
        pairs.push((name, value.into_bytes()));
    }
    pairs.extend(token_header.map(|(n, v)| (n, v.into_bytes())));
    Ok(pairs)
}

/// `NAME:VALUE` (`:authority:x` for a pseudo-header): the name in lower
/// case, the value without leading spaces, as curl sends it.
fn split_header(text: &str) -> Result<(String, String), String> {
    let skip = usize::from(text.starts_with(':'));
    let colon = text
        .get(skip..)
        .and_then(|rest| rest.find(':'))
        .map(|i| i + skip)
        .ok_or_else(|| format!("--header {text}: expected NAME:VALUE"))?;
    let name = text.get(..colon).unwrap_or_default().to_ascii_lowercase();
    let value = text.get(colon + 1..).unwrap_or_default().trim_start().to_string();
    let plain = name.strip_prefix(':').unwrap_or(&name);
    if !is_header_name(plain) {
        return Err(format!("--header {text}: \"{name}\" is not a header name"));
    }
    Ok((name, value))
}

/// The request headers after the filter's edits, as Envoy applies them.
fn apply(mut pairs: Vec<(String, Vec<u8>)>, edits: &[HeaderEdit<'_>]) -> Vec<(String, Vec<u8>)> {
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => pairs.retain(|(n, _)| !n.eq_ignore_ascii_case(name)),
            HeaderEdit::Set(name, value) => {
                // Replaces the first value in place and drops the others.
                let mut seen = false;
                pairs.retain_mut(|(n, v)| {
                    if !n.eq_ignore_ascii_case(name) {
                        return true;
                    }
                    if seen {
                        return false;
                    }
                    seen = true;
                    *v = value.to_vec();
                    true
                });
                if !seen {
                    pairs.push((name.to_string(), value.to_vec()));
                }
            }
            HeaderEdit::Add(name, value) => pairs.push((name.to_string(), value.to_vec())),
        }
    }
    pairs
}

fn read(path: &std::path::Path, option: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{option}: cannot read {}: {}", path.display(), io_reason(&e)))
}

/// A header value for the text report: long values (tokens) shortened.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    if text.chars().count() > 100 {
        let head: String = text.chars().take(48).collect();
        format!("{head}… ({} bytes)", value.len())
    } else {
        text.into_owned()
    }
}

fn license_line(license: &License, at: u64) -> String {
    let mut parts = vec![license.license_id.clone().unwrap_or_else(|| "(no id)".into())];
    if let Some(tenant) = &license.tenant {
        parts.push(format!("tenant {tenant}"));
    }
    if let Some(plan) = &license.plan {
        parts.push(format!("plan {plan}"));
    }
    parts.push(license.status_at(at).as_str().to_string());
    parts.push(match license.expires_at {
        Some(exp) => format!("{} ({})", times::expiry(exp, at), times::rfc3339(exp)),
        None => "never expires".into(),
    });
    parts.join(", ")
}

/// The text report.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| out.push_str(&format!("{name:<10}{value}\n"));
    line("outcome:", report.outcome);
    line("reason:", report.reason.unwrap_or("-"));
    let status = match (report.status, report.would_deny_status) {
        (Some(status), _) => status.to_string(),
        (None, Some(would)) => format!("forwarded upstream (enforcement would answer {would})"),
        (None, None) => "forwarded upstream".into(),
    };
    line("status:", &status);
    line("route:", &report.route_text);
    if let (Some(identity), Some(source)) = (&report.identity, &report.identity_source) {
        let text = match identity {
            Ok(id) => format!("{id} ({source})"),
            Err(why) => format!("unknown: {why}"),
        };
        line("identity:", &text);
    }
    match &report.license {
        Some(license) => {
            line("license:", &license_line(license, report.at));
            let features: Vec<&str> = license.features.iter().map(String::as_str).collect();
            line("features:", &if features.is_empty() { "-".to_string() } else { features.join(", ") });
        }
        None => line("license:", "-"),
    }
    line("missing:", &if report.missing.is_empty() { "-".to_string() } else { report.missing.join(", ") });
    if let Some(headers) = &report.upstream {
        out.push_str("upstream request headers:\n");
        for (name, value) in headers {
            out.push_str(&format!("  {name}: {}\n", shown(value)));
        }
    }
    if let Some(response) = &report.response {
        out.push_str(&format!("response {}:\n", response.status));
        for (name, value) in &response.headers {
            out.push_str(&format!("  {name}: {value}\n"));
        }
        out.push_str(&format!("  {}\n", response.body));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// The machine report, members in reading order.
pub fn json(report: &Report) -> Result<String, String> {
    #[derive(Serialize)]
    struct Out<'a> {
        outcome: &'a str,
        reason: Option<&'a str>,
        status: Option<u32>,
        forwarded: bool,
        would_deny_status: Option<u32>,
        route: &'a Value,
        identity: Option<Value>,
        license: Option<LicenseOut<'a>>,
        missing_features: &'a [String],
        upstream_headers: Option<Vec<(&'a str, String)>>,
        response: Option<ResponseOut<'a>>,
        at: u64,
        notes: &'a [String],
    }
    #[derive(Serialize)]
    struct LicenseOut<'a> {
        id: Option<&'a str>,
        tenant: Option<&'a str>,
        plan: Option<&'a str>,
        features: Vec<&'a str>,
        status: &'static str,
        expires_at: Option<u64>,
        expires: Option<String>,
        deployments: Option<&'a [String]>,
    }
    #[derive(Serialize)]
    struct ResponseOut<'a> {
        status: u32,
        headers: Vec<(&'a str, &'a str)>,
        body: Value,
    }
    let out = Out {
        outcome: report.outcome,
        reason: report.reason,
        status: report.status,
        forwarded: report.forwarded(),
        would_deny_status: report.would_deny_status,
        route: &report.route,
        identity: report.identity.as_ref().map(|i| match i {
            Ok(id) => json!({"value": id}),
            Err(why) => json!({"error": why}),
        }),
        license: report.license.as_deref().map(|l| LicenseOut {
            id: l.license_id.as_deref(),
            tenant: l.tenant.as_deref(),
            plan: l.plan.as_deref(),
            features: l.features.iter().map(String::as_str).collect(),
            status: l.status_at(report.at).as_str(),
            expires_at: l.expires_at,
            expires: l.expires_at.map(times::rfc3339),
            deployments: l.deployments.as_deref(),
        }),
        missing_features: &report.missing,
        upstream_headers: report
            .upstream
            .as_ref()
            .map(|h| h.iter().map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v).into_owned())).collect()),
        response: report.response.as_ref().map(|r| ResponseOut {
            status: r.status,
            headers: r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
            body: serde_json::from_str(&r.body).unwrap_or_else(|_| Value::from(r.body.as_str())),
        }),
        at: report.at,
        notes: &report.notes,
    };
    serde_json::to_string_pretty(&out).map(|s| s + "\n").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn headers_from_arguments() {
        assert_eq!(split_header("X-Tenant: acme"), Ok(("x-tenant".into(), "acme".into())));
        assert_eq!(split_header(":authority:h:8080"), Ok((":authority".into(), "h:8080".into())));
        assert_eq!(split_header("a:"), Ok(("a".into(), String::new())));
        assert_eq!(split_header("nocolon"), Err("--header nocolon: expected NAME:VALUE".into()));
        assert_eq!(split_header("a b: c"), Err("--header a b: c: \"a b\" is not a header name".into()));
    }

    #[test]
    fn edits_as_envoy_applies_them() {
        let pairs =
            |p: &[(&str, &str)]| p.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect::<Vec<_>>();
        let before = pairs(&[("a", "1"), ("x-license-status", "forged"), ("a", "2"), ("b", "3")]);
        let edits = [
            HeaderEdit::Remove("b"),
            HeaderEdit::Set("a", Cow::Borrowed(b"9")),
            HeaderEdit::Set("x-license-tenant", Cow::Borrowed(b"acme")),
            HeaderEdit::Add("c", Cow::Borrowed(b"4")),
        ];
        assert_eq!(
            apply(before, &edits),
            pairs(&[("a", "9"), ("x-license-status", "forged"), ("x-license-tenant", "acme"), ("c", "4")])
        );
    }

    #[test]
    fn the_token_travels_in_the_first_source() {
        let request = Request {
            method: "GET".into(),
            path: "/a?x=1".into(),
            host: "h".into(),
            token: Some("t.t.t".into()),
            ..Request::default()
        };
        let value = |source: TokenSource| {
            request_pairs(&request, Some(&source))
                .unwrap()
                .into_iter()
                .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(&v)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            value(TokenSource::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) }),
            [":authority=h", ":path=/a?x=1", ":method=GET", "authorization=Bearer t.t.t"]
        );
        assert_eq!(value(TokenSource::Query { name: "license".into() })[1], ":path=/a?x=1&license=t.t.t");
        assert_eq!(value(TokenSource::Cookie { name: "lic".into() })[3], "cookie=lic=t.t.t");
    }

    #[test]
    fn identity_as_envoy_would_give_it() {
        let source = |path: &[&str]| IdentitySource::Property(path.iter().map(|p| p.to_string()).collect());
        let request = Request {
            node_id: Some("gw-1".into()),
            node_metadata: vec!["NAMESPACE=edge".into(), "CLUSTER_ID=eu-prod-1".into()],
            ..Request::default()
        };
        assert_eq!(identity(&source(&["xds", "node", "id"]), &request), Ok(Ok("gw-1".into())));
        assert_eq!(identity(&source(&["xds", "node", "metadata", "CLUSTER_ID"]), &request), Ok(Ok("eu-prod-1".into())));
        assert_eq!(
            identity(&source(&["xds", "node", "cluster"]), &request),
            Ok(Err("xds.node.cluster is not set; pass --node-cluster NAME".into()))
        );
        assert_eq!(identity(&IdentitySource::Value("v".into()), &request), Ok(Ok("v".into())));
        let bad = Request { node_metadata: vec!["CLUSTER_ID".into()], ..Request::default() };
        assert_eq!(
            identity(&source(&["xds", "node", "metadata", "CLUSTER_ID"]), &bad),
            Err("--node-metadata CLUSTER_ID: expected KEY=VALUE".into())
        );
    }
}

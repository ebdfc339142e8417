//! The per-request pipeline, independent of the host: pick the route, find
//! the token, verify it, check features, and say what the host must do.

use std::rc::Rc;

use crate::binding::Identity;
use crate::cache::Verified;
use crate::config::{DRY_RUN_HEADER, PLAN_HEADER, Policy, STATUS_HEADER, TENANT_HEADER};
use crate::license::{License, LicenseStatus};
use crate::reason::Reason;
use crate::request::{HeaderEdit, RequestHeaders};
use crate::routes::{RouteAction, RouteKey};
use crate::schema::Mode;
use crate::token_source::{find_token, strip_all};

/// What happened to the request, for stats and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An open route: no license looked at.
    Open,
    /// A license that grants the route, and its status at this request.
    Allowed { license: Rc<License>, status: LicenseStatus },
    /// Denied. For `feature_missing`, the valid license and what it lacked.
    Denied { reason: Reason, missing: Vec<String>, license: Option<Rc<License>> },
}

/// A deny answer, ready for `send_http_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What the host must do with the request. Header edits borrow their names
/// and values from the config, the request and the license: a forwarded
/// request allocates nothing for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Forward it upstream after these header edits, in order.
    Continue(Vec<HeaderEdit<'a>>),
    /// Answer it locally.
    Respond(LocalResponse),
}

#[derive(Debug, Clone)]
pub struct Decision<'c> {
    pub verdict: Verdict,
    /// In dry-run mode, the denial that enforcement would have made.
    pub would_deny: Option<Reason>,
    /// The policy that decided: what `action` needs to build the header edits.
    policy: &'c Policy,
}

/// Decides one request at `now` (seconds since the epoch). `verify` turns a
/// token into a license; the adapter passes the verifier, or a cache in front
/// of it.
pub fn decide<'c>(
    policy: &'c Policy,
    identity: &Identity,
    req: &RequestHeaders,
    now: u64,
    verify: &mut dyn FnMut(&str, u64) -> Verified,
) -> Decision<'c> {
    let key = RouteKey::of(req);
    let verdict = match policy.routes.action(&key) {
        // A part a rule needs cannot be read: no rule can be trusted to apply.
        Err(_) => denied(Reason::InvalidRequest),
        Ok(RouteAction::Open) => Verdict::Open,
        Ok(RouteAction::Deny) => denied(Reason::RouteDenied),
        Ok(RouteAction::Require(requirement)) => match find_token(&policy.sources, req) {
            None => denied(Reason::Missing),
            Some(found) => {
                // Length is checked before any parsing: a huge token costs nothing.
                let verified = match found {
                    Err(reason) => Err(reason),
                    Ok(token) if token.len() > policy.max_token_bytes => Err(Reason::Malformed),
                    Ok(token) => verify(&token, now),
                };
                match verified {
                    Err(reason) => denied(reason),
                    Ok(license) => {
                        let bound = match &policy.binding {
                            Some(binding) => binding.check(license.deployments.as_deref(), identity),
                            None => Ok(()),
                        };
                        let missing = requirement.missing(|f| license.has(f));
                        if let Err(reason) = bound {
                            Verdict::Denied { reason, missing: Vec::new(), license: Some(license) }
                        } else if missing.is_empty() {
                            Verdict::Allowed { status: license.status_at(now), license }
                        } else {
                            Verdict::Denied { reason: Reason::FeatureMissing, missing, license: Some(license) }
                        }
                    }
                }
            }
        },
    };
    let would_deny = match (&verdict, policy.mode) {
        (Verdict::Denied { reason, .. }, Mode::DryRun) => Some(*reason),
        _ => None,
    };
    Decision { verdict, would_deny, policy }
}

impl<'c> Decision<'c> {
    /// What the host must do: answer a denial, or forward with the headers
    /// the filter owns set from the license and the client's copies removed.
    pub fn action<'a>(&'a self, req: &'a RequestHeaders, now: u64) -> Action<'a>
    where
        'c: 'a,
    {
        let policy = self.policy;
        // No allocation up front: a denial returns before any edit, and an
        // open route usually has none.
        let mut edits = Vec::new();
        match &self.verdict {
            Verdict::Denied { reason, missing, .. } if self.would_deny.is_none() => {
                return Action::Respond(deny_response(*reason, missing));
            }
            Verdict::Denied { reason, license, .. } => {
                // A valid license lacking features still reaches the upstream
                // with its headers: dry-run must not change what upstreams see.
                if let Some(license) = license {
                    license_headers(&mut edits, policy, license, license.status_at(now));
                }
                edits.push(HeaderEdit::set_text(DRY_RUN_HEADER, reason.code()));
            }
            Verdict::Allowed { license, status } => license_headers(&mut edits, policy, license, *status),
            Verdict::Open => {}
        }
        // Every request that goes upstream loses its token, wherever it
        // travels and whichever route it takes.
        if policy.strip_token {
            strip_all(&policy.sources, req, &mut edits);
        }
        scrub(&mut edits, policy, req);
        Action::Continue(edits)
    }
}

fn denied(reason: Reason) -> Verdict {
    Verdict::Denied { reason, missing: Vec::new(), license: None }
}

/// Removes every header the filter owns that the client sent and that this
/// request does not set anyway (a set replaces the client's values), so a
/// client cannot forge them; and their underscore twins (`x_license_tenant`),
/// which CGI-style upstreams read as the same `HTTP_X_LICENSE_TENANT`. Only
/// the ones present: each edit is a host call.
fn scrub<'a>(edits: &mut Vec<HeaderEdit<'a>>, policy: &'a Policy, req: &'a RequestHeaders) {
    let mut at = 0;
    for owned in policy.owned_headers() {
        let set_here = edits.iter().any(|e| matches!(e, HeaderEdit::Set(name, _) if *name == owned));
        if !set_here && (req.has(owned) || req.is_unreadable()) {
            edits.insert(at, HeaderEdit::Remove(owned));
            at += 1;
        }
    }
    for name in req.names().filter(|n| n.contains('_')) {
        let twin = |owned: &str| {
            owned.len() == name.len()
                && owned.bytes().zip(name.bytes()).all(|(o, n)| o == n.to_ascii_lowercase() || (o == b'-' && n == b'_'))
        };
        let listed = edits.iter().any(|e| matches!(e, HeaderEdit::Remove(n) if *n == name));
        if !listed && policy.owned_headers().any(twin) {
            edits.insert(at, HeaderEdit::Remove(name));
            at += 1;
        }
    }
}

fn license_headers<'a>(
    edits: &mut Vec<HeaderEdit<'a>>,
    policy: &'a Policy,
    license: &'a License,
    status: LicenseStatus,
) {
    // The status, the forwarded headers, and room for the token strip or
    // the dry-run header: one allocation.
    edits.reserve(policy.forward.len() + 4);
    edits.push(HeaderEdit::set_text(STATUS_HEADER, status.as_str()));
    if let Some(plan) = &license.plan {
        edits.push(HeaderEdit::set_text(PLAN_HEADER, plan));
    }
    if let Some(tenant) = &license.tenant {
        edits.push(HeaderEdit::set_text(TENANT_HEADER, tenant));
    }
    for (fwd, value) in policy.forward.iter().zip(&license.forwarded) {
        if let Some(value) = value {
            edits.push(HeaderEdit::set_text(&fwd.header, value));
        }
    }
}

/// What a 503 `keys_unavailable` asks the client to wait.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The 401/403/503 JSON answer, with `WWW-Authenticate` on 401 (RFC 6750)
/// and `Retry-After` on 503.
pub fn deny_response(reason: Reason, missing: &[String]) -> LocalResponse {
    let body = serde_json::json!({
        "error": reason.code(),
        "message": reason.message(),
        "missing_features": missing,
    })
    .to_string();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("cache-control".to_string(), "no-store".to_string()),
    ];
    if let Some(error) = reason.bearer_error() {
        headers.push(("www-authenticate".to_string(), format!("Bearer realm=\"license-gate\", error=\"{error}\"")));
    }
    if reason == Reason::KeysUnavailable {
        // The fetcher retries within seconds (backoff starts at 1 s).
        headers.push(("retry-after".to_string(), RETRY_AFTER_SECONDS.to_string()));
    }
    LocalResponse { status: reason.status(), headers, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn an_unreadable_header_map_loses_every_owned_header_on_the_way_up() {
        let config = Config::from_json(
            br#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],
                 "default":"allow","forward":{"headers":{"x-license-id":"jti"}}}"#,
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let policy = &config.policy;
        let mut verify = |_: &str, _: u64| -> Verified { Err(Reason::Missing) };
        let unreadable = RequestHeaders::unreadable();
        let decision = decide(policy, &Ok("gw".into()), &unreadable, 0, &mut verify);
        let Action::Continue(edits) = decision.action(&unreadable, 0) else { unreachable!("an open default") };
        let removed: Vec<&str> =
            edits.iter().filter_map(|e| if let HeaderEdit::Remove(n) = e { Some(*n) } else { None }).collect();
        assert_eq!(
            removed,
            ["x-license-id", "x-license-status", "x-license-dry-run", "x-license-plan", "x-license-tenant"]
        );
        // A readable request without them has nothing to remove.
        let readable = RequestHeaders::new(vec![(":path".into(), b"/".to_vec())]);
        let decision = decide(policy, &Ok("gw".into()), &readable, 0, &mut verify);
        let Action::Continue(edits) = decision.action(&readable, 0) else { unreachable!("an open default") };
        assert!(edits.is_empty(), "{edits:?}");
    }
}

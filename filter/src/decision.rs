//! The per-request pipeline, independent of the host: pick the route, find
//! the token, verify it, check features, and say what the host must do.

use std::rc::Rc;

use crate::cache::Verified;
use crate::config::{Config, DRY_RUN_HEADER, Mode, STATUS_HEADER};
use crate::license::{License, LicenseStatus};
use crate::reason::Reason;
use crate::request::{HeaderEdit, RequestHeaders};
use crate::routes::{RouteAction, RouteKey};
use crate::token_source::find_token;

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

/// What the host must do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward it upstream after these header edits, in order.
    Continue(Vec<HeaderEdit>),
    /// Answer it locally.
    Respond(LocalResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub action: Action,
    /// In dry-run mode, the denial that enforcement would have made.
    pub would_deny: Option<Reason>,
}

/// Decides one request at `now` (seconds since the epoch). `verify` turns a
/// token into a license; the adapter passes the verifier, or a cache in front
/// of it.
pub fn decide(
    config: &Config,
    req: &RequestHeaders,
    now: u64,
    verify: &mut dyn FnMut(&str, u64) -> Verified,
) -> Decision {
    let key = RouteKey { path: req.path(), method: req.method(), authority: req.authority() };
    let mut found_source = None;
    let verdict = match config.routes.action(&key) {
        RouteAction::Open => Verdict::Open,
        RouteAction::Deny => denied(Reason::RouteDenied),
        RouteAction::Require(requirement) => match find_token(&config.sources, req) {
            None => denied(Reason::Missing),
            Some(found) => {
                found_source = Some(found.source);
                // Length is checked before any parsing: a huge token costs nothing.
                let verified = if found.token.len() > config.max_token_bytes {
                    Err(Reason::Malformed)
                } else {
                    verify(&found.token, now)
                };
                match verified {
                    Err(reason) => denied(reason),
                    Ok(license) => {
                        let missing = requirement.missing(|f| license.has(f));
                        if missing.is_empty() {
                            Verdict::Allowed { status: license.status_at(now), license }
                        } else {
                            Verdict::Denied { reason: Reason::FeatureMissing, missing, license: Some(license) }
                        }
                    }
                }
            }
        },
    };

    match (&verdict, config.mode) {
        (Verdict::Denied { reason, missing, .. }, Mode::Enforce) => Decision {
            action: Action::Respond(deny_response(*reason, missing)),
            would_deny: None,
            verdict,
        },
        (Verdict::Denied { reason, license, .. }, Mode::DryRun) => {
            // A valid license lacking features still reaches the upstream
            // with its headers: dry-run must not change what upstreams see.
            let mut edits = scrub(config, req);
            if let Some(license) = license {
                edits.extend(license_headers(config, license, license.status_at(now)));
            }
            edits.push(HeaderEdit::Set(DRY_RUN_HEADER.into(), reason.code().into()));
            Decision { action: Action::Continue(edits), would_deny: Some(*reason), verdict }
        }
        (Verdict::Allowed { license, status }, _) => {
            let mut edits = scrub(config, req);
            edits.extend(license_headers(config, license, *status));
            if config.strip_token
                && let Some(source) = found_source
            {
                edits.push(source.strip(req));
            }
            Decision { action: Action::Continue(edits), verdict, would_deny: None }
        }
        (Verdict::Open, _) => Decision { action: Action::Continue(scrub(config, req)), verdict, would_deny: None },
    }
}

fn denied(reason: Reason) -> Verdict {
    Verdict::Denied { reason, missing: Vec::new(), license: None }
}

/// Removes every header the filter owns that the client sent, so a client
/// cannot forge them. Only the ones present: each removal is a host call.
fn scrub(config: &Config, req: &RequestHeaders) -> Vec<HeaderEdit> {
    config
        .owned_headers()
        .filter(|h| req.has(h))
        .map(|h| HeaderEdit::Remove(h.to_string()))
        .collect()
}

fn license_headers(config: &Config, license: &License, status: LicenseStatus) -> Vec<HeaderEdit> {
    let mut edits = vec![HeaderEdit::Set(STATUS_HEADER.into(), status.as_str().into())];
    for (fwd, value) in config.forward.iter().zip(&license.forwarded) {
        if let Some(value) = value {
            edits.push(HeaderEdit::Set(fwd.header.clone(), value.clone()));
        }
    }
    edits
}

/// The 401/403 JSON answer, with `WWW-Authenticate` on 401 (RFC 6750).
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
        headers.push((
            "www-authenticate".to_string(),
            format!("Bearer realm=\"license-gate\", error=\"{error}\""),
        ));
    }
    LocalResponse { status: reason.status(), headers, body }
}

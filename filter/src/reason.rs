//! The stable reason codes a request is denied with.
//!
//! The codes are part of the product's interface: they appear in deny bodies,
//! in `x-license-dry-run`, in logs and (later) in stat names. Never rename one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// No token in any configured source.
    Missing,
    /// Not a compact JWS, bad base64/JSON, a claim of the wrong type, or too large.
    Malformed,
    /// `alg` not in the allow-list, or not the algorithm of the selected key.
    AlgNotAllowed,
    /// No key for the token's `kid` (or, without `kid`, no single key of its `alg`).
    UnknownKid,
    /// The signature does not verify with the selected key.
    BadSignature,
    /// `iss` missing or not one of the configured issuers.
    IssuerMismatch,
    /// `aud` missing or not intersecting the configured audiences.
    AudienceMismatch,
    /// `nbf` is in the future, beyond the clock skew.
    NotYetValid,
    /// `exp` is in the past, beyond the clock skew and the grace period.
    Expired,
    /// A valid license that lacks a feature the route requires.
    FeatureMissing,
    /// The route is closed to everyone (`"license": "deny"` or `"default": "deny"`).
    RouteDenied,
    /// A request part a rule needs (path, host, method) cannot be read: the
    /// filter cannot tell which rule applies, so it applies none.
    InvalidRequest,
    /// The license's id is on the revocation list.
    Revoked,
    /// The keys (or the revocation list) needed to decide are not in force:
    /// not fetched yet, or stale. Temporary: 503 with `Retry-After`.
    KeysUnavailable,
    /// The license is bound to other deployments than this gateway's (or
    /// binding is required and the license names none).
    BindingMismatch,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::AlgNotAllowed,
        Reason::UnknownKid,
        Reason::BadSignature,
        Reason::IssuerMismatch,
        Reason::AudienceMismatch,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::FeatureMissing,
        Reason::RouteDenied,
        Reason::InvalidRequest,
        Reason::Revoked,
        Reason::KeysUnavailable,
        Reason::BindingMismatch,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::UnknownKid => "unknown_kid",
            Reason::BadSignature => "bad_signature",
            Reason::IssuerMismatch => "issuer_mismatch",
            Reason::AudienceMismatch => "audience_mismatch",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::FeatureMissing => "feature_missing",
            Reason::RouteDenied => "route_denied",
            Reason::InvalidRequest => "invalid_request",
            Reason::Revoked => "revoked",
            Reason::KeysUnavailable => "keys_unavailable",
            Reason::BindingMismatch => "binding_mismatch",
        }
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// 401 when the caller has no usable license, 403 when it has one (or none
    /// would help) but is not allowed here.
    pub fn status(self) -> u32 {
        match self {
            Reason::FeatureMissing | Reason::RouteDenied | Reason::BindingMismatch => 403,
            Reason::InvalidRequest => 400,
            Reason::KeysUnavailable => 503,
            _ => 401,
        }
    }

    /// The human sentence in the deny body.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Missing => "a license token is required",
            Reason::Malformed => "the license token is malformed",
            Reason::AlgNotAllowed => "the license token's signing algorithm is not allowed",
            Reason::UnknownKid => "the license token was signed with an unknown key",
            Reason::BadSignature => "the license token's signature is invalid",
            Reason::IssuerMismatch => "the license was not issued by a trusted issuer",
            Reason::AudienceMismatch => "the license is not intended for this gateway",
            Reason::NotYetValid => "the license is not valid yet",
            Reason::Expired => "the license has expired",
            Reason::FeatureMissing => "the license does not grant the features this route requires",
            Reason::RouteDenied => "this route is closed",
            Reason::InvalidRequest => "the request's path, host or method cannot be read",
            Reason::Revoked => "the license has been revoked",
            Reason::KeysUnavailable => "the gateway cannot verify licenses right now; retry later",
            Reason::BindingMismatch => "the license is not valid for this deployment",
        }
    }

    /// The `error` parameter of `WWW-Authenticate` (RFC 6750), for 401 answers.
    pub fn bearer_error(self) -> Option<&'static str> {
        match self.status() {
            401 if self == Reason::Missing => Some("invalid_request"),
            401 => Some("invalid_token"),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn statuses_and_bearer_errors() {
        assert_eq!(Reason::Missing.status(), 401);
        assert_eq!(Reason::Missing.bearer_error(), Some("invalid_request"));
        assert_eq!(Reason::Expired.bearer_error(), Some("invalid_token"));
        assert_eq!(Reason::FeatureMissing.status(), 403);
        assert_eq!(Reason::FeatureMissing.bearer_error(), None);
        assert_eq!(Reason::RouteDenied.status(), 403);
        assert_eq!(Reason::InvalidRequest.status(), 400);
        assert_eq!(Reason::InvalidRequest.bearer_error(), None);
        assert_eq!(Reason::Revoked.status(), 401);
        assert_eq!(Reason::Revoked.bearer_error(), Some("invalid_token"));
        assert_eq!(Reason::KeysUnavailable.status(), 503);
        assert_eq!(Reason::KeysUnavailable.bearer_error(), None);
        assert_eq!(Reason::BindingMismatch.status(), 403);
    }
}

//! Token verification, the authenticator: compact JWS parsing, key
//! selection, the cheap claim checks, then the signature. Each failure maps
//! to one stable [`Reason`]. Entitlements (plans, required features,
//! binding) are policy and live elsewhere: this module only says whether a
//! token is a genuine, current license and what it claims.
//!
//! Time comes in as an argument (the host clock), never from `SystemTime`.

use std::collections::BTreeSet;
use std::str::FromStr;

use crate::crypto::Algorithm;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::keys::{Key, KeyMiss, KeyRing};
use crate::license::License;
use crate::reason::Reason;
use crate::strict_json::object_from_slice;

/// Which payload claims carry the license's attributes.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub features: String,
    pub plan: String,
    pub tenant: String,
    pub license_id: String,
    /// The deployments a license is bound to (`binding.claim`), when binding is on.
    pub deployments: Option<String>,
    /// Claims copied into upstream headers, in `forward.headers` order.
    pub forwarded: Vec<String>,
}

#[derive(Debug)]
pub struct Verifier {
    issuers: Vec<String>,
    audiences: Vec<String>,
    claims: ClaimNames,
    skew: u64,
    grace: u64,
}

/// A compact JWS split into its parts, the header parsed (strictly: no
/// duplicate members, no `crit`). Shared by licenses and revocation lists.
pub struct Jws<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    payload_b64: &'t str,
    signed: &'t [u8],
    signature_b64: &'t str,
}

impl<'t> Jws<'t> {
    pub fn parse(token: &'t str) -> Result<Jws<'t>, Reason> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Reason::Malformed);
        };
        let mut header = decode_object(header_b64)?;
        // Critical extensions (RFC 7515 §4.1.11): the filter understands none.
        if header.contains_key("crit") {
            return Err(Reason::Malformed);
        }
        let mut text = |name: &str| match header.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Reason::Malformed),
        };
        let alg = text("alg")?.ok_or(Reason::Malformed)?;
        let alg = Algorithm::from_str(&alg).map_err(|_| Reason::AlgNotAllowed)?;
        let (kid, typ) = (text("kid")?, text("typ")?);
        let signed = token.as_bytes().get(..header_b64.len() + 1 + payload_b64.len()).ok_or(Reason::Malformed)?;
        Ok(Jws { alg, kid, typ, payload_b64, signed, signature_b64 })
    }

    /// The key this JWS names, among the keys in force.
    pub fn key<'k>(&self, keys: &'k KeyRing, now: u64) -> Result<&'k Key, Reason> {
        keys.select(self.alg, self.kid.as_deref(), now).map_err(|miss| match miss {
            KeyMiss::AlgNotAllowed => Reason::AlgNotAllowed,
            KeyMiss::UnknownKid => Reason::UnknownKid,
            KeyMiss::Unavailable => Reason::KeysUnavailable,
        })
    }

    /// The payload, a JSON object with no member named twice.
    pub fn claims(&self) -> Result<Map<String, Value>, Reason> {
        decode_object(self.payload_b64)
    }

    /// Whether `key` signed it.
    pub fn signed_by(&self, key: &Key) -> Result<(), Reason> {
        let signature = URL_SAFE_NO_PAD.decode(self.signature_b64).map_err(|_| Reason::Malformed)?;
        if key.verifies(self.signed, &signature) { Ok(()) } else { Err(Reason::BadSignature) }
    }
}

impl Verifier {
    pub fn new(
        issuers: &[String],
        audiences: &[String],
        claims: ClaimNames,
        skew: u64,
        grace: u64,
    ) -> Result<Verifier, ConfigError> {
        if issuers.is_empty() {
            return Err(ConfigError::new("issuers", "must name at least one issuer"));
        }
        if let Some(i) = issuers.iter().position(String::is_empty) {
            return Err(ConfigError::new(format!("issuers[{i}]"), "must not be empty"));
        }
        if let Some(i) = audiences.iter().position(String::is_empty) {
            return Err(ConfigError::new(format!("audiences[{i}]"), "must not be empty"));
        }
        Ok(Verifier { issuers: issuers.to_vec(), audiences: audiences.to_vec(), claims, skew, grace })
    }

    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    pub fn skew(&self) -> u64 {
        self.skew
    }

    /// Verifies a compact JWS at time `now` (seconds since the epoch) with
    /// the keys in force. The license carries the token's own features; its
    /// plan is expanded by the policy.
    pub fn verify(&self, token: &str, now: u64, keys: &KeyRing) -> Result<License, Reason> {
        let jws = Jws::parse(token)?;
        let key = jws.key(keys, now)?;
        // Cheap checks before the expensive one: a stale or foreign token
        // costs no signature verification.
        let claims = jws.claims()?;
        self.check_claims(&claims, now)?;
        let license = self.license(&claims)?;
        // The signature is the last check: a result of `Ok` or `BadSignature`
        // means a verification was performed (see `signature_checked`).
        jws.signed_by(key)?;
        Ok(license)
    }

    /// Whether `verify` got as far as checking the signature.
    pub fn signature_checked(result: &Result<License, Reason>) -> bool {
        matches!(result, Ok(_) | Err(Reason::BadSignature))
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<(), Reason> {
        match claims.get("iss") {
            Some(Value::String(iss)) if self.issuers.contains(iss) => {}
            _ => return Err(Reason::IssuerMismatch),
        }
        if !self.audiences.is_empty() {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => self.audiences.contains(aud),
                Some(Value::Array(auds)) => {
                    auds.iter().any(|a| a.as_str().is_some_and(|a| self.audiences.iter().any(|x| x == a)))
                }
                _ => false,
            };
            if !ok {
                return Err(Reason::AudienceMismatch);
            }
        }
        // `iat` is not checked against the clock, but a token whose `iat`
        // is no NumericDate is not well formed either.
        numeric_date(claims, "iat")?;
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(self.skew)
        {
            return Err(Reason::NotYetValid);
        }
        // Past exp + skew but within the grace period is still valid: the
        // license's `status_at` says "grace".
        match numeric_date(claims, "exp")? {
            Some(exp) if now >= self.window(exp).1 => Err(Reason::Expired),
            _ => Ok(()),
        }
    }

    /// Until when a license expiring at `exp` is active, and until when it
    /// is accepted at all: the one place skew and grace period meet `exp`.
    fn window(&self, exp: u64) -> (u64, u64) {
        let active_until = exp.saturating_add(self.skew);
        (active_until, active_until.saturating_add(self.grace))
    }

    fn license(&self, claims: &Map<String, Value>) -> Result<License, Reason> {
        let names = &self.claims;
        let features = match claims.get(&names.features) {
            None | Some(Value::Null) => BTreeSet::new(),
            Some(Value::String(s)) => feature_set(s.split_whitespace().map(Ok))?,
            Some(Value::Array(items)) => feature_set(items.iter().map(|v| v.as_str().ok_or(Reason::Malformed)))?,
            Some(_) => return Err(Reason::Malformed),
        };
        // The plan picks features and, through `x-license-plan`, a rate
        // limiter's bucket: one that cannot be sent as a header is refused,
        // not dropped (which would put the license on the default plan).
        let plan = match claims.get(&names.plan) {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.is_empty() => None,
            Some(Value::String(p)) if !p.chars().any(char::is_control) => Some(p.clone()),
            Some(_) => return Err(Reason::Malformed),
        };
        let deployments = match names.deployments.as_ref().and_then(|name| claims.get(name)) {
            None => None,
            Some(Value::String(d)) => Some(vec![d.clone()]),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or(Reason::Malformed))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(Reason::Malformed),
        };
        // The tenant picks a rate limiter's bucket too: present but unusable
        // as a header (an object, control characters) is refused like the plan.
        let tenant = match claims.get(&names.tenant) {
            None | Some(Value::Null) => None,
            Some(value) => match header_value(value) {
                Some(text) if text.is_empty() => None,
                Some(text) => Some(text),
                None => return Err(Reason::Malformed),
            },
        };
        let exp = numeric_date(claims, "exp")?;
        let window = exp.map(|e| self.window(e));
        Ok(License {
            features,
            plan,
            tenant,
            license_id: claims.get(&names.license_id).and_then(header_value),
            expires_at: exp,
            active_until: window.map(|w| w.0),
            valid_until: window.map(|w| w.1),
            forwarded: names.forwarded.iter().map(|c| claims.get(c).and_then(header_value)).collect(),
            deployments,
        })
    }
}

/// A base64url part holding one JSON object, with no member named twice.
fn decode_object(part: &str) -> Result<Map<String, Value>, Reason> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Reason::Malformed)?;
    object_from_slice(&bytes).map_err(|_| Reason::Malformed)
}

/// 2^64: the first number of seconds a u64 cannot hold.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// A NumericDate claim in whole seconds (fractions are truncated). Anything
/// else is malformed: not a number, negative, or beyond what a u64 of
/// seconds holds (a float such as 1e30 must not read as "never expires").
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(f)) if (0.0..U64_LIMIT).contains(&f) => Ok(Some(f as u64)),
            _ => Err(Reason::Malformed),
        },
        Some(_) => Err(Reason::Malformed),
    }
}

/// The features of a license, inserted one by one: collecting into a
/// `BTreeSet` sorts a `Vec` first, one more copy of the standard library's
/// stable sort in the module (about 6 KB) for lists of a few names.
fn feature_set<'a>(names: impl Iterator<Item = Result<&'a str, Reason>>) -> Result<BTreeSet<String>, Reason> {
    let mut set = BTreeSet::new();
    for name in names {
        set.insert(name?.to_string());
    }
    Ok(set)
}

/// A claim as an upstream header value: strings as they are, numbers and
/// booleans as JSON text, arrays of those joined with commas. Anything with a
/// control character (header injection) or an object is left out.
fn header_value(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match i {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    scalar => header_value(scalar),
                })
                .collect();
            parts?.join(",")
        }
        Value::Null | Value::Object(_) => return None,
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values() {
        assert_eq!(header_value(&json!("acme")), Some("acme".into()));
        assert_eq!(header_value(&json!(42)), Some("42".into()));
        assert_eq!(header_value(&json!(["a", 1, true])), Some("a,1,true".into()));
        assert_eq!(header_value(&json!("a\r\nx-injected: 1")), None);
        assert_eq!(header_value(&json!({"a": 1})), None);
        assert_eq!(header_value(&json!([["a"]])), None);
    }

    #[test]
    fn numeric_dates() {
        let claims = json!({
            "a": 10, "b": 10.9, "c": -5, "d": "10", "e": 1e30, "f": 18446744073709551615u64,
            "g": -0.5, "h": null, "i": 0, "j": 18_446_744_073_709_549_568.0, "k": [1]
        });
        let Value::Object(mut m) = claims else { unreachable!() };
        // 2^64 as JSON text: serde_json reads it as a float.
        m.insert("l".into(), serde_json::from_str("18446744073709551616").unwrap());
        let cases = [
            ("a", Ok(Some(10))),
            ("b", Ok(Some(10))),
            ("c", Err(Reason::Malformed)),
            ("d", Err(Reason::Malformed)),
            ("e", Err(Reason::Malformed)),
            ("f", Ok(Some(u64::MAX))),
            ("g", Err(Reason::Malformed)),
            ("h", Err(Reason::Malformed)),
            ("i", Ok(Some(0))),
            ("j", Ok(Some(18_446_744_073_709_549_568))),
            ("k", Err(Reason::Malformed)),
            ("l", Err(Reason::Malformed)),
            ("zz", Ok(None)),
        ];
        for (name, want) in cases {
            assert_eq!(numeric_date(&m, name), want, "{name}");
        }
    }
}

//! Revocation: license ids the gateway no longer honours, from the
//! configuration (`revocation.ids`) and from a signed list it fetches
//! (`revocation.remote`). The list is a compact JWS signed by one of the
//! verification keys, so nobody on the path can un-revoke or mass-revoke:
//!
//! ```text
//! header  {"alg": ..., "kid": ..., "typ": "license-revocations+jwt"}
//! payload {"iss": <an issuer>, "iat": <unix s>, "next_update": <unix s>,
//!          "revoked": [{"id": "lic-123", "exp": <unix s, optional>}, ...]}
//! ```

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::rc::Rc;

use serde_json::Value;

use crate::error::ConfigError;
use crate::keys::KeyRing;
use crate::reason::Reason;
use crate::remote::{Validated, fingerprint};
use crate::schema::OnStale;
use crate::verify::{Jws, numeric_date};

/// The `typ` a revocation list must carry (a license can never pass as one).
pub const LIST_TYP: &str = "license-revocations+jwt";
/// Most ids a list (or the configuration) may hold.
pub const MAX_IDS: usize = 100_000;

/// A verified revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    pub issued_at: u64,
    pub next_update: u64,
    /// Revoked id → until when it matters (its license's `exp`), if given.
    pub ids: HashMap<String, Option<u64>>,
}

impl RevocationList {
    /// Verifies and reads a list. `issuers` are the trusted issuers;
    /// entries whose `exp` (plus `skew`) has passed are dropped: their
    /// licenses are refused as expired anyway.
    pub fn parse(document: &[u8], keys: &KeyRing, issuers: &[String], now: u64, skew: u64) -> Result<Self, String> {
        let token = std::str::from_utf8(document).map_err(|_| "not text".to_string())?.trim();
        let jws = Jws::parse(token).map_err(|r| format!("not a compact JWS ({r})"))?;
        if jws.typ.as_deref() != Some(LIST_TYP) {
            return Err(format!("typ is not \"{LIST_TYP}\""));
        }
        let key = jws.key(keys, now).map_err(|r| format!("no key to verify it ({r})"))?;
        jws.signed_by(key).map_err(|_| "bad signature".to_string())?;
        let claims = jws.claims().map_err(|_| "payload is not a JSON object".to_string())?;
        match claims.get("iss") {
            Some(Value::String(iss)) if issuers.contains(iss) => {}
            _ => return Err("iss is not a trusted issuer".into()),
        }
        let issued_at = numeric_date(&claims, "iat").ok().flatten().ok_or("iat missing or not a NumericDate")?;
        let next_update =
            numeric_date(&claims, "next_update").ok().flatten().ok_or("next_update missing or not a NumericDate")?;
        let Some(Value::Array(entries)) = claims.get("revoked") else {
            return Err("revoked is not an array".into());
        };
        if entries.len() > MAX_IDS {
            return Err(format!("{} entries, more than {MAX_IDS}", entries.len()));
        }
        let mut ids = HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (i, entry) in entries.iter().enumerate() {
            let Value::Object(entry) = entry else { return Err(format!("revoked[{i}] is not an object")) };
            let Some(Value::String(id)) = entry.get("id").filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) else {
                return Err(format!("revoked[{i}].id is not a non-empty string"));
            };
            let exp = numeric_date(entry, "exp").map_err(|_| format!("revoked[{i}].exp is not a NumericDate"))?;
            if exp.is_some_and(|exp| exp.saturating_add(skew) <= now) {
                continue;
            }
            ids.insert(id.clone(), exp);
        }
        Ok(RevocationList { issued_at, next_update, ids })
    }

    /// What the fetcher compares: the revoked ids, not the issue time (a
    /// re-issued but equal list keeps its generation and the cache).
    pub fn validated(&self) -> Validated {
        // One part per entry (`fingerprint` length-prefixes each part, so
        // id || exp reads back one way only), in sorted order: equal sets,
        // equal fingerprints, whatever the order of the document. Sorted as
        // byte strings, as `keys.rs` sorts a JWKS's keys: one copy of the
        // standard library's sort in the module.
        let mut entries: Vec<Vec<u8>> =
            self.ids.iter().map(|(id, exp)| [id.as_bytes(), &exp.unwrap_or(u64::MAX).to_le_bytes()].concat()).collect();
        entries.sort();
        let parts: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        Validated { fingerprint: fingerprint(&parts), issued_at: self.issued_at }
    }
}

/// The revocations in force in one VM.
#[derive(Debug)]
pub struct Revocations {
    inline: HashSet<String>,
    remote: Option<RemoteList>,
    on_stale: OnStale,
}

#[derive(Debug, Default)]
struct RemoteList {
    list: Option<Rc<RevocationList>>,
    generation: u64,
    stale_at: u64,
}

impl Revocations {
    pub(crate) fn compile(ids: &[String], remote_configured: bool, on_stale: OnStale) -> Result<Self, ConfigError> {
        if ids.len() > MAX_IDS {
            return Err(ConfigError::new("revocation.ids", format!("at most {MAX_IDS} ids")));
        }
        if let Some(i) = ids.iter().position(String::is_empty) {
            return Err(ConfigError::new(format!("revocation.ids[{i}]"), "must not be empty"));
        }
        Ok(Revocations {
            inline: ids.iter().cloned().collect(),
            remote: remote_configured.then(RemoteList::default),
            on_stale,
        })
    }

    /// Installs a fetched list of this generation.
    pub fn set_remote(&mut self, list: Rc<RevocationList>, generation: u64) {
        if let Some(remote) = &mut self.remote {
            remote.list = Some(list);
            remote.generation = generation;
        }
    }

    /// Until when the fetched list counts as fresh (its last fetch plus
    /// `max_stale_seconds`): `on_stale` decides what a stale one means.
    pub fn set_fresh_until(&mut self, stale_at: u64) {
        if let Some(remote) = &mut self.remote {
            remote.stale_at = stale_at;
        }
    }

    /// Ids on the fetched list (for the gauge).
    pub fn remote_len(&self) -> usize {
        self.remote.as_ref().and_then(|r| r.list.as_ref()).map_or(0, |l| l.ids.len())
    }

    /// The list in force, while fresh enough to trust.
    pub fn remote(&self, now: u64) -> Option<&RevocationList> {
        self.remote.as_ref().filter(|r| now < r.stale_at).and_then(|r| r.list.as_deref())
    }

    /// Identifies the revocations a verdict was decided under: the
    /// generation of the list, and whether it was in force.
    pub fn epoch(&self, now: u64) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.generation * 2 + u64::from(now < r.stale_at && r.list.is_some()))
    }

    /// Whether a license with this id may be used at `now`.
    pub fn check(&self, license_id: Option<&str>, now: u64) -> Result<(), Reason> {
        if let Some(remote) = &self.remote
            && self.on_stale == OnStale::Deny
            && (remote.list.is_none() || now >= remote.stale_at)
        {
            return Err(Reason::KeysUnavailable);
        }
        let Some(id) = license_id else { return Ok(()) };
        let listed = self.inline.contains(id)
            || self.remote.as_ref().and_then(|r| r.list.as_ref()).is_some_and(|l| l.ids.contains_key(id));
        if listed { Err(Reason::Revoked) } else { Ok(()) }
    }
}

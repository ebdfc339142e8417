//! Signing: licenses and revocation lists, each checked by the filter's own
//! verifier before it is handed out.

use jsonwebtoken::{Algorithm, Header};
use license_gate::revocation::{LIST_TYP, MAX_IDS, RevocationList};
use serde_json::{Map, Value};

use crate::gate::{self, ClaimNames};
use crate::keys::SigningKey;
use crate::times;

/// When a license stops: seconds after `nbf`, at a time, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    After(u64),
    At(u64),
    Never,
}

/// What a license says, as the options gave it.
#[derive(Debug, Clone, Default)]
pub struct License {
    pub iss: String,
    pub aud: Vec<String>,
    pub id: Option<String>,
    pub sub: Option<String>,
    pub features: Option<Vec<String>>,
    pub plan: Option<String>,
    pub tenant: Option<String>,
    pub deployments: Option<Vec<String>>,
    pub not_before: Option<u64>,
    pub expiry: Option<Expiry>,
    /// `--claim NAME=JSON`, as given.
    pub extra: Vec<String>,
}

/// A claims set under construction that knows which option set each claim.
struct Claims {
    map: Map<String, Value>,
    set_by: Vec<(String, String)>,
}

impl Claims {
    fn put(&mut self, name: &str, value: Value, option: &str) -> Result<(), String> {
        if let Some((_, earlier)) = self.set_by.iter().find(|(n, _)| n == name) {
            return Err(format!("the claim \"{name}\" would be set twice: by {earlier} and by {option}"));
        }
        self.set_by.push((name.to_string(), option.to_string()));
        self.map.insert(name.to_string(), value);
        Ok(())
    }
}

/// The claims of a license minted at `now`: `iat` now, `nbf` the given
/// time or now, `exp` as asked.
pub fn claims(license: &License, names: &ClaimNames, now: u64) -> Result<Map<String, Value>, String> {
    let mut claims = Claims { map: Map::new(), set_by: Vec::new() };
    if license.iss.is_empty() {
        return Err("--iss must not be empty".into());
    }
    claims.put("iss", Value::from(license.iss.as_str()), "--iss")?;
    match license.aud.as_slice() {
        [] => {}
        [one] => claims.put("aud", Value::from(one.as_str()), "--aud")?,
        many => claims.put("aud", Value::from(many.to_vec()), "--aud")?,
    }
    if let Some(sub) = &license.sub {
        claims.put("sub", Value::from(sub.as_str()), "--sub")?;
    }
    let nbf = license.not_before.unwrap_or(now);
    claims.put("iat", Value::from(now), "licensectl (the time of minting)")?;
    claims.put("nbf", Value::from(nbf), "--not-before (default: now)")?;
    let exp = match license.expiry {
        Some(Expiry::After(seconds)) => Some(nbf.checked_add(seconds).ok_or("--expires-in is too long")?),
        Some(Expiry::At(at)) => Some(at),
        Some(Expiry::Never) | None => None,
    };
    if let Some(exp) = exp {
        if exp <= nbf {
            return Err(format!(
                "the license would expire ({}) before it becomes valid ({})",
                times::rfc3339(exp),
                times::rfc3339(nbf)
            ));
        }
        let option = if matches!(license.expiry, Some(Expiry::At(_))) { "--expires-at" } else { "--expires-in" };
        claims.put("exp", Value::from(exp), option)?;
    }
    if let Some(id) = &license.id {
        if id.is_empty() {
            return Err("--id must not be empty".into());
        }
        claims.put(&names.license_id, Value::from(id.as_str()), "--id")?;
    }
    if let Some(features) = &license.features {
        if let Some(bad) = features.iter().find(|f| f.contains(char::is_whitespace)) {
            return Err(format!("--features: \"{bad}\": a feature name has no spaces"));
        }
        claims.put(&names.features, Value::from(features.clone()), "--features")?;
    }
    if let Some(plan) = &license.plan {
        claims.put(&names.plan, Value::from(plan.as_str()), "--plan")?;
    }
    if let Some(tenant) = &license.tenant {
        claims.put(&names.tenant, Value::from(tenant.as_str()), "--tenant")?;
    }
    if let Some(deployments) = &license.deployments {
        if deployments.is_empty() {
            return Err("--deployments: name at least one deployment (or * for any)".into());
        }
        claims.put(&names.deployments, Value::from(deployments.clone()), "--deployments")?;
    }
    for extra in &license.extra {
        let (name, json) = extra.split_once('=').ok_or_else(|| format!("--claim {extra}: expected NAME=JSON"))?;
        if name.is_empty() {
            return Err(format!("--claim {extra}: the claim name is empty"));
        }
        let value: Value = serde_json::from_str(json).map_err(|e| {
            format!("--claim {extra}: the value is not JSON ({e}); a string is written with quotes: {name}='\"text\"'")
        })?;
        claims.put(name, value, &format!("--claim {name}"))?;
    }
    Ok(claims.map)
}

/// Signs a license and checks it with the filter's own verifier.
pub fn sign_license(
    key: &SigningKey,
    alg: Algorithm,
    kid: &str,
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<String, String> {
    let token = sign(key, alg, kid, None, claims)?;
    let jwk = key.public().jwk(kid, alg);
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    let config = gate::verifier(&jwk, iss, names)?;
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    // Verify at a moment the license is valid: from nbf, before exp.
    let nbf = number("nbf").unwrap_or(0);
    let at = match number("exp") {
        Some(exp) => nbf.max(times::now()).min(exp.saturating_sub(1)),
        None => nbf.max(times::now()),
    };
    match config.runtime.license(&config.policy, &token, at).0 {
        Ok(_) => Ok(token),
        Err(reason) => Err(format!(
            "license-gate refuses the token licensectl made: {reason} ({}){}",
            reason.message(),
            if reason == license_gate::reason::Reason::Malformed {
                "; check the --claim values: features must be an array of strings or one string, plan a string"
            } else {
                ""
            }
        )),
    }
}

/// One entry of a revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub id: String,
    pub exp: Option<u64>,
}

/// `ID` or `ID:EXP`: EXP follows the first colon after which a TIME (RFC
/// 3339 or unix seconds) follows; without one the whole text is the id, and
/// a trailing colon (`urn:lic:7:`) says "no EXP" for an id that ends in a
/// colon and digits. An EXP that has passed at `now` is refused: gateways
/// drop such an entry, so it would revoke nothing.
pub fn parse_revoked(text: &str, now: u64) -> Result<Revoked, String> {
    let (id, exp) = match text.strip_suffix(':') {
        Some(id) => (id, None),
        None => {
            let split = text
                .match_indices(':')
                .find_map(|(i, _)| text.get(i + 1..).and_then(|rest| times::parse_time(rest).ok()).map(|exp| (i, exp)));
            match split {
                Some((i, exp)) => (text.get(..i).unwrap_or_default(), Some(exp)),
                None => (text, None),
            }
        }
    };
    if id.is_empty() {
        return Err(format!("--id {text}: the license id is empty"));
    }
    if let Some(exp) = exp
        && exp <= now
    {
        return Err(format!(
            "--id {text}: read as license \"{id}\" that {} ({}): gateways drop such an entry, \
             so it would revoke nothing (an id that ends in :DIGITS takes a final colon: {text}:)",
            times::expiry(exp, now),
            times::rfc3339(exp)
        ));
    }
    Ok(Revoked { id: id.to_string(), exp })
}

/// The payload of a revocation list issued at `now`.
pub fn revocation_claims(iss: &str, revoked: &[Revoked], now: u64, next_update: u64) -> Result<Value, String> {
    if revoked.len() > MAX_IDS {
        return Err(format!("{} ids: a list holds at most {MAX_IDS}", revoked.len()));
    }
    for (i, r) in revoked.iter().enumerate() {
        if let Some(first) = revoked.iter().take(i).position(|o| o.id == r.id) {
            return Err(format!("--id {} is given twice (entries {} and {})", r.id, first + 1, i + 1));
        }
    }
    let entries: Vec<Value> = revoked
        .iter()
        .map(|r| match r.exp {
            Some(exp) => serde_json::json!({"id": r.id, "exp": exp}),
            None => serde_json::json!({"id": r.id}),
        })
        .collect();
    Ok(serde_json::json!({
        "iss": iss,
        "iat": now,
        "next_update": now.saturating_add(next_update),
        "revoked": entries,
    }))
}

/// Signs a revocation list and reads it back as the filter's fetcher does.
pub fn sign_revocations(key: &SigningKey, alg: Algorithm, kid: &str, payload: &Value) -> Result<String, String> {
    let Value::Object(claims) = payload else { return Err("the revocation list is not an object".into()) };
    let document = sign(key, alg, kid, Some(LIST_TYP), claims)?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    let now = claims.get("iat").and_then(Value::as_u64).unwrap_or_default();
    let config = gate::verifier(&key.public().jwk(kid, alg), iss, &ClaimNames::default())?;
    RevocationList::parse(document.as_bytes(), &config.runtime.keys, &[iss.to_string()], now, 0)
        .map_err(|e| format!("license-gate refuses the list licensectl made: {e}"))?;
    Ok(document)
}

fn sign(
    key: &SigningKey,
    alg: Algorithm,
    kid: &str,
    typ: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, String> {
    if kid.is_empty() {
        return Err("--kid must not be empty".into());
    }
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    if let Some(typ) = typ {
        header.typ = Some(typ.to_string());
    }
    jsonwebtoken::encode(&header, claims, &key.encoding_key()?).map_err(|e| format!("signing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn names() -> ClaimNames {
        ClaimNames::default()
    }

    fn license() -> License {
        License { iss: "https://i".into(), expiry: Some(Expiry::After(86_400)), ..License::default() }
    }

    #[test]
    fn claims_of_a_license() {
        let mut l = license();
        l.aud = vec!["gw".into()];
        l.id = Some("lic-1".into());
        l.features = Some(vec!["a".into(), "b".into()]);
        l.plan = Some("pro".into());
        l.deployments = Some(vec!["eu-1".into()]);
        l.extra = vec!["seats=25".into(), "tier=\"gold\"".into()];
        let c = claims(&l, &names(), NOW).unwrap();
        assert_eq!(
            Value::Object(c),
            serde_json::json!({"iss": "https://i", "aud": "gw", "iat": NOW, "nbf": NOW, "exp": NOW + 86_400,
                "jti": "lic-1", "features": ["a", "b"], "plan": "pro", "deployments": ["eu-1"],
                "seats": 25, "tier": "gold"})
        );
    }

    #[test]
    fn custom_claim_names_and_times() {
        let custom = ClaimNames {
            features: "ents".into(),
            license_id: "lid".into(),
            deployments: "sites".into(),
            ..ClaimNames::default()
        };
        let mut l = license();
        l.id = Some("x".into());
        l.features = Some(vec!["a".into()]);
        l.deployments = Some(vec!["*".into()]);
        l.aud = vec!["a".into(), "b".into()];
        l.not_before = Some(NOW + 100);
        let c = claims(&l, &custom, NOW).unwrap();
        assert_eq!(c.get("lid"), Some(&Value::from("x")));
        assert_eq!(c.get("ents"), Some(&serde_json::json!(["a"])));
        assert_eq!(c.get("sites"), Some(&serde_json::json!(["*"])));
        assert_eq!(c.get("aud"), Some(&serde_json::json!(["a", "b"])));
        assert_eq!(c.get("exp"), Some(&Value::from(NOW + 100 + 86_400)));
        assert_eq!(c.get("jti"), None);
    }

    #[test]
    fn conflicts_and_bad_values() {
        let error = |edit: &dyn Fn(&mut License)| {
            let mut l = license();
            edit(&mut l);
            claims(&l, &names(), NOW).unwrap_err()
        };
        assert_eq!(
            error(&|l| l.extra = vec!["exp=1".into()]),
            "the claim \"exp\" would be set twice: by --expires-in and by --claim exp"
        );
        assert_eq!(
            error(&|l| {
                l.plan = Some("p".into());
                l.extra = vec!["plan=\"q\"".into()];
            }),
            "the claim \"plan\" would be set twice: by --plan and by --claim plan"
        );
        assert!(error(&|l| l.extra = vec!["tier=gold".into()]).starts_with("--claim tier=gold: the value is not JSON"));
        assert_eq!(error(&|l| l.extra = vec!["tier".into()]), "--claim tier: expected NAME=JSON");
        assert_eq!(
            error(&|l| l.features = Some(vec!["a b".into()])),
            "--features: \"a b\": a feature name has no spaces"
        );
        assert!(error(&|l| l.expiry = Some(Expiry::At(NOW - 5))).starts_with("the license would expire"));
        let mapped = ClaimNames { license_id: "sub".into(), ..ClaimNames::default() };
        let mut l = license();
        l.sub = Some("s".into());
        l.id = Some("i".into());
        assert_eq!(claims(&l, &mapped, NOW).unwrap_err(), "the claim \"sub\" would be set twice: by --sub and by --id");
    }

    #[test]
    fn revoked_entries() {
        let r = |t: &str| parse_revoked(t, NOW);
        assert_eq!(r("lic-1"), Ok(Revoked { id: "lic-1".into(), exp: None }));
        assert_eq!(r("lic-1:1830000000"), Ok(Revoked { id: "lic-1".into(), exp: Some(1_830_000_000) }));
        assert_eq!(r("lic-1:2027-01-31T00:00:00Z"), Ok(Revoked { id: "lic-1".into(), exp: Some(1_801_353_600) }));
        assert_eq!(r("urn:uuid:1b4e28ba-2fa1"), Ok(Revoked { id: "urn:uuid:1b4e28ba-2fa1".into(), exp: None }));
        assert_eq!(
            r("urn:lic:7:2027-01-31T00:00:00Z"),
            Ok(Revoked { id: "urn:lic:7".into(), exp: Some(1_801_353_600) })
        );
        assert_eq!(r("urn:lic:7:"), Ok(Revoked { id: "urn:lic:7".into(), exp: None }));
        let error = r("urn:lic:7").unwrap_err();
        assert!(error.starts_with("--id urn:lic:7: read as license \"urn:lic\" that expired 57 years ago"), "{error}");
        assert!(error.ends_with("takes a final colon: urn:lic:7:)"), "{error}");
        assert!(r(":5").is_err());
        let list = [Revoked { id: "a".into(), exp: None }, Revoked { id: "a".into(), exp: Some(1) }];
        assert_eq!(revocation_claims("i", &list, NOW, 60).unwrap_err(), "--id a is given twice (entries 1 and 2)");
    }

    #[test]
    fn signed_documents_pass_the_filter() {
        let key = SigningKey::generate(Algorithm::ES256, 0).unwrap();
        let c = claims(&license(), &names(), crate::times::now()).unwrap();
        let token = sign_license(&key, Algorithm::ES256, "k1", &c, &names()).unwrap();
        assert_eq!(token.split('.').count(), 3);
        let mut bad = license();
        bad.extra = vec!["features=5".into()];
        let c = claims(&bad, &names(), crate::times::now()).unwrap();
        let error = sign_license(&key, Algorithm::ES256, "k1", &c, &names()).unwrap_err();
        assert!(error.starts_with("license-gate refuses the token licensectl made: malformed"), "{error}");
        let payload =
            revocation_claims("i", &[Revoked { id: "x".into(), exp: None }], crate::times::now(), 60).unwrap();
        assert!(sign_revocations(&key, Algorithm::ES256, "k1", &payload).is_ok());
    }
}

//! The verification keys: the algorithm allow-list, inline JWKS, PEM keys and
//! (only when explicitly configured) HMAC secrets, compiled once into
//! ready-to-use verifiers selected by `kid` and `alg`.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{Algorithm, Family, KeyMaterial, Verifier};
use crate::error::ConfigError;
use crate::schema::{RawHmacSecret, RawKeys};

/// Every asymmetric algorithm (all but the three HMAC ones, listed first);
/// the allow-list when the config names none.
pub const ASYMMETRIC: &[Algorithm] = Algorithm::ALL.split_at(3).1;

/// One verification key, bound to exactly one algorithm.
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    verifier: Verifier,
}

impl Key {
    /// Checks `signature` over `message` (`base64(header).base64(payload)`).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify(message, signature)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

/// Why no key could be selected for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMiss {
    /// The algorithm is not allowed, or not the algorithm of the `kid`'s key.
    AlgNotAllowed,
    /// No key with this `kid`; or no `kid` and not exactly one key of the `alg`.
    UnknownKid,
    /// The key could only come from the remote key set, and there is none
    /// in force (not fetched yet, or stale).
    Unavailable,
}

/// A set of verification keys, each bound to one algorithm.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    /// Of the usable keys' content, for a fetched set (0 for inline keys):
    /// a re-serialised but equal JWKS keeps its generation.
    pub fingerprint: u64,
}

impl KeySet {
    /// The inline keys of the configuration (`keys.jwks`, `keys.pem`,
    /// `hmac_secrets`). Every key must be usable: a bad one is a config error.
    pub(crate) fn compile(raw: &RawKeys, hmac: &[RawHmacSecret]) -> Result<KeySet, ConfigError> {
        let mut keys = Vec::new();
        if let Some(jwks) = &raw.jwks {
            for (i, value) in jwks.keys.iter().enumerate() {
                if let Some(key) = compile_jwk(&format!("keys.jwks.keys[{i}]"), value)? {
                    keys.push(key);
                }
            }
        }
        for (i, pem) in raw.pem.iter().enumerate() {
            let field = format!("keys.pem[{i}]");
            let alg = parse_alg(&format!("{field}.alg"), &pem.alg)?;
            keys.push(compile_pem(&field, pem.kid.clone(), alg, pem.key.as_bytes())?);
        }
        for (i, secret) in hmac.iter().enumerate() {
            let field = format!("hmac_secrets[{i}]");
            keys.push(compile_hmac(&field, secret.kid.clone(), &secret.alg, &secret.secret_base64)?);
        }
        if keys.is_empty() && raw.remote.is_none() {
            return Err(ConfigError::new("keys", "no verification key configured"));
        }
        if let Some(kid) = duplicate_kid(&keys) {
            return Err(ConfigError::new("keys", format!("duplicate kid \"{kid}\"")));
        }
        // The admin named these keys: their precomputation belongs to
        // on_configure, not to the first request (fetched keys stay lazy).
        for key in &keys {
            key.verifier.prepare();
        }
        Ok(KeySet { keys, fingerprint: 0 })
    }

    /// A fetched JWKS document. Keys this gateway cannot use (another
    /// algorithm than the allowed ones, encryption keys, unsupported or
    /// forgeable keys) are left out; the document is refused when no key
    /// is left, or when two keys share a `kid`.
    pub fn from_jwks_document(bytes: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
        let doc = crate::schema::parse_jwks_document(bytes).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = Vec::new();
        let mut usable: Vec<Vec<u8>> = Vec::new();
        for value in &doc.keys {
            if let Ok(Some(key)) = compile_jwk("jwk", value)
                && allowed.contains(&key.alg)
            {
                keys.push(key);
                usable.push(serde_json::to_vec(value).unwrap_or_default());
            }
        }
        if keys.is_empty() {
            return Err("no key usable with the allowed algorithms".into());
        }
        if let Some(kid) = duplicate_kid(&keys) {
            return Err(format!("duplicate kid \"{kid}\""));
        }
        usable.sort();
        let parts: Vec<&[u8]> = usable.iter().map(Vec::as_slice).collect();
        Ok(KeySet { keys, fingerprint: crate::remote::fingerprint(&parts) })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn by_kid(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    fn of_alg(&self, alg: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.alg == alg)
    }

    /// Every key's `kid` (for logs and diagnostics).
    pub fn kids(&self) -> impl Iterator<Item = Option<&str>> {
        self.keys.iter().map(|k| k.kid.as_deref())
    }
}

fn duplicate_kid(keys: &[Key]) -> Option<&str> {
    keys.iter().enumerate().find_map(|(i, key)| {
        let kid = key.kid.as_deref()?;
        keys.iter().skip(i + 1).any(|k| k.kid.as_deref() == Some(kid)).then_some(kid)
    })
}

/// The keys in force: the inline ones (a floor that survives anything) and,
/// when `keys.remote` is configured, the last good fetched set until it goes
/// stale. One per VM; the fetcher replaces the remote set.
#[derive(Debug)]
pub struct KeyRing {
    allowed: Vec<Algorithm>,
    inline: KeySet,
    remote: Option<RemoteKeys>,
}

/// The fetched key set in force, if any.
#[derive(Debug, Default)]
struct RemoteKeys {
    set: Option<std::rc::Rc<KeySet>>,
    /// Changes exactly when the set's content does.
    generation: u64,
    /// When the set goes stale (`max_stale_seconds` after its last fetch).
    stale_at: u64,
}

impl KeyRing {
    pub fn new(allowed: Vec<Algorithm>, inline: KeySet, remote_configured: bool) -> KeyRing {
        KeyRing { allowed, inline, remote: remote_configured.then(RemoteKeys::default) }
    }

    pub fn allowed(&self) -> &[Algorithm] {
        &self.allowed
    }

    /// Identifies the keys a verdict was decided under: the remote set's
    /// generation, and whether it was in force (it goes stale by itself).
    pub fn epoch(&self, now: u64) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.generation * 2 + u64::from(now < r.stale_at && r.set.is_some()))
    }

    /// Installs a fetched key set of this generation.
    pub fn set_remote(&mut self, set: std::rc::Rc<KeySet>, generation: u64) {
        if let Some(remote) = &mut self.remote {
            remote.set = Some(set);
            remote.generation = generation;
        }
    }

    /// Until when the fetched set may be trusted (its last fetch plus
    /// `max_stale_seconds`); it is dropped from then on.
    pub fn set_fresh_until(&mut self, stale_at: u64) {
        if let Some(remote) = &mut self.remote {
            remote.stale_at = stale_at;
        }
    }

    /// The fetched set, while it is fresh enough to trust.
    pub fn remote(&self, now: u64) -> Option<&KeySet> {
        self.remote.as_ref().filter(|r| now < r.stale_at).and_then(|r| r.set.as_deref())
    }

    pub fn remote_configured(&self) -> bool {
        self.remote.is_some()
    }

    /// Picks the key for a token header: by `kid` when there is one (its key
    /// must be of the same algorithm; inline keys first), else the only key
    /// of that algorithm. A key that could only be in a remote set that is
    /// not in force is `Unavailable`, never `UnknownKid`.
    pub fn select(&self, alg: Algorithm, kid: Option<&str>, now: u64) -> Result<&Key, KeyMiss> {
        if !self.allowed.contains(&alg) {
            return Err(KeyMiss::AlgNotAllowed);
        }
        let remote = self.remote(now);
        let missing =
            if self.remote_configured() && remote.is_none() { KeyMiss::Unavailable } else { KeyMiss::UnknownKid };
        match kid {
            Some(kid) => {
                let key = self.inline.by_kid(kid).or_else(|| remote.and_then(|r| r.by_kid(kid))).ok_or(missing)?;
                if key.alg == alg { Ok(key) } else { Err(KeyMiss::AlgNotAllowed) }
            }
            None => {
                // Without a kid, a remote set that is not in force might hold
                // a second key of the algorithm: nothing can be chosen.
                if missing == KeyMiss::Unavailable {
                    return Err(missing);
                }
                let mut of_alg = self.inline.of_alg(alg).chain(remote.into_iter().flat_map(|r| r.of_alg(alg)));
                match (of_alg.next(), of_alg.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(KeyMiss::UnknownKid),
                }
            }
        }
    }
}

/// The algorithm allow-list: every asymmetric algorithm when the config names
/// none; HMAC only with explicit secrets; `none` never.
pub(crate) fn compile_algorithms(names: Option<&[String]>, has_hmac: bool) -> Result<Vec<Algorithm>, ConfigError> {
    let Some(names) = names else {
        return Ok(ASYMMETRIC.to_vec());
    };
    if names.is_empty() {
        return Err(ConfigError::new("algorithms", "must name at least one algorithm"));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let field = format!("algorithms[{i}]");
            let alg = parse_alg(&field, name)?;
            if alg.family() == Family::Hmac && !has_hmac {
                return Err(ConfigError::new(
                    field,
                    format!("{name} is a shared-secret algorithm: it needs an explicit hmac_secrets entry"),
                ));
            }
            Ok(alg)
        })
        .collect()
}

fn parse_alg(field: &str, name: &str) -> Result<Algorithm, ConfigError> {
    if name.eq_ignore_ascii_case("none") {
        return Err(ConfigError::new(field, "\"none\" is never accepted"));
    }
    Algorithm::from_str(name).map_err(|_| ConfigError::new(field, format!("unknown algorithm \"{name}\"")))
}

/// Binds key material to its algorithm, refusing keys that cannot serve
/// it. The verifier parses its key here (EC and Ed25519 points, the RSA
/// modulus), so a bad key is refused now rather than on the first request.
fn bind(field: &str, kid: Option<String>, alg: Algorithm, material: &KeyMaterial) -> Result<Key, ConfigError> {
    let verifier = Verifier::new(alg, material).map_err(|e| ConfigError::new(field, e.to_string()))?;
    Ok(Key { kid, alg, verifier })
}

fn compile_pem(field: &str, kid: Option<String>, alg: Algorithm, pem: &[u8]) -> Result<Key, ConfigError> {
    if alg.family() == Family::Hmac {
        return Err(ConfigError::new(format!("{field}.alg"), "shared-secret algorithms belong in hmac_secrets"));
    }
    let key = decode_public_pem(pem)
        .map_err(|e| ConfigError::new(format!("{field}.key"), format!("not a {alg:?} public key in PEM: {e}")))?;
    bind(&format!("{field}.key"), kid, alg, &key)
}

/// Object identifiers of the SPKI algorithms license-gate verifies with.
const RSA_ENCRYPTION: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.101.112");

/// A PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo: RSA, EC, Ed25519)
/// or `RSA PUBLIC KEY` (PKCS#1). The key's family comes from the key itself;
/// `bind` then refuses a family that does not fit the configured `alg`.
fn decode_public_pem(pem: &[u8]) -> Result<KeyMaterial, String> {
    use spki::der::Decode;
    let (label, der) = pem_rfc7468::decode_vec(pem).map_err(|e| e.to_string())?;
    match label {
        "RSA PUBLIC KEY" => KeyMaterial::rsa_from_pkcs1_der(&der),
        "PUBLIC KEY" => {
            let info = spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(|e| e.to_string())?;
            let bits = info.subject_public_key.as_bytes().ok_or("the key's bit string is not whole bytes")?;
            match info.algorithm.oid {
                RSA_ENCRYPTION => KeyMaterial::rsa_from_pkcs1_der(bits),
                EC_PUBLIC_KEY => Ok(KeyMaterial::Ec(bits.to_vec())),
                ED25519 => Ok(KeyMaterial::Ed(bits.to_vec())),
                oid => Err(format!("unsupported key algorithm {oid}")),
            }
        }
        other => Err(format!("a \"{other}\" block; expected \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"")),
    }
}

/// A JWK becomes a key, or `None` for an encryption key that has no business
/// verifying signatures. Its `alg` may be left out where the key type fixes it.
fn compile_jwk(field: &str, value: &serde_json::Value) -> Result<Option<Key>, ConfigError> {
    const INCOMPLETE: &str = "not a usable public key (RSA needs n and e, EC needs crv, x and y, OKP needs crv and x)";
    let jwk = crate::schema::parse_jwk(value).map_err(|e| ConfigError::new(field, format!("not a JWK: {e}")))?;
    if jwk.public_key_use.as_deref() == Some("enc") {
        return Ok(None);
    }
    // Base64url without padding (RFC 7515 §2), as every JWK member is.
    let member = |name: &str, value: &Option<String>| -> Result<Vec<u8>, ConfigError> {
        let text = value.as_deref().ok_or_else(|| ConfigError::new(field, INCOMPLETE))?;
        URL_SAFE_NO_PAD.decode(text).map_err(|_| ConfigError::new(format!("{field}.{name}"), "not base64url"))
    };
    let unsupported_curve = || ConfigError::new(format!("{field}.crv"), "unsupported curve");
    let (material, inferred) = match jwk.kty.as_str() {
        "RSA" => (KeyMaterial::Rsa { n: member("n", &jwk.n)?, e: member("e", &jwk.e)? }, None),
        "EC" => {
            let crv = jwk.crv.as_deref().ok_or_else(|| ConfigError::new(field, INCOMPLETE))?;
            let (alg, size) = match crv {
                "P-256" => (Algorithm::ES256, 32),
                "P-384" => (Algorithm::ES384, 48),
                _ => return Err(unsupported_curve()),
            };
            // Each coordinate is exactly the field's size (RFC 7518 §6.2.1.2):
            // one with a byte lost or added would shift the other.
            let mut point = vec![0x04];
            for (name, value) in [("x", &jwk.x), ("y", &jwk.y)] {
                let coordinate = member(name, value)?;
                if coordinate.len() != size {
                    return Err(ConfigError::new(format!("{field}.{name}"), format!("must be {size} bytes for {crv}")));
                }
                point.extend(coordinate);
            }
            (KeyMaterial::Ec(point), Some(alg))
        }
        "OKP" => match jwk.crv.as_deref().ok_or_else(|| ConfigError::new(field, INCOMPLETE))? {
            "Ed25519" => (KeyMaterial::Ed(member("x", &jwk.x)?), Some(Algorithm::EdDSA)),
            _ => return Err(unsupported_curve()),
        },
        "oct" => return Err(ConfigError::new(field, "symmetric (oct) keys belong in hmac_secrets")),
        other => return Err(ConfigError::new(format!("{field}.kty"), format!("unsupported key type \"{other}\""))),
    };
    let alg = match (jwk.alg.as_deref(), inferred) {
        (Some(named), inferred) => {
            let alg = Algorithm::from_str(named)
                .map_err(|_| ConfigError::new(format!("{field}.alg"), "not a signature algorithm"))?;
            if inferred.is_some_and(|i| i != alg) {
                return Err(ConfigError::new(format!("{field}.alg"), "does not fit the key's curve"));
            }
            alg
        }
        (None, Some(inferred)) => inferred,
        (None, None) => {
            return Err(ConfigError::new(format!("{field}.alg"), "required for RSA keys"));
        }
    };
    bind(field, jwk.kid, alg, &material).map(Some)
}

fn compile_hmac(field: &str, kid: Option<String>, alg: &str, secret: &str) -> Result<Key, ConfigError> {
    let alg = parse_alg(&format!("{field}.alg"), alg)?;
    let min_len = match alg {
        Algorithm::HS256 => 32,
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => return Err(ConfigError::new(format!("{field}.alg"), "not an HMAC algorithm")),
    };
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(secret.trim_end_matches('='))
        .map_err(|_| ConfigError::new(format!("{field}.secret_base64"), "not base64"))?;
    if bytes.len() < min_len {
        return Err(ConfigError::new(
            format!("{field}.secret_base64"),
            format!("{alg:?} needs a secret of at least {min_len} bytes"),
        ));
    }
    bind(field, kid, alg, &KeyMaterial::Secret(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../host-tests/testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn family(pem: &str) -> Result<Family, String> {
        decode_public_pem(pem.as_bytes()).map(|k| k.family())
    }

    #[test]
    fn public_pem_blocks() {
        use spki::der::Decode;
        assert_eq!(family(&key_file("rsa.pub.pem")), Ok(Family::Rsa));
        assert_eq!(family(&key_file("p256.pub.pem")), Ok(Family::Ec));
        assert_eq!(family(&key_file("p384.pub.pem")), Ok(Family::Ec));
        assert_eq!(family(&key_file("ed25519.pub.pem")), Ok(Family::Ed));
        // PKCS#1 "RSA PUBLIC KEY": the SPKI's inner key, relabelled.
        let (_, der) = pem_rfc7468::decode_vec(key_file("rsa.pub.pem").as_bytes()).unwrap();
        let info = spki::SubjectPublicKeyInfoRef::from_der(&der).unwrap();
        let pkcs1 = info.subject_public_key.as_bytes().unwrap();
        let pem = pem_rfc7468::encode_string("RSA PUBLIC KEY", pem_rfc7468::LineEnding::LF, pkcs1).unwrap();
        let key = decode_public_pem(pem.as_bytes()).unwrap();
        assert!(bind("k", None, Algorithm::RS256, &key).is_ok());
        // Private keys, certificates and garbage are refused with a reason.
        assert!(family(&key_file("rsa.key.pem")).unwrap_err().contains("PRIVATE KEY"));
        assert!(family("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(family("not a pem").is_err());
        let truncated = key_file("p256.pub.pem").replacen("MFkw", "MFkx", 1);
        assert!(family(&truncated).is_err());
    }

    #[test]
    fn a_pem_key_must_fit_its_algorithm() {
        let key = |name: &str| decode_public_pem(key_file(name).as_bytes()).unwrap();
        assert!(bind("k", None, Algorithm::ES256, &key("p256.pub.pem")).is_ok());
        assert!(bind("k", None, Algorithm::EdDSA, &key("ed25519.pub.pem")).is_ok());
        // The same keys' points compressed (as `openssl ec -conv_form compressed` writes them).
        for (alg, name) in [(Algorithm::ES256, "p256.pub.pem"), (Algorithm::ES384, "p384.pub.pem")] {
            let KeyMaterial::Ec(point) = key(name) else { panic!("{name}: not an EC key") };
            let (x, y) = point[1..].split_at((point.len() - 1) / 2);
            let mut compressed = vec![2 + (y[y.len() - 1] & 1)];
            compressed.extend_from_slice(x);
            let bound = bind("k", None, alg, &KeyMaterial::Ec(compressed.clone()));
            assert!(bound.is_ok(), "{name} compressed");
            let other = if alg == Algorithm::ES256 { Algorithm::ES384 } else { Algorithm::ES256 };
            let error = bind("k", None, other, &KeyMaterial::Ec(compressed)).err().map(|e| e.to_string());
            assert_eq!(error, Some(format!("license-gate: config: k: key curve does not fit {other:?}")));
        }
        for (alg, name, message) in [
            (Algorithm::RS256, "p256.pub.pem", "key type does not fit RS256"),
            (Algorithm::ES256, "rsa.pub.pem", "key type does not fit ES256"),
            (Algorithm::ES384, "p256.pub.pem", "key curve does not fit ES384"),
            (Algorithm::EdDSA, "p256.pub.pem", "key type does not fit EdDSA"),
        ] {
            let error = bind("k", None, alg, &key(name)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.ends_with(message), "{alg:?} {name}: {error}");
        }
    }

    /// The JWK of a PEM public key, with `extra` members added.
    fn jwk_of(name: &str, extra: serde_json::Value) -> serde_json::Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = match decode_public_pem(key_file(name).as_bytes()).unwrap() {
            KeyMaterial::Rsa { n, e } => serde_json::json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)}),
            KeyMaterial::Ec(point) => {
                let (x, y) = point[1..].split_at((point.len() - 1) / 2);
                let crv = if x.len() == 32 { "P-256" } else { "P-384" };
                serde_json::json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
            }
            KeyMaterial::Ed(x) => serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x)}),
            KeyMaterial::Secret(_) => unreachable!(),
        };
        for (k, v) in extra.as_object().unwrap() {
            jwk[k] = v.clone();
        }
        jwk
    }

    #[test]
    fn jwks_of_every_key_type_verify_what_their_private_keys_sign() {
        use jsonwebtoken::EncodingKey;
        for (public, private, alg, extra) in [
            ("rsa.pub.pem", "rsa.key.pem", Algorithm::PS384, serde_json::json!({"alg": "PS384", "kid": "r"})),
            ("p256.pub.pem", "p256.key.pem", Algorithm::ES256, serde_json::json!({"use": "sig"})),
            (
                "p384.pub.pem",
                "p384.key.pem",
                Algorithm::ES384,
                serde_json::json!({"x5c": ["MIIB"], "key_ops": ["verify"]}),
            ),
            ("ed25519.pub.pem", "ed25519.key.pem", Algorithm::EdDSA, serde_json::json!({"alg": "EdDSA"})),
        ] {
            let key = compile_jwk("k", &jwk_of(public, extra.clone())).unwrap().unwrap();
            assert_eq!((key.alg, key.kid.as_deref()), (alg, extra.get("kid").and_then(|k| k.as_str())));
            let pem = key_file(private);
            let signing = match alg.family() {
                Family::Rsa => EncodingKey::from_rsa_pem(pem.as_bytes()),
                Family::Ec => EncodingKey::from_ec_pem(pem.as_bytes()),
                _ => EncodingKey::from_ed_pem(pem.as_bytes()),
            }
            .unwrap();
            let jwt_alg: jsonwebtoken::Algorithm = alg.name().parse().unwrap();
            let signature = jsonwebtoken::crypto::sign(b"h.p", &signing, jwt_alg).unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            assert!(key.verifies(b"h.p", &signature), "{alg:?}");
            assert!(!key.verifies(b"h.q", &signature), "{alg:?}");
        }
    }

    #[test]
    fn the_default_allow_list_is_every_asymmetric_algorithm() {
        assert_eq!(ASYMMETRIC.len(), 9);
        assert!(ASYMMETRIC.iter().all(|alg| alg.family() != Family::Hmac));
    }

    #[test]
    fn jwk_errors_name_the_member() {
        let error = |jwk: serde_json::Value| compile_jwk("k", &jwk).err().map(|e| e.to_string()).unwrap_or_default();
        let rsa = |extra| jwk_of("rsa.pub.pem", extra);
        let p256 = |extra| jwk_of("p256.pub.pem", extra);
        let cases = [
            (
                serde_json::json!({"kty": "RSA", "kid": "x"}),
                "k: not a usable public key (RSA needs n and e, EC needs crv, x and y, OKP needs crv and x)",
            ),
            (rsa(serde_json::json!({})), "k.alg: required for RSA keys"),
            (rsa(serde_json::json!({"alg": "RSA-OAEP"})), "k.alg: not a signature algorithm"),
            (rsa(serde_json::json!({"alg": "rs256"})), "k.alg: not a signature algorithm"),
            (rsa(serde_json::json!({"alg": "HS256"})), "k: key type does not fit HS256"),
            (rsa(serde_json::json!({"alg": "RS256", "n": "a+b/"})), "k.n: not base64url"),
            (p256(serde_json::json!({"alg": "ES384"})), "k.alg: does not fit the key's curve"),
            (p256(serde_json::json!({"crv": "P-521"})), "k.crv: unsupported curve"),
            (p256(serde_json::json!({"crv": "P-384"})), "k.x: must be 48 bytes for P-384"),
            (p256(serde_json::json!({"x": "AAAA"})), "k.x: must be 32 bytes for P-256"),
            (p256(serde_json::json!({"y": URL_SAFE_NO_PAD.encode([1u8; 33])})), "k.y: must be 32 bytes for P-256"),
            (serde_json::json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"}), "k.crv: unsupported curve"),
            (serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}), "k: symmetric (oct) keys belong in hmac_secrets"),
            (serde_json::json!({"kty": "RSA-X"}), "k.kty: unsupported key type \"RSA-X\""),
            (serde_json::json!({"n": "AQAB"}), "k: not a JWK: missing field `kty`"),
            (serde_json::json!({"kty": "EC", "crv": 1}), "k: not a JWK: invalid type: integer `1`, expected a string"),
        ];
        for (jwk, message) in cases {
            assert_eq!(error(jwk.clone()), format!("license-gate: config: {message}"), "{jwk}");
        }
        // An encryption key is left out, not refused.
        assert!(compile_jwk("k", &rsa(serde_json::json!({"use": "enc"}))).unwrap().is_none());
    }

    #[test]
    fn forgeable_keys_are_refused() {
        let KeyMaterial::Rsa { n, .. } = decode_public_pem(key_file("rsa.pub.pem").as_bytes()).unwrap() else {
            panic!("not an RSA key")
        };
        let exponent_msg = "RSA public exponent must be odd and at least 3 (a forger could sign with this key)";
        for e in [&[1u8][..], &[0, 1], &[2], &[0x01, 0x00, 0x00]] {
            let jwk = serde_json::json!({"kty": "RSA", "alg": "RS256", "kid": "weak",
                "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(e)});
            let error = compile_jwk("keys.jwks.keys[0]", &jwk).err().map(|e| e.to_string());
            assert_eq!(error, Some(format!("license-gate: config: keys.jwks.keys[0]: {exponent_msg}")), "e = {e:?}");
        }
        // Ed25519 points of small order: the identity, and points of order 2, 4 and 8.
        for hex in [
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        ] {
            let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
            let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&bytes)});
            let error = compile_jwk("k", &jwk).err().map(|e| e.to_string());
            assert_eq!(
                error.as_deref(),
                Some("license-gate: config: k: Ed25519 key of small order (a forger could sign with it)"),
                "{hex}"
            );
        }
    }
}

//! The verification keys: the algorithm allow-list, inline JWKS, PEM keys and
//! (only when explicitly configured) HMAC secrets, compiled once into
//! ready-to-use verifiers selected by `kid` and `alg`.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use jsonwebtoken::crypto::JwtVerifier;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use crate::error::ConfigError;
use crate::schema::{RawHmacSecret, RawKeys};

/// Every asymmetric algorithm; the allow-list when the config names none.
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One verification key, bound to exactly one algorithm.
pub struct Key {
    pub kid: Option<String>,
    pub alg: Algorithm,
    verifier: Box<dyn JwtVerifier>,
}

impl Key {
    /// Checks `signature` over `message` (`base64(header).base64(payload)`).
    pub fn verifies(&self, message: &[u8], signature: &Vec<u8>) -> bool {
        self.verifier.verify(message, signature).is_ok()
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
            crate::crypto::prepare(key.alg, key.verifier.as_ref());
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
            if alg.family() == AlgorithmFamily::Hmac && !has_hmac {
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

/// Binds a decoded key to its algorithm, refusing keys that cannot serve it.
fn bind(field: &str, kid: Option<String>, alg: Algorithm, key: DecodingKey) -> Result<Key, ConfigError> {
    if key.family() != alg.family() {
        return Err(ConfigError::new(field, format!("key type does not fit {alg:?}")));
    }
    match key.family() {
        AlgorithmFamily::Rsa => check_rsa(field, &key)?,
        AlgorithmFamily::Ed => {
            let bytes = key.try_get_as_bytes().unwrap_or_default();
            crate::crypto::ed25519_key(bytes).map_err(|e| ConfigError::new(field, e))?;
        }
        AlgorithmFamily::Ec => {
            // An uncompressed SEC1 point: 1 + 2 * 32 bytes on P-256, 1 + 2 * 48 on P-384.
            let want = if alg == Algorithm::ES256 { 65 } else { 97 };
            let len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
            if len != want {
                return Err(ConfigError::new(field, format!("key curve does not fit {alg:?}")));
            }
        }
        _ => {}
    }
    // The verifiers parse their key here (EC and Ed25519 points, the RSA
    // modulus), so a bad key is refused now rather than on the first request.
    let verifier = (crate::crypto::PROVIDER.verifier_factory)(&alg, &key)
        .map_err(|e| ConfigError::new(field, format!("unusable key for {alg:?}: {e}")))?;
    Ok(Key { kid, alg, verifier })
}

/// Size and shape checks with a message an admin can act on.
fn check_rsa(field: &str, key: &DecodingKey) -> Result<(), ConfigError> {
    let (n, e) = crate::crypto::rsa_components(key).ok_or_else(|| ConfigError::new(field, "unparsable RSA key"))?;
    crate::crypto::rsa::RsaKey::new(&n, &e).map(|_| ()).map_err(|e| ConfigError::new(field, e.to_string()))
}

fn compile_pem(field: &str, kid: Option<String>, alg: Algorithm, pem: &[u8]) -> Result<Key, ConfigError> {
    if alg.family() == AlgorithmFamily::Hmac {
        return Err(ConfigError::new(format!("{field}.alg"), "shared-secret algorithms belong in hmac_secrets"));
    }
    let key = decode_public_pem(pem)
        .map_err(|e| ConfigError::new(format!("{field}.key"), format!("not a {alg:?} public key in PEM: {e}")))?;
    bind(&format!("{field}.key"), kid, alg, key)
}

/// Object identifiers of the SPKI algorithms license-gate verifies with.
const RSA_ENCRYPTION: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.101.112");

/// A PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo: RSA, EC, Ed25519)
/// or `RSA PUBLIC KEY` (PKCS#1). The key's family comes from the key itself;
/// `bind` then refuses a family that does not fit the configured `alg`.
fn decode_public_pem(pem: &[u8]) -> Result<DecodingKey, String> {
    use spki::der::Decode;
    let (label, der) = pem_rfc7468::decode_vec(pem).map_err(|e| e.to_string())?;
    match label {
        "RSA PUBLIC KEY" => Ok(DecodingKey::from_rsa_der(&der)),
        "PUBLIC KEY" => {
            let info = spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(|e| e.to_string())?;
            let bits = info.subject_public_key.as_bytes().ok_or("the key's bit string is not whole bytes")?;
            match info.algorithm.oid {
                RSA_ENCRYPTION => Ok(DecodingKey::from_rsa_der(bits)),
                EC_PUBLIC_KEY => Ok(DecodingKey::from_ec_der(bits)),
                ED25519 => Ok(DecodingKey::from_ed_der(bits)),
                oid => Err(format!("unsupported key algorithm {oid}")),
            }
        }
        other => Err(format!("a \"{other}\" block; expected \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"")),
    }
}

/// A JWK becomes a key, or `None` for an encryption key that has no business
/// verifying signatures. Its `alg` may be left out where the key type fixes it.
fn compile_jwk(field: &str, value: &serde_json::Value) -> Result<Option<Key>, ConfigError> {
    let jwk: Jwk =
        serde_json::from_value(value.clone()).map_err(|e| ConfigError::new(field, format!("not a JWK: {e}")))?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Ok(None);
    }
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) => {
            return Err(ConfigError::new(field, "symmetric (oct) keys belong in hmac_secrets"));
        }
        AlgorithmParameters::RSA(_) => None,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => return Err(ConfigError::new(format!("{field}.crv"), "unsupported curve")),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => Some(Algorithm::EdDSA),
            _ => return Err(ConfigError::new(format!("{field}.crv"), "unsupported curve")),
        },
        _ => {
            return Err(ConfigError::new(
                field,
                "not a usable public key (RSA needs n and e, EC needs crv, x and y, OKP needs crv and x)",
            ));
        }
    };
    let alg = match (jwk.common.key_algorithm, inferred) {
        (Some(named), inferred) => {
            let alg = Algorithm::try_from(named)
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
    let key =
        DecodingKey::from_jwk(&jwk).map_err(|e| ConfigError::new(field, format!("unparsable key material: {e}")))?;
    bind(field, jwk.common.key_id.clone(), alg, key).map(Some)
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
    bind(field, kid, alg, DecodingKey::from_secret(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../host-tests/testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn family(pem: &str) -> Result<AlgorithmFamily, String> {
        decode_public_pem(pem.as_bytes()).map(|k| k.family())
    }

    #[test]
    fn public_pem_blocks() {
        use spki::der::Decode;
        assert_eq!(family(&key_file("rsa.pub.pem")), Ok(AlgorithmFamily::Rsa));
        assert_eq!(family(&key_file("p256.pub.pem")), Ok(AlgorithmFamily::Ec));
        assert_eq!(family(&key_file("p384.pub.pem")), Ok(AlgorithmFamily::Ec));
        assert_eq!(family(&key_file("ed25519.pub.pem")), Ok(AlgorithmFamily::Ed));
        // PKCS#1 "RSA PUBLIC KEY": the SPKI's inner key, relabelled.
        let (_, der) = pem_rfc7468::decode_vec(key_file("rsa.pub.pem").as_bytes()).unwrap();
        let info = spki::SubjectPublicKeyInfoRef::from_der(&der).unwrap();
        let pkcs1 = info.subject_public_key.as_bytes().unwrap();
        let pem = pem_rfc7468::encode_string("RSA PUBLIC KEY", pem_rfc7468::LineEnding::LF, pkcs1).unwrap();
        let key = decode_public_pem(pem.as_bytes()).unwrap();
        assert!(bind("k", None, Algorithm::RS256, key).is_ok());
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
        assert!(bind("k", None, Algorithm::ES256, key("p256.pub.pem")).is_ok());
        assert!(bind("k", None, Algorithm::EdDSA, key("ed25519.pub.pem")).is_ok());
        for (alg, name, message) in [
            (Algorithm::RS256, "p256.pub.pem", "key type does not fit RS256"),
            (Algorithm::ES256, "rsa.pub.pem", "key type does not fit ES256"),
            (Algorithm::ES384, "p256.pub.pem", "key curve does not fit ES384"),
            (Algorithm::EdDSA, "p256.pub.pem", "key type does not fit EdDSA"),
        ] {
            let error = bind("k", None, alg, key(name)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.ends_with(message), "{alg:?} {name}: {error}");
        }
    }

    #[test]
    fn forgeable_keys_are_refused() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let rsa = decode_public_pem(key_file("rsa.pub.pem").as_bytes()).unwrap();
        let (n, _) = crate::crypto::rsa_components(&rsa).unwrap();
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

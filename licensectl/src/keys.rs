//! Signing keys and their public halves: generation (RustCrypto, OsRng),
//! PEM files (PKCS#8 and SPKI; PKCS#1 and SEC1 read too), JWKs, and the
//! algorithm each key signs with.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::OsRng;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use spki::der::Decode;
use spki::{DecodePublicKey, EncodePublicKey};

/// Object identifiers of the key algorithms license-gate verifies with.
const RSA_ENCRYPTION: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.101.112");
const SECP256R1: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.132.0.34");

pub const RSA_ALGORITHMS: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];

/// An algorithm's JOSE name (`RS256`, `EdDSA`).
pub fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

/// A private key license-gate's algorithms can sign with.
pub enum SigningKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A public key, from a public or a private key file.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl SigningKey {
    /// A new key for `alg` (`bits` for RSA), from the operating system's RNG.
    pub fn generate(alg: Algorithm, bits: usize) -> Result<SigningKey, String> {
        Ok(match alg {
            Algorithm::ES256 => SigningKey::P256(p256::SecretKey::random(&mut OsRng)),
            Algorithm::ES384 => SigningKey::P384(p384::SecretKey::random(&mut OsRng)),
            Algorithm::EdDSA => SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(&mut OsRng))),
            alg if RSA_ALGORITHMS.contains(&alg) => SigningKey::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| format!("RSA key generation failed: {e}"))?,
            )),
            alg => return Err(format!("{alg:?} is not an algorithm licensectl makes keys for")),
        })
    }

    pub fn public(&self) -> PublicKey {
        match self {
            SigningKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            SigningKey::P256(k) => PublicKey::P256(k.public_key()),
            SigningKey::P384(k) => PublicKey::P384(k.public_key()),
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// The PKCS#8 PEM (`PRIVATE KEY`) of the key.
    pub fn to_pkcs8_pem(&self) -> Result<pkcs8::der::zeroize::Zeroizing<String>, String> {
        match self {
            SigningKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| format!("cannot encode the private key: {e}"))
    }

    /// The key as jsonwebtoken's RustCrypto signers read it: PKCS#1 DER for
    /// RSA, PKCS#8 DER for EC and Ed25519.
    pub fn encoding_key(&self) -> Result<EncodingKey, String> {
        let error = |e: &dyn std::fmt::Display| format!("cannot encode the private key: {e}");
        Ok(match self {
            SigningKey::Rsa(k) => EncodingKey::from_rsa_der(k.to_pkcs1_der().map_err(|e| error(&e))?.as_bytes()),
            SigningKey::P256(k) => EncodingKey::from_ec_der(k.to_pkcs8_der().map_err(|e| error(&e))?.as_bytes()),
            SigningKey::P384(k) => EncodingKey::from_ec_der(k.to_pkcs8_der().map_err(|e| error(&e))?.as_bytes()),
            SigningKey::Ed25519(k) => EncodingKey::from_ed_der(k.to_pkcs8_der().map_err(|e| error(&e))?.as_bytes()),
        })
    }

    /// Reads a private key file: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA
    /// PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`), unencrypted.
    pub fn read(path: &Path) -> Result<SigningKey, String> {
        let (label, der) = read_pem(path)?;
        let at = path.display();
        let unreadable = |e: &dyn std::fmt::Display| format!("{at}: not a usable {label}: {e}");
        match label.as_str() {
            "PRIVATE KEY" => {
                let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| unreadable(&e))?;
                match (info.algorithm.oid, info.algorithm.parameters_oid().ok()) {
                    (RSA_ENCRYPTION, _) => rsa::RsaPrivateKey::from_pkcs8_der(&der)
                        .map(|k| SigningKey::Rsa(Box::new(k)))
                        .map_err(|e| unreadable(&e)),
                    (EC_PUBLIC_KEY, Some(SECP256R1)) => {
                        p256::SecretKey::from_pkcs8_der(&der).map(SigningKey::P256).map_err(|e| unreadable(&e))
                    }
                    (EC_PUBLIC_KEY, Some(SECP384R1)) => {
                        p384::SecretKey::from_pkcs8_der(&der).map(SigningKey::P384).map_err(|e| unreadable(&e))
                    }
                    (EC_PUBLIC_KEY, curve) => Err(format!(
                        "{at}: an EC key on curve {}: license-gate verifies P-256 (ES256) and P-384 (ES384)",
                        curve.map_or("(unnamed)".to_string(), |c| c.to_string())
                    )),
                    (ED25519, _) => ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                        .map(|k| SigningKey::Ed25519(Box::new(k)))
                        .map_err(|e| unreadable(&e)),
                    (oid, _) => {
                        Err(format!("{at}: a private key of algorithm {oid}, which license-gate does not verify"))
                    }
                }
            }
            "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(&der)
                .map(|k| SigningKey::Rsa(Box::new(k)))
                .map_err(|e| unreadable(&e)),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                .map(SigningKey::P256)
                .or_else(|_| p384::SecretKey::from_sec1_der(&der).map(SigningKey::P384))
                .map_err(|_| format!("{at}: not a P-256 or P-384 key (EC PRIVATE KEY)")),
            "ENCRYPTED PRIVATE KEY" => {
                Err(format!("{at}: the key is encrypted; decrypt it first (openssl pkcs8 -in {at} -out plain.key.pem)"))
            }
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                Err(format!("{at}: a public key; signing needs the private key (KID.key.pem from keygen)"))
            }
            other => Err(format!("{at}: a \"{other}\" PEM block, not a private key")),
        }
    }
}

impl PublicKey {
    /// Reads a public key file (`PUBLIC KEY`, `RSA PUBLIC KEY`) or the
    /// public half of a private key file.
    pub fn read(path: &Path) -> Result<PublicKey, String> {
        let (label, der) = read_pem(path)?;
        let at = path.display();
        let unreadable = |e: &dyn std::fmt::Display| format!("{at}: not a usable {label}: {e}");
        match label.as_str() {
            "PUBLIC KEY" => {
                let info = spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(|e| unreadable(&e))?;
                match (info.algorithm.oid, info.algorithm.parameters_oid().ok()) {
                    (RSA_ENCRYPTION, _) => {
                        rsa::RsaPublicKey::from_public_key_der(&der).map(PublicKey::Rsa).map_err(|e| unreadable(&e))
                    }
                    (EC_PUBLIC_KEY, Some(SECP256R1)) => {
                        p256::PublicKey::from_public_key_der(&der).map(PublicKey::P256).map_err(|e| unreadable(&e))
                    }
                    (EC_PUBLIC_KEY, Some(SECP384R1)) => {
                        p384::PublicKey::from_public_key_der(&der).map(PublicKey::P384).map_err(|e| unreadable(&e))
                    }
                    (ED25519, _) => ed25519_dalek::VerifyingKey::from_public_key_der(&der)
                        .map(PublicKey::Ed25519)
                        .map_err(|e| unreadable(&e)),
                    (oid, _) => {
                        Err(format!("{at}: a public key of algorithm {oid}, which license-gate does not verify"))
                    }
                }
            }
            "RSA PUBLIC KEY" => rsa::RsaPublicKey::from_pkcs1_der(&der).map(PublicKey::Rsa).map_err(|e| unreadable(&e)),
            _ => SigningKey::read(path).map(|k| k.public()),
        }
    }

    /// The SPKI PEM (`PUBLIC KEY`) of the key.
    pub fn to_pem(&self) -> Result<String, String> {
        match self {
            PublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::P256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::P384(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| format!("cannot encode the public key: {e}"))
    }

    /// What kind of key this is, for messages.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa(k) => format!("an RSA key of {} bits", k.size() * 8),
            PublicKey::P256(_) => "a P-256 key".into(),
            PublicKey::P384(_) => "a P-384 key".into(),
            PublicKey::Ed25519(_) => "an Ed25519 key".into(),
        }
    }

    /// The algorithms this key signs for.
    pub fn algorithms(&self) -> &'static [Algorithm] {
        match self {
            PublicKey::Rsa(_) => &RSA_ALGORITHMS,
            PublicKey::P256(_) => &[Algorithm::ES256],
            PublicKey::P384(_) => &[Algorithm::ES384],
            PublicKey::Ed25519(_) => &[Algorithm::EdDSA],
        }
    }

    /// The public JWK, bound to `alg`, for signatures.
    pub fn jwk(&self, kid: &str, alg: Algorithm) -> Jwk {
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = Jwk {
            kty: String::new(),
            kid: Some(kid.to_string()),
            key_use: Some("sig".into()),
            alg: Some(alg_name(alg)),
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
        };
        match self {
            PublicKey::Rsa(k) => {
                jwk.kty = "RSA".into();
                jwk.n = b64(&k.n().to_bytes_be());
                jwk.e = b64(&k.e().to_bytes_be());
            }
            PublicKey::P256(k) => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                let point = k.to_encoded_point(false);
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = point.x().and_then(|x| b64(x));
                jwk.y = point.y().and_then(|y| b64(y));
            }
            PublicKey::P384(k) => {
                use p384::elliptic_curve::sec1::ToEncodedPoint;
                let point = k.to_encoded_point(false);
                jwk.kty = "EC".into();
                jwk.crv = Some("P-384".into());
                jwk.x = point.x().and_then(|x| b64(x));
                jwk.y = point.y().and_then(|y| b64(y));
            }
            PublicKey::Ed25519(k) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = b64(k.as_bytes());
            }
        }
        jwk
    }
}

/// A public JWK, members in the usual order; never private members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self).map(|s| s + "\n").map_err(|e| format!("cannot write the JWKS: {e}"))
    }
}

/// The algorithm a key signs with: `requested` when given (it must fit the
/// key); else the only one an EC or Ed25519 key has; for RSA the `alg` of
/// the JWKS keygen wrote beside the key file, else RS256.
pub fn signing_alg(key: &PublicKey, requested: Option<Algorithm>, key_file: &Path) -> Result<Algorithm, String> {
    let fits = key.algorithms();
    match requested {
        Some(alg) if fits.contains(&alg) => Ok(alg),
        Some(alg) => Err(format!(
            "--alg {} does not fit {} in {} (use {})",
            alg_name(alg),
            key.describe(),
            key_file.display(),
            or_list(&fits.iter().map(|a| alg_name(*a)).collect::<Vec<_>>())
        )),
        None => match key {
            PublicKey::Rsa(_) => Ok(alg_beside(key, key_file).unwrap_or(Algorithm::RS256)),
            _ => Ok(fits.first().copied().unwrap_or(Algorithm::EdDSA)),
        },
    }
}

/// `a`, `a or b`, `a, b or c`.
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The kid a key file's name gives: `keys/rs1.key.pem` and
/// `keys/rs1.pub.pem` are `rs1`, `rs1.pem` is `rs1`.
pub fn kid_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".pem").unwrap_or(name);
    let stem = stem.strip_suffix(".key").or_else(|| stem.strip_suffix(".pub")).unwrap_or(stem);
    (!stem.is_empty()).then(|| stem.to_string())
}

/// The JWKS file keygen writes beside a key file (`KID.jwks.json`).
pub fn jwks_beside(key_file: &Path) -> Option<PathBuf> {
    let kid = kid_from_file_name(key_file)?;
    Some(key_file.with_file_name(format!("{kid}.jwks.json")))
}

/// The RSA algorithm recorded for this very key in the JWKS beside its file.
fn alg_beside(key: &PublicKey, key_file: &Path) -> Option<Algorithm> {
    let text = std::fs::read(jwks_beside(key_file)?).ok()?;
    let jwks: Jwks = serde_json::from_slice(&text).ok()?;
    let PublicKey::Rsa(_) = key else { return None };
    let ours = key.jwk("", Algorithm::RS256);
    let jwk = jwks.keys.iter().find(|k| k.kty == "RSA" && k.n == ours.n && k.e == ours.e)?;
    jwk.alg.as_deref().and_then(|a| a.parse::<Algorithm>().ok()).filter(|a| RSA_ALGORITHMS.contains(a))
}

/// Reads one PEM block: its label and DER contents.
fn read_pem(path: &Path) -> Result<(String, Vec<u8>), String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))?;
    let (label, der) = pem_rfc7468::decode_vec(trim_to_pem(&text))
        .map_err(|e| format!("{}: not a PEM key file ({e})", path.display()))?;
    Ok((label.to_string(), der))
}

/// The PEM block of a file that may carry text around it (openssl writes
/// `EC PARAMETERS` blocks and comments before the key).
fn trim_to_pem(text: &[u8]) -> &[u8] {
    let find = |needle: &[u8], from: usize| {
        text.get(from..).and_then(|rest| rest.windows(needle.len()).position(|w| w == needle)).map(|i| i + from)
    };
    let mut start = 0;
    // Skip blocks that are not keys (EC PARAMETERS).
    while let Some(begin) = find(b"-----BEGIN ", start) {
        if text.get(begin..).is_some_and(|rest| rest.starts_with(b"-----BEGIN EC PARAMETERS-----")) {
            start = begin + 1;
            continue;
        }
        let end = find(b"-----END ", begin).and_then(|end| find(b"-----", end + 9).map(|close| close + 5));
        return text.get(begin..end.unwrap_or(text.len())).unwrap_or(text);
    }
    text
}

/// An I/O error without the "(os error 2)" noise.
pub fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = error.to_string();
            match text.find(" (os error") {
                Some(i) => text.get(..i).unwrap_or(&text).to_string(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-tests/testdata/keys").join(name)
    }

    #[test]
    fn reads_every_kind_of_test_key() {
        for (file, public, describe) in [
            ("rsa.key.pem", "rsa.pub.pem", "an RSA key of 2048 bits"),
            ("rsa-1024.key.pem", "rsa-1024.pub.pem", "an RSA key of 1024 bits"),
            ("p256.key.pem", "p256.pub.pem", "a P-256 key"),
            ("p384.key.pem", "p384.pub.pem", "a P-384 key"),
            ("ed25519.key.pem", "ed25519.pub.pem", "an Ed25519 key"),
        ] {
            let key = SigningKey::read(&testdata(file)).unwrap();
            let from_public = PublicKey::read(&testdata(public)).unwrap();
            assert!(key.public() == from_public, "{file}");
            assert_eq!(PublicKey::read(&testdata(file)).unwrap().describe(), describe);
            // Round trip through the PEM licensectl writes.
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert_eq!(from_public.to_pem().unwrap(), std::fs::read_to_string(testdata(public)).unwrap(), "{file}");
        }
    }

    #[test]
    fn refuses_what_cannot_sign() {
        let error = |path: &Path| SigningKey::read(path).err().unwrap_or_default();
        assert!(
            error(&testdata("rsa.pub.pem"))
                .ends_with("a public key; signing needs the private key (KID.key.pem from keygen)")
        );
        assert!(error(&testdata("nope.pem")).ends_with("nope.pem: no such file"));
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("g.pem");
        std::fs::write(&garbage, "hello").unwrap();
        assert!(error(&garbage).contains("g.pem: not a PEM key file"));
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(error(&cert).ends_with("a \"CERTIFICATE\" PEM block, not a private key"));
    }

    #[test]
    fn sec1_keys_with_parameters() {
        let key = SigningKey::read(&testdata("p256.key.pem")).unwrap();
        let SigningKey::P256(secret) = &key else { unreachable!() };
        let sec1 = secret.to_sec1_der().unwrap();
        let pem = pem_rfc7468::encode_string("EC PRIVATE KEY", LineEnding::LF, &sec1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ec.pem");
        std::fs::write(
            &path,
            format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{pem}"),
        )
        .unwrap();
        assert!(SigningKey::read(&path).unwrap().public() == key.public());
    }

    #[test]
    fn algorithms_fit_keys() {
        let rsa = PublicKey::read(&testdata("rsa.pub.pem")).unwrap();
        let p256 = PublicKey::read(&testdata("p256.pub.pem")).unwrap();
        let file = Path::new("k.pem");
        assert_eq!(signing_alg(&rsa, None, file), Ok(Algorithm::RS256));
        assert_eq!(signing_alg(&rsa, Some(Algorithm::PS384), file), Ok(Algorithm::PS384));
        assert_eq!(signing_alg(&p256, None, file), Ok(Algorithm::ES256));
        assert_eq!(
            signing_alg(&rsa, Some(Algorithm::ES256), file),
            Err("--alg ES256 does not fit an RSA key of 2048 bits in k.pem (use RS256, RS384, RS512, PS256, PS384 or PS512)".into())
        );
        assert_eq!(
            signing_alg(&p256, Some(Algorithm::ES384), file),
            Err("--alg ES384 does not fit a P-256 key in k.pem (use ES256)".into())
        );
    }

    #[test]
    fn rsa_alg_from_the_jwks_beside_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("ps1.key.pem");
        std::fs::copy(testdata("rsa.key.pem"), &key_file).unwrap();
        let key = PublicKey::read(&key_file).unwrap();
        let jwks = Jwks { keys: vec![key.jwk("ps1", Algorithm::PS256)] };
        std::fs::write(dir.path().join("ps1.jwks.json"), jwks.to_json().unwrap()).unwrap();
        assert_eq!(signing_alg(&key, None, &key_file), Ok(Algorithm::PS256));
        // Another key's JWKS does not count.
        let other = PublicKey::read(&testdata("rsa-other.pub.pem")).unwrap();
        assert_eq!(signing_alg(&other, None, &key_file), Ok(Algorithm::RS256));
    }

    #[test]
    fn kids_from_file_names() {
        let kid = |p: &str| kid_from_file_name(Path::new(p));
        assert_eq!(kid("keys/rs1.key.pem").as_deref(), Some("rs1"));
        assert_eq!(kid("rs1.pub.pem").as_deref(), Some("rs1"));
        assert_eq!(kid("/a/b/es-2026.pem").as_deref(), Some("es-2026"));
        assert_eq!(kid("key").as_deref(), Some("key"));
        assert_eq!(kid(".pem"), None);
    }

    #[test]
    fn generated_keys_sign_for_their_algorithm() {
        for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
            let key = SigningKey::generate(alg, 0).unwrap();
            assert_eq!(key.public().algorithms(), &[alg]);
            let header = jsonwebtoken::Header::new(alg);
            let token = jsonwebtoken::encode(&header, &serde_json::json!({"a": 1}), &key.encoding_key().unwrap());
            assert!(token.is_ok(), "{alg:?}");
        }
    }
}

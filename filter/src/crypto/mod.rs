//! The signature verifiers, one per configured key, built once.
//!
//! - RS*/PS*: [`rsa`], on crypto-bigint (the `rsa` crate was the bottleneck);
//! - ES256/ES384: [`ecdsa`], RustCrypto's `p256`/`p384` group arithmetic with
//!   precomputed fixed-base tables (their own verifier rebuilds tables per call);
//! - EdDSA: [`eddsa`], curve25519-dalek's group arithmetic with fixed-base
//!   tables, `ed25519-dalek`'s strict verdicts (no malleable signatures);
//! - HS*: RustCrypto's `hmac`, constant-time comparison.
//!
//! Keys arrive as [`KeyMaterial`] (read from a JWK or a PEM block by
//! `keys.rs`); [`Verifier::new`] checks that the material is a usable key
//! of the algorithm's family. No JWT library is involved: the module only
//! verifies, and jsonwebtoken's key types and provider seam were about 40 KB
//! of the module (issue 13, BENCHMARKS.md).

pub mod ecdsa;
pub mod eddsa;
pub mod rsa;

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use self::ecdsa::EcdsaKey;
use self::eddsa::Ed25519Key;
use self::rsa::{RsaKey, RsaVerifier};

/// A JWS signature algorithm license-gate verifies (RFC 7518 §3.1, RFC 8037).
/// `none` is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The kind of key an algorithm verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Algorithm {
    /// Every algorithm, HMAC first (`keys::ASYMMETRIC` is the rest).
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
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

    /// The name a JWS header and a JWK carry.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
            Algorithm::EdDSA => Family::Ed,
        }
    }
}

/// Not an algorithm license-gate verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAlgorithm;

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exactly the registered name: JWS algorithm names are case-sensitive.
    fn from_str(name: &str) -> Result<Algorithm, UnknownAlgorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name).ok_or(UnknownAlgorithm)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key as a JWK or a PEM block gives it, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// Modulus and public exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A SEC1 point (uncompressed, 0x04 || x || y, or compressed).
    Ec(Vec<u8>),
    /// The 32-byte encoding of an Ed25519 public key.
    Ed(Vec<u8>),
    /// An HMAC secret.
    Secret(Vec<u8>),
}

impl KeyMaterial {
    /// From a PKCS#1 `RSAPublicKey` (DER).
    pub fn rsa_from_pkcs1_der(der: &[u8]) -> Result<KeyMaterial, String> {
        use pkcs1::der::Decode;
        let key = pkcs1::RsaPublicKey::from_der(der).map_err(|e| e.to_string())?;
        Ok(KeyMaterial::Rsa { n: key.modulus.as_bytes().to_vec(), e: key.public_exponent.as_bytes().to_vec() })
    }

    pub fn family(&self) -> Family {
        match self {
            KeyMaterial::Rsa { .. } => Family::Rsa,
            KeyMaterial::Ec(_) => Family::Ec,
            KeyMaterial::Ed(_) => Family::Ed,
            KeyMaterial::Secret(_) => Family::Hmac,
        }
    }
}

/// Why key material cannot verify for an algorithm; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The material is of another family than the algorithm.
    WrongFamily(Algorithm),
    /// An EC point of another size than the algorithm's curve.
    WrongCurve(Algorithm),
    Rsa(rsa::RsaKeyError),
    /// Not a point of the algorithm's curve.
    NotOnCurve(Algorithm),
    Ed25519(&'static str),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::WrongFamily(alg) => write!(f, "key type does not fit {alg}"),
            KeyError::WrongCurve(alg) => write!(f, "key curve does not fit {alg}"),
            KeyError::Rsa(e) => e.fmt(f),
            KeyError::NotOnCurve(alg) => write!(f, "unusable key for {alg}: not a point of its curve"),
            KeyError::Ed25519(e) => f.write_str(e),
        }
    }
}

/// One key, ready to verify signatures of exactly one algorithm.
pub enum Verifier {
    Rsa(RsaVerifier),
    P256(EcdsaKey<p256::NistP256>),
    P384(EcdsaKey<p384::NistP384>),
    Ed25519(Ed25519Key),
    Hmac { alg: Algorithm, secret: Vec<u8> },
}

impl Verifier {
    /// Checks the key and prepares what every signature would need (RSA's
    /// Montgomery parameters, decoded points); tables are built lazily or
    /// by [`Verifier::prepare`].
    pub fn new(alg: Algorithm, material: &KeyMaterial) -> Result<Verifier, KeyError> {
        if material.family() != alg.family() {
            return Err(KeyError::WrongFamily(alg));
        }
        Ok(match (alg, material) {
            (_, KeyMaterial::Rsa { n, e }) => {
                let key = RsaKey::new(n, e).map_err(KeyError::Rsa)?;
                Verifier::Rsa(RsaVerifier::new(alg, key).ok_or(KeyError::WrongFamily(alg))?)
            }
            // SEC1 tags 02/03 (compressed) and 04 (uncompressed) only: the
            // compact form (05, no y) that the sec1 crate also reads is a key
            // format of neither RFC 5480 nor RFC 7518.
            (_, KeyMaterial::Ec(point)) if !matches!(point.first(), Some(2..=4)) => {
                return Err(KeyError::NotOnCurve(alg));
            }
            // A SEC1 point of the algorithm's curve, uncompressed (1 + 2 * 32
            // bytes on P-256, 1 + 2 * 48 on P-384) or compressed (1 + 32, 1 + 48).
            (Algorithm::ES256, KeyMaterial::Ec(point)) if matches!(point.len(), 33 | 65) => {
                Verifier::P256(EcdsaKey::new(
                    *elliptic_curve::PublicKey::<p256::NistP256>::from_sec1_bytes(point)
                        .map_err(|_| KeyError::NotOnCurve(alg))?
                        .as_affine(),
                ))
            }
            (Algorithm::ES384, KeyMaterial::Ec(point)) if matches!(point.len(), 49 | 97) => {
                Verifier::P384(EcdsaKey::new(
                    *elliptic_curve::PublicKey::<p384::NistP384>::from_sec1_bytes(point)
                        .map_err(|_| KeyError::NotOnCurve(alg))?
                        .as_affine(),
                ))
            }
            (_, KeyMaterial::Ec(_)) => return Err(KeyError::WrongCurve(alg)),
            (_, KeyMaterial::Ed(bytes)) => {
                Verifier::Ed25519(Ed25519Key::new(&ed25519_key(bytes).map_err(KeyError::Ed25519)?))
            }
            (_, KeyMaterial::Secret(secret)) => Verifier::Hmac { alg, secret: secret.clone() },
        })
    }

    /// Checks `signature` over `message` (JWS: `base64(header).base64(payload)`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Rsa(key) => key.verify(message, signature),
            // JWS carries ECDSA signatures as fixed-width r || s (RFC 7518 §3.4).
            Verifier::P256(key) => key.verify(message, signature),
            Verifier::P384(key) => key.verify(message, signature),
            Verifier::Ed25519(key) => key.verify(message, signature),
            Verifier::Hmac { alg, secret } => hmac_verifies(*alg, secret, message, signature),
        }
    }

    /// Precomputation a verifier would otherwise do on its first signature
    /// (the ECDSA and Ed25519 fixed-base tables), done now: for the
    /// configuration's inline keys, in `on_configure`, so that no client
    /// request pays for it.
    pub fn prepare(&self) {
        match self {
            Verifier::P256(key) => key.prepare(),
            Verifier::P384(key) => key.prepare(),
            Verifier::Ed25519(key) => key.prepare(),
            Verifier::Rsa(_) | Verifier::Hmac { .. } => {}
        }
    }
}

/// An Ed25519 public key a forger cannot exploit: a valid encoding of a
/// curve point that is not of small order (with such a key one signature
/// verifies for many messages).
pub fn ed25519_key(bytes: &[u8]) -> Result<ed25519_dalek::VerifyingKey, &'static str> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "an Ed25519 public key is 32 bytes")?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key")?;
    if key.is_weak() {
        return Err("Ed25519 key of small order (a forger could sign with it)");
    }
    Ok(key)
}

fn hmac_verifies(alg: Algorithm, secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
    fn check<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
        <M as Mac>::new_from_slice(secret).map(|m| m.chain_update(message).verify_slice(tag).is_ok()).unwrap_or(false)
    }
    match alg {
        Algorithm::HS256 => check::<Hmac<Sha256>>(secret, message, tag),
        Algorithm::HS384 => check::<Hmac<Sha384>>(secret, message, tag),
        Algorithm::HS512 => check::<Hmac<Sha512>>(secret, message, tag),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>(), Ok(alg));
            assert_eq!(format!("{alg:?}"), alg.name(), "messages print the registered name");
        }
        for name in ["none", "None", "rs256", "HS256 ", "ES512", "RSA-OAEP", ""] {
            assert_eq!(name.parse::<Algorithm>(), Err(UnknownAlgorithm), "{name}");
        }
    }

    #[test]
    fn material_must_fit_the_algorithm() {
        let secret = KeyMaterial::Secret(vec![7; 32]);
        assert_eq!(Verifier::new(Algorithm::RS256, &secret).err(), Some(KeyError::WrongFamily(Algorithm::RS256)));
        let ec = KeyMaterial::Ec(vec![4; 65]);
        assert_eq!(Verifier::new(Algorithm::ES384, &ec).err(), Some(KeyError::WrongCurve(Algorithm::ES384)));
        assert_eq!(Verifier::new(Algorithm::ES256, &ec).err(), Some(KeyError::NotOnCurve(Algorithm::ES256)));
        // The P-256 generator's x: compressed with either parity it is a
        // point (G or -G); the compact form of the same x is refused.
        let g_x: [u8; 32] = [
            0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03,
            0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
        ];
        for (tag, usable) in [(0x02, true), (0x03, true), (0x05, false), (0x00, false), (0x04, false)] {
            let point = KeyMaterial::Ec([&[tag][..], &g_x].concat());
            let verdict = Verifier::new(Algorithm::ES256, &point).err();
            assert_eq!(verdict, (!usable).then_some(KeyError::NotOnCurve(Algorithm::ES256)), "tag {tag:#04x}");
        }
        let hmac = Verifier::new(Algorithm::HS256, &secret).map_err(|e| e.to_string()).unwrap();
        let tag = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap().chain_update(b"m").finalize().into_bytes();
        assert!(hmac.verify(b"m", &tag));
        assert!(!hmac.verify(b"n", &tag));
    }
}

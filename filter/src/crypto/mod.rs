//! The signature verifiers, plugged into jsonwebtoken's `CryptoProvider`
//! seam. license-gate only verifies: jsonwebtoken parses keys (JWK, PEM) and
//! this provider turns them into verifiers, built once per configured key.
//!
//! - RS*/PS*: [`rsa`], on crypto-bigint (the `rsa` crate was the bottleneck);
//! - ES256/ES384: [`ecdsa`], RustCrypto's `p256`/`p384` group arithmetic with
//!   precomputed fixed-base tables (their own verifier rebuilds tables per call);
//! - EdDSA: [`eddsa`], curve25519-dalek's group arithmetic with fixed-base
//!   tables, `ed25519-dalek`'s strict verdicts (no malleable signatures);
//! - HS*: RustCrypto's `hmac`, constant-time comparison.
//!
//! Not linking jsonwebtoken's own `rust_crypto` provider keeps the `rsa` crate
//! and its big integers out of the module.

pub mod ecdsa;
pub mod eddsa;
pub mod rsa;

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use pkcs1::der::Decode;
use sha2::{Sha256, Sha384, Sha512};

use self::ecdsa::EcdsaKey;
use self::eddsa::Ed25519Key;
use self::rsa::{RsaKey, RsaVerifier};

/// The provider license-gate verifies with.
pub static PROVIDER: CryptoProvider =
    CryptoProvider { signer_factory: no_signing, verifier_factory, key_utils: KeyUtils::new_unimplemented() };

fn no_signing(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn verifier_factory(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != alg.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let alg = *alg;
    Ok(match alg.family() {
        AlgorithmFamily::Rsa => {
            let (n, e) = rsa_components(key).ok_or(ErrorKind::InvalidRsaKey(String::new()))?;
            let key = RsaKey::new(&n, &e).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
            Box::new(RsaVerifier::new(alg, key).ok_or(ErrorKind::InvalidAlgorithm)?)
        }
        AlgorithmFamily::Ec => {
            let point = key.try_get_as_bytes()?;
            let verifier = match alg {
                Algorithm::ES256 => Ecdsa::P256(EcdsaKey::new(
                    *p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| ErrorKind::InvalidEcdsaKey)?
                        .as_affine(),
                )),
                _ => Ecdsa::P384(EcdsaKey::new(
                    *p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| ErrorKind::InvalidEcdsaKey)?
                        .as_affine(),
                )),
            };
            Box::new(Asymmetric { alg, verifier })
        }
        AlgorithmFamily::Ed => {
            let key = ed25519_key(key.try_get_as_bytes()?).map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Box::new(Asymmetric { alg, verifier: Ecdsa::Ed25519(Ed25519Key::new(&key)) })
        }
        AlgorithmFamily::Hmac => Box::new(HmacVerifier { alg, secret: key.try_get_as_bytes()?.to_vec() }),
    })
}

/// An Ed25519 public key a forger cannot exploit: a valid encoding of a
/// curve point that is not of small order (with such a key one signature
/// verifies for many messages).
pub fn ed25519_key(bytes: &[u8]) -> std::result::Result<ed25519_dalek::VerifyingKey, &'static str> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "an Ed25519 public key is 32 bytes")?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key")?;
    if key.is_weak() {
        return Err("Ed25519 key of small order (a forger could sign with it)");
    }
    Ok(key)
}

/// An RSA key's modulus and public exponent, big-endian.
pub fn rsa_components(key: &DecodingKey) -> Option<(Vec<u8>, Vec<u8>)> {
    match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => {
            let parsed = pkcs1::RsaPublicKey::from_der(der).ok()?;
            Some((parsed.modulus.as_bytes().to_vec(), parsed.public_exponent.as_bytes().to_vec()))
        }
        DecodingKeyKind::RsaModulusExponent { n, e } => Some((n.clone(), e.clone())),
    }
}

/// Precomputation a verifier would otherwise do on its first signature
/// (the ECDSA and Ed25519 fixed-base tables), done now: for the configuration's inline
/// keys, in `on_configure`, so that no client request pays for it.
/// jsonwebtoken's verifier trait has no such hook, so a signature that
/// passes the range checks (r = s = 1) and verifies nothing stands in.
pub fn prepare(alg: Algorithm, verifier: &dyn JwtVerifier) {
    let signature = match alg {
        Algorithm::ES256 => ecdsa_prepare_signature(32),
        Algorithm::ES384 => ecdsa_prepare_signature(48),
        Algorithm::EdDSA => eddsa::PREPARE_SIGNATURE.to_vec(),
        _ => return,
    };
    let _ = verifier.verify(b"license-gate: prepare", &signature);
}

/// r = s = 1.
fn ecdsa_prepare_signature(width: usize) -> Vec<u8> {
    let mut signature = vec![0u8; 2 * width];
    for at in [width - 1, 2 * width - 1] {
        if let Some(byte) = signature.get_mut(at) {
            *byte = 1;
        }
    }
    signature
}

/// Elliptic-curve public keys (ECDSA and Ed25519).
enum Ecdsa {
    P256(EcdsaKey<p256::NistP256>),
    P384(EcdsaKey<p384::NistP384>),
    Ed25519(Ed25519Key),
}

struct Asymmetric {
    alg: Algorithm,
    verifier: Ecdsa,
}

impl Verifier<Vec<u8>> for Asymmetric {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        // JWS carries ECDSA signatures as fixed-width r || s (RFC 7518 §3.4).
        match &self.verifier {
            Ecdsa::P256(key) => key.verify(message, signature).then_some(()).ok_or_else(SignatureError::new),
            Ecdsa::P384(key) => key.verify(message, signature).then_some(()).ok_or_else(SignatureError::new),
            Ecdsa::Ed25519(key) => key.verify(message, signature).then_some(()).ok_or_else(SignatureError::new),
        }
    }
}

impl JwtVerifier for Asymmetric {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct HmacVerifier {
    alg: Algorithm,
    secret: Vec<u8>,
}

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        fn check<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
            <M as Mac>::new_from_slice(secret)
                .map(|m| m.chain_update(message).verify_slice(tag).is_ok())
                .unwrap_or(false)
        }
        let ok = match self.alg {
            Algorithm::HS256 => check::<Hmac<Sha256>>(&self.secret, message, signature),
            Algorithm::HS384 => check::<Hmac<Sha384>>(&self.secret, message, signature),
            Algorithm::HS512 => check::<Hmac<Sha512>>(&self.secret, message, signature),
            _ => false,
        };
        if ok { Ok(()) } else { Err(SignatureError::new()) }
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

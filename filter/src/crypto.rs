//! The signature verifiers behind jsonwebtoken's `CryptoProvider` seam.
//!
//! Everything uses the RustCrypto verifiers of jsonwebtoken's `rust_crypto`
//! provider, except RSASSA-PKCS1-v1_5 (RS256/384/512): the `rsa` crate's
//! big integers use 64-bit digits whose 128-bit products Wasm must emulate,
//! and it re-parses the key on every call, so one RS256 check cost about
//! 21 million Wasm instructions. Here the public-key operation runs on
//! `crypto-bigint` (32-bit limbs on wasm32, Montgomery form prepared once per
//! key), and the result is checked against the EMSA-PKCS1-v1_5 encoding of
//! RFC 8017 §9.2. Verification only: no secret is ever involved.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Limb, U64, U2048, U3072, U4096, Uint, Word};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::Result;
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The provider license-gate verifies with: RustCrypto's, with the faster
/// RSASSA-PKCS1-v1_5 verifier plugged in.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: DEFAULT_PROVIDER.signer_factory,
    verifier_factory,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key: DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: DEFAULT_PROVIDER.key_utils.ec_pub_components_from_private_key,
        ed_pub_components_from_private_key: DEFAULT_PROVIDER.key_utils.ed_pub_components_from_private_key,
        compute_digest: DEFAULT_PROVIDER.key_utils.compute_digest,
    },
};

/// RS256/384/512 keys get the crypto-bigint verifier, everything else RustCrypto's.
fn verifier_factory(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() == AlgorithmFamily::Rsa
        && let Some((n, e)) = rsa_components(key)
        && let Some(verifier) = Pkcs1Verifier::new(*alg, &n, &e)
    {
        return Ok(Box::new(verifier));
    }
    (DEFAULT_PROVIDER.verifier_factory)(alg, key)
}

/// Modulus and public exponent, big-endian.
fn rsa_components(key: &DecodingKey) -> Option<(Vec<u8>, Vec<u8>)> {
    match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => {
            let parsed = rsa::RsaPublicKey::from_pkcs1_der(der).ok()?;
            Some((parsed.n().to_bytes_be(), parsed.e().to_bytes_be()))
        }
        DecodingKeyKind::RsaModulusExponent { n, e } => Some((n.clone(), e.clone())),
    }
}

/// An RSA public key prepared for RSASSA-PKCS1-v1_5 verification.
pub struct Pkcs1Verifier {
    alg: Algorithm,
    modulus: Modulus,
    /// Modulus length in bytes: every signature has exactly this length.
    k: usize,
    exponent: u64,
}

/// Montgomery parameters for the modulus, in the smallest fixed width that
/// holds it (boxed: they are kilobytes, one per configured key).
enum Modulus {
    Bits2048(Box<DynResidueParams<{ U2048::LIMBS }>>),
    Bits3072(Box<DynResidueParams<{ U3072::LIMBS }>>),
    Bits4096(Box<DynResidueParams<{ U4096::LIMBS }>>),
}

impl Pkcs1Verifier {
    /// `None` when the key does not suit this verifier (then the caller falls
    /// back to RustCrypto's): not RS256/384/512, a modulus over 4096 bits or
    /// even, or an exponent over 64 bits.
    pub fn new(alg: Algorithm, n: &[u8], e: &[u8]) -> Option<Pkcs1Verifier> {
        if !matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
            return None;
        }
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        if e.is_empty() || e.len() > 8 || n.is_empty() {
            return None;
        }
        let exponent = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let modulus = match n.len() {
            0..=256 => Modulus::Bits2048(Box::new(params(n)?)),
            257..=384 => Modulus::Bits3072(Box::new(params(n)?)),
            385..=512 => Modulus::Bits4096(Box::new(params(n)?)),
            _ => return None,
        };
        Some(Pkcs1Verifier { alg, modulus, k: n.len(), exponent })
    }

    /// `signature^e mod n` as `k` big-endian bytes; `None` when the signature
    /// has the wrong length or is not below the modulus (RFC 8017 §5.2.2).
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.k {
            return None;
        }
        let em = match &self.modulus {
            Modulus::Bits2048(p) => pow(p, signature, self.exponent)?,
            Modulus::Bits3072(p) => pow(p, signature, self.exponent)?,
            Modulus::Bits4096(p) => pow(p, signature, self.exponent)?,
        };
        // The fixed-width result has leading zero bytes beyond k.
        let (high, low) = em.split_at(em.len().checked_sub(self.k)?);
        high.iter().all(|b| *b == 0).then(|| low.to_vec())
    }

    /// EMSA-PKCS1-v1_5 (RFC 8017 §9.2): 00 01 FF…FF 00 DigestInfo(hash).
    fn expected_encoding(&self, message: &[u8]) -> Option<Vec<u8>> {
        let (prefix, digest): (&[u8], Vec<u8>) = match self.alg {
            Algorithm::RS256 => (&SHA256_PREFIX, Sha256::digest(message).to_vec()),
            Algorithm::RS384 => (&SHA384_PREFIX, Sha384::digest(message).to_vec()),
            Algorithm::RS512 => (&SHA512_PREFIX, Sha512::digest(message).to_vec()),
            _ => return None,
        };
        let t_len = prefix.len() + digest.len();
        let padding = self.k.checked_sub(t_len + 3).filter(|p| *p >= 8)?;
        let mut em = Vec::with_capacity(self.k);
        em.extend_from_slice(&[0x00, 0x01]);
        em.resize(2 + padding, 0xff);
        em.push(0x00);
        em.extend_from_slice(prefix);
        em.extend_from_slice(&digest);
        Some(em)
    }
}

impl Verifier<Vec<u8>> for Pkcs1Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        match (self.public_op(signature), self.expected_encoding(message)) {
            (Some(em), Some(expected)) if em == expected => Ok(()),
            _ => Err(SignatureError::new()),
        }
    }
}

impl JwtVerifier for Pkcs1Verifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

// DER of DigestInfo up to the digest, RFC 8017 §9.2 note 1.
const SHA256_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
const SHA384_PREFIX: [u8; 19] =
    [0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];
const SHA512_PREFIX: [u8; 19] =
    [0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40];

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// A fixed-width integer from big-endian bytes (at most its width).
fn uint<const L: usize>(be: &[u8]) -> Option<Uint<L>> {
    let width = L * Limb::BYTES;
    let pad = width.checked_sub(be.len())?;
    let mut words = [Word::default(); L];
    for (i, byte) in be.iter().enumerate() {
        // Byte i of the big-endian number, counted from the least significant end.
        let pos = width - 1 - (pad + i);
        let word = words.get_mut(pos / Limb::BYTES)?;
        *word |= Word::from(*byte) << (8 * (pos % Limb::BYTES));
    }
    Some(Uint::from_words(words))
}

fn params<const L: usize>(n: &[u8]) -> Option<DynResidueParams<L>> {
    // `new` panics on an even modulus; `new_checked` (deprecated in name only,
    // to be folded into `new`) answers None instead.
    #[allow(deprecated)]
    let checked = DynResidueParams::new_checked(&uint::<L>(n)?);
    Option::from(checked)
}

/// `base^exponent mod n`, big-endian, in the modulus's fixed width.
fn pow<const L: usize>(params: &DynResidueParams<L>, base: &[u8], exponent: u64) -> Option<Vec<u8>> {
    let s = uint::<L>(base)?;
    if s >= *params.modulus() {
        return None;
    }
    let x = DynResidue::new(&s, *params);
    let m = if exponent == 65_537 {
        // e = 2^16 + 1, nearly every RSA key: 16 squarings and one product.
        let mut y = x;
        for _ in 0..16 {
            y = y.square();
        }
        y.mul(&x)
    } else {
        let bits = 64 - exponent.leading_zeros() as usize;
        x.pow_bounded_exp(&U64::from_u64(exponent), bits)
    };
    let words = m.retrieve().to_words();
    Some(words.iter().rev().flat_map(|w| w.to_be_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::EncodingKey;

    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../host-tests/testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Verifies a compact JWS with the provider's verifier for `alg`.
    fn verifies(alg: Algorithm, key: &DecodingKey, token: &str) -> bool {
        let (message, signature) = token.rsplit_once('.').unwrap();
        let verifier = (PROVIDER.verifier_factory)(&alg, key).unwrap();
        verifier.verify(message.as_bytes(), &b64(signature)).is_ok()
    }

    // RFC 7515 Appendix A.2: RS256.
    const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    const RFC7515_A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

    // RFC 8037 Appendix A.4: EdDSA (Ed25519).
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    #[test]
    fn rfc7515_a2_rs256_vector() {
        let key = DecodingKey::from_rsa_components(RFC7515_A2_N, "AQAB").unwrap();
        assert!(verifies(Algorithm::RS256, &key, RFC7515_A2_JWS));
        // One bit off anywhere: refused.
        let tampered = RFC7515_A2_JWS.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Uj", 1);
        assert!(!verifies(Algorithm::RS256, &key, &tampered));
        assert!(!verifies(Algorithm::RS384, &key, RFC7515_A2_JWS), "the hash is part of the encoding");
        let (n, e) = (b64(RFC7515_A2_N), vec![1, 0, 1]);
        assert!(Pkcs1Verifier::new(Algorithm::RS256, &n, &e).is_some(), "the fast verifier takes this key");
    }

    #[test]
    fn rfc8037_eddsa_vector() {
        let key = DecodingKey::from_ed_components(RFC8037_X).unwrap();
        assert!(verifies(Algorithm::EdDSA, &key, RFC8037_JWS));
        let tampered = RFC8037_JWS.replacen("RXhhbXBsZSBvZiBFZDI1NTE5", "RXhhbXBsZSBvZiBFZDI1NTE4", 1);
        assert!(!verifies(Algorithm::EdDSA, &key, &tampered));
    }

    /// The fast verifier agrees with RustCrypto's on signatures made by
    /// RustCrypto, for every hash and modulus width, and on forgeries.
    #[test]
    fn agrees_with_rust_crypto() {
        for bits in ["", "-3072", "-4096"] {
            let private = EncodingKey::from_rsa_pem(&key_file(&format!("rsa{bits}.key.pem"))).unwrap();
            let public = DecodingKey::from_rsa_pem(&key_file(&format!("rsa{bits}.pub.pem"))).unwrap();
            for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
                let fast = (PROVIDER.verifier_factory)(&alg, &public).unwrap();
                let reference = (DEFAULT_PROVIDER.verifier_factory)(&alg, &public).unwrap();
                for i in 0..4 {
                    let message = format!("header.payload-{i}-{bits}");
                    let signature =
                        b64(&jsonwebtoken::crypto::sign(message.as_bytes(), &private, alg).unwrap());
                    let mut forged = signature.clone();
                    forged[i * 7] ^= 1 << i;
                    let cases = [
                        (message.as_bytes(), signature.clone()),
                        (b"another message".as_slice(), signature.clone()),
                        (message.as_bytes(), forged),
                        (message.as_bytes(), signature[1..].to_vec()),
                        (message.as_bytes(), vec![0; signature.len()]),
                        (message.as_bytes(), vec![0xff; signature.len()]),
                    ];
                    for (j, (msg, sig)) in cases.into_iter().enumerate() {
                        assert_eq!(
                            fast.verify(msg, &sig).is_ok(),
                            reference.verify(msg, &sig).is_ok(),
                            "{alg:?} rsa{bits} message {i} case {j}"
                        );
                        assert_eq!(fast.verify(msg, &sig).is_ok(), j == 0, "{alg:?} rsa{bits} case {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn keys_outside_the_fast_path_fall_back() {
        let n = b64(RFC7515_A2_N);
        assert!(Pkcs1Verifier::new(Algorithm::PS256, &n, &[1, 0, 1]).is_none(), "PSS stays with RustCrypto");
        assert!(Pkcs1Verifier::new(Algorithm::RS256, &[0x10; 600], &[1, 0, 1]).is_none(), "over 4096 bits");
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert!(Pkcs1Verifier::new(Algorithm::RS256, &even, &[1, 0, 1]).is_none(), "even modulus");
        assert!(Pkcs1Verifier::new(Algorithm::RS256, &n, &[1; 9]).is_none(), "exponent over 64 bits");
        assert!(Pkcs1Verifier::new(Algorithm::RS256, &n, &[3]).is_some(), "e = 3");
    }
}

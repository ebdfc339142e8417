//! RSA signature verification (RS256/384/512, PS256/384/512) on crypto-bigint.
//!
//! The `rsa` crate's big integers use 64-bit digits whose 128-bit products
//! Wasm must emulate, and jsonwebtoken re-parsed the key on every call: one
//! RS256 check cost about 21 million Wasm instructions. Here the public-key
//! operation runs on `crypto-bigint` (32-bit limbs on wasm32, Montgomery
//! parameters prepared once per key; e = 65537 is 16 squarings and one
//! product), and the result is checked against the encodings of RFC 8017:
//! EMSA-PKCS1-v1_5 (§9.2) and EMSA-PSS with MGF1 and a salt as long as the
//! hash (§9.1, as RFC 7518 §3.5 requires). Verification only: no secret is
//! ever involved.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Limb, U64, U2048, U3072, U4096, Uint, Word};
use sha2::digest::{Digest, FixedOutputReset};
use sha2::{Sha256, Sha384, Sha512};

use super::Algorithm;

/// Smallest RSA modulus accepted: shorter keys are forgeable in practice.
pub const MIN_BITS: usize = 2048;
/// Largest modulus this verifier handles.
pub const MAX_BITS: usize = 4096;

/// Why an RSA key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    TooShort(usize),
    TooLong(usize),
    /// A public exponent below 3 or even: with e = 1 the "signature" is the
    /// padded hash itself, and anyone forges tokens.
    WeakExponent,
    /// An even modulus, or an exponent over 64 bits.
    Invalid,
}

impl std::fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RsaKeyError::TooShort(bits) => write!(f, "RSA key of {bits} bits is too short (at least {MIN_BITS})"),
            RsaKeyError::TooLong(bits) => write!(f, "RSA key of {bits} bits is too long (at most {MAX_BITS})"),
            RsaKeyError::WeakExponent => {
                f.write_str("RSA public exponent must be odd and at least 3 (a forger could sign with this key)")
            }
            RsaKeyError::Invalid => f.write_str("not a valid RSA public key"),
        }
    }
}

/// An RSA public key, prepared once.
pub struct RsaKey {
    modulus: Modulus,
    /// Modulus length in bytes: every signature has exactly this length.
    k: usize,
    /// Modulus length in bits.
    bits: usize,
    exponent: u64,
}

/// Montgomery parameters for the modulus, in the smallest fixed width that
/// holds it (boxed: they are kilobytes, one per configured key).
enum Modulus {
    Bits2048(Box<DynResidueParams<{ U2048::LIMBS }>>),
    Bits3072(Box<DynResidueParams<{ U3072::LIMBS }>>),
    Bits4096(Box<DynResidueParams<{ U4096::LIMBS }>>),
}

impl RsaKey {
    /// From the big-endian modulus and public exponent.
    pub fn new(n: &[u8], e: &[u8]) -> Result<RsaKey, RsaKeyError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = match n.first() {
            Some(top) => n.len() * 8 - top.leading_zeros() as usize,
            None => return Err(RsaKeyError::Invalid),
        };
        if bits < MIN_BITS {
            return Err(RsaKeyError::TooShort(bits));
        }
        if bits > MAX_BITS {
            return Err(RsaKeyError::TooLong(bits));
        }
        if e.len() > 8 {
            return Err(RsaKeyError::Invalid);
        }
        let exponent = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if exponent < 3 || exponent % 2 == 0 {
            return Err(RsaKeyError::WeakExponent);
        }
        let modulus = match n.len() {
            0..=256 => Modulus::Bits2048(Box::new(params(n).ok_or(RsaKeyError::Invalid)?)),
            257..=384 => Modulus::Bits3072(Box::new(params(n).ok_or(RsaKeyError::Invalid)?)),
            _ => Modulus::Bits4096(Box::new(params(n).ok_or(RsaKeyError::Invalid)?)),
        };
        Ok(RsaKey { modulus, k: n.len(), bits, exponent })
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// RSAVP1: `signature^e mod n` as `k` big-endian bytes; `None` when the
    /// signature has the wrong length or is not below the modulus (§5.2.2).
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.k {
            return None;
        }
        let m = match &self.modulus {
            Modulus::Bits2048(p) => pow(p, signature, self.exponent)?,
            Modulus::Bits3072(p) => pow(p, signature, self.exponent)?,
            Modulus::Bits4096(p) => pow(p, signature, self.exponent)?,
        };
        // The fixed-width result has leading zero bytes beyond k.
        let (high, low) = m.split_at(m.len().checked_sub(self.k)?);
        high.iter().all(|b| *b == 0).then(|| low.to_vec())
    }
}

/// RS256/384/512 and PS256/384/512 with one prepared key.
pub struct RsaVerifier {
    alg: Algorithm,
    key: RsaKey,
}

impl RsaVerifier {
    /// `None` for an algorithm that is not RSA.
    pub fn new(alg: Algorithm, key: RsaKey) -> Option<RsaVerifier> {
        use Algorithm::*;
        matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512).then_some(RsaVerifier { alg, key })
    }

    /// Checks `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.key.public_op(signature) else { return false };
        match self.alg {
            Algorithm::RS256 => pkcs1_v15::<Sha256>(&SHA256_PREFIX, message, &em),
            Algorithm::RS384 => pkcs1_v15::<Sha384>(&SHA384_PREFIX, message, &em),
            Algorithm::RS512 => pkcs1_v15::<Sha512>(&SHA512_PREFIX, message, &em),
            Algorithm::PS256 => pss::<Sha256>(message, &em, self.key.bits),
            Algorithm::PS384 => pss::<Sha384>(message, &em, self.key.bits),
            Algorithm::PS512 => pss::<Sha512>(message, &em, self.key.bits),
            _ => false,
        }
    }
}

/// EMSA-PKCS1-v1_5 (§9.2): `em` must be exactly 00 01 FF…FF 00 DigestInfo(H(m)).
fn pkcs1_v15<D: Digest>(prefix: &[u8], message: &[u8], em: &[u8]) -> bool {
    let digest = D::digest(message);
    let t_len = prefix.len() + digest.len();
    let Some(padding) = em.len().checked_sub(t_len + 3).filter(|p| *p >= 8) else { return false };
    let (head, rest) = em.split_at(2);
    let (ps, rest) = rest.split_at(padding);
    let (zero, rest) = rest.split_at(1);
    let (p, d) = rest.split_at(prefix.len());
    head == [0x00, 0x01] && ps.iter().all(|b| *b == 0xff) && zero == [0x00] && p == prefix && d == &digest[..]
}

/// EMSA-PSS-VERIFY (§9.1.2) with MGF1 over the same hash and sLen = hLen.
fn pss<D: Digest + FixedOutputReset>(message: &[u8], em: &[u8], mod_bits: usize) -> bool {
    let h_len = <D as Digest>::output_size();
    let s_len = h_len;
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    // RSAVP1 gave k bytes; EM is its last emLen (k - 1 when emBits is a multiple of 8).
    let Some(extra) = em.len().checked_sub(em_len) else { return false };
    let (high, em) = em.split_at(extra);
    if high.iter().any(|b| *b != 0) || em_len < h_len + s_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let Some(h) = rest.get(..h_len) else { return false };
    let unused_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8 >> unused_bits;
    if masked_db.first().is_none_or(|b| b & !top_mask != 0) {
        return false;
    }
    let mut db = mgf1::<D>(h, masked_db.len());
    for (d, m) in db.iter_mut().zip(masked_db) {
        *d ^= m;
    }
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    let zeros = em_len - h_len - s_len - 2;
    let (ps, rest) = db.split_at(zeros);
    if ps.iter().any(|b| *b != 0) || rest.first() != Some(&0x01) {
        return false;
    }
    let Some(salt) = rest.get(1..) else { return false };
    let mut hasher = D::new();
    Digest::update(&mut hasher, [0u8; 8]);
    Digest::update(&mut hasher, D::digest(message));
    Digest::update(&mut hasher, salt);
    hasher.finalize()[..] == *h
}

/// MGF1 (§B.2.1): Hash(seed || counter) blocks, truncated to `len`.
fn mgf1<D: Digest>(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + <D as Digest>::output_size());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut hasher = D::new();
        Digest::update(&mut hasher, seed);
        Digest::update(&mut hasher, counter.to_be_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
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

    use crate::crypto::{Algorithm, Family, KeyMaterial, Verifier};
    use jsonwebtoken::DecodingKey;
    use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;

    /// Verifies a compact JWS with license-gate's verifier for `alg`.
    fn verifies(alg: Algorithm, key: &KeyMaterial, token: &str) -> bool {
        let (message, signature) = token.rsplit_once('.').unwrap();
        Verifier::new(alg, key).unwrap().verify(message.as_bytes(), &b64(signature))
    }

    /// jsonwebtoken's name for the same algorithm (its RustCrypto provider is the reference).
    fn reference_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
        alg.name().parse().unwrap()
    }

    // RFC 7515 Appendix A.2: RS256.
    const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    const RFC7515_A2_JWS: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

    // RFC 8037 Appendix A.4: EdDSA (Ed25519).
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    #[test]
    fn rfc7515_a2_rs256_vector() {
        let key = KeyMaterial::Rsa { n: b64(RFC7515_A2_N), e: vec![1, 0, 1] };
        assert!(verifies(Algorithm::RS256, &key, RFC7515_A2_JWS));
        // One bit off anywhere: refused.
        let tampered = RFC7515_A2_JWS.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Uj", 1);
        assert!(!verifies(Algorithm::RS256, &key, &tampered));
        assert!(!verifies(Algorithm::RS384, &key, RFC7515_A2_JWS), "the hash is part of the encoding");
        assert_eq!(RsaKey::new(&b64(RFC7515_A2_N), &[1, 0, 1]).map(|k| k.bits()), Ok(2048));
    }

    #[test]
    fn rfc8037_eddsa_vector() {
        let key = KeyMaterial::Ed(b64(RFC8037_X));
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
            let jsonwebtoken::DecodingKeyKind::SecretOrDer(der) = public.kind() else { unreachable!() };
            let material = KeyMaterial::rsa_from_pkcs1_der(der).unwrap();
            for alg in Algorithm::ALL.into_iter().filter(|alg| alg.family() == Family::Rsa) {
                let fast = Verifier::new(alg, &material).unwrap();
                let reference = (DEFAULT_PROVIDER.verifier_factory)(&reference_alg(alg), &public).unwrap();
                for i in 0..4 {
                    let message = format!("header.payload-{i}-{bits}");
                    let signature =
                        b64(&jsonwebtoken::crypto::sign(message.as_bytes(), &private, reference_alg(alg)).unwrap());
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
                            fast.verify(msg, &sig),
                            reference.verify(msg, &sig).is_ok(),
                            "{alg:?} rsa{bits} message {i} case {j}"
                        );
                        assert_eq!(fast.verify(msg, &sig), j == 0, "{alg:?} rsa{bits} case {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn unusable_keys() {
        let n = b64(RFC7515_A2_N);
        assert_eq!(RsaKey::new(&[0x10; 600], &[1, 0, 1]).err(), Some(RsaKeyError::TooLong(4797)));
        assert_eq!(RsaKey::new(&n[..128], &[1, 0, 1]).err(), Some(RsaKeyError::TooShort(1024)));
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert_eq!(RsaKey::new(&even, &[1, 0, 1]).err(), Some(RsaKeyError::Invalid));
        assert_eq!(RsaKey::new(&n, &[1; 9]).err(), Some(RsaKeyError::Invalid), "exponent over 64 bits");
        for e in [&[][..], &[0], &[1], &[0, 0, 1], &[2], &[1, 0, 0]] {
            assert_eq!(RsaKey::new(&n, e).err(), Some(RsaKeyError::WeakExponent), "exponent {e:?}");
        }
        assert!(RsaKey::new(&n, &[3]).is_ok(), "e = 3");
        assert!(RsaKey::new(&n, &[0, 1, 0, 1]).is_ok(), "e = 65537 with a leading zero");
    }
}

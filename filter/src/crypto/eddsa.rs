//! Ed25519 verification (EdDSA) with fixed-base tables.
//!
//! `ed25519-dalek`'s `verify_strict` computes `[k](-A) + [s]B` with a
//! variable-time double-scalar multiplication (about 253 doublings), then
//! compresses the result (a field inversion) to compare it with `R`. Here
//! both points are fixed, as for ECDSA: `B` forever, `A` for as long as the
//! configuration lives. curve25519-dalek's radix-16 basepoint tables of
//! `B` and of `-A` (built once, 30 KB each) turn each product into 64
//! additions and 4 doublings, and `R` is compared as a point (projective
//! coordinates, no inversion) once its encoding is known to be canonical.
//!
//! The group arithmetic is curve25519-dalek's; this file only chooses the
//! points. The verdicts are `verify_strict`'s (RFC 8032 §5.1.7 with a
//! canonical `s`, a canonical `R` and neither `R` nor `A` of small order),
//! and the tests hold them to it.

use std::sync::OnceLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha512};

/// The table of B, built on first use: curve25519-dalek's static copy would
/// add 30 KB to the module.
fn basepoint_table() -> &'static EdwardsBasepointTable {
    static TABLE: OnceLock<EdwardsBasepointTable> = OnceLock::new();
    TABLE.get_or_init(|| EdwardsBasepointTable::create(&ED25519_BASEPOINT_POINT))
}

/// An Ed25519 public key, with its table built on first use (or by
/// [`Ed25519Key::prepare`]).
pub struct Ed25519Key {
    /// `A` as encoded in the key: hashed into every challenge.
    encoded: [u8; 32],
    minus_a: EdwardsPoint,
    table: OnceLock<Box<EdwardsBasepointTable>>,
}

impl Ed25519Key {
    /// From a key `ed25519-dalek` decoded; the caller has refused keys of
    /// small order (`crypto::ed25519_key`).
    pub fn new(key: &ed25519_dalek::VerifyingKey) -> Ed25519Key {
        Ed25519Key { encoded: key.to_bytes(), minus_a: -key.to_edwards(), table: OnceLock::new() }
    }

    /// Builds the tables now rather than on the first signature.
    pub fn prepare(&self) {
        let _ = basepoint_table();
        let _ = self.table();
    }

    fn table(&self) -> &EdwardsBasepointTable {
        self.table.get_or_init(|| Box::new(EdwardsBasepointTable::create(&self.minus_a)))
    }

    /// Checks a JWS EdDSA signature (`R || s`, 64 bytes) of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some((r_bytes, s_bytes)) = signature.split_first_chunk::<32>() else { return false };
        let Ok(s_bytes) = <[u8; 32]>::try_from(s_bytes) else { return false };
        // s < ℓ: no malleable signatures.
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else { return false };
        // verify_strict compares encodings; comparing points instead is the
        // same only for a canonical encoding of R.
        if !canonical_y(r_bytes) {
            return false;
        }
        let Some(r) = CompressedEdwardsY(*r_bytes).decompress() else { return false };
        // Also rules out the two points with x = 0 (the identity and the
        // point of order 2), whose sign bit could be set without changing them.
        if r.is_small_order() {
            return false;
        }
        let k = Scalar::from_hash(Sha512::new().chain_update(r_bytes).chain_update(self.encoded).chain_update(message));
        // [s]B - [k]A = R, the verification equation of RFC 8032 §5.1.7 without the cofactor.
        basepoint_table().mul_base(&s) + self.table().mul_base(&k) == r
    }
}

/// The y coordinate of an encoded point (its low 255 bits) is below
/// p = 2^255 - 19. The 19 encodings at or above p decode to the same points
/// as small values of y.
fn canonical_y(encoded: &[u8; 32]) -> bool {
    let (low, rest) = encoded.split_at(1);
    let (middle, top) = rest.split_at(30);
    let at_least_p = low.first().is_some_and(|b| *b >= 0xed)
        && middle.iter().all(|b| *b == 0xff)
        && top.first().is_some_and(|b| b & 0x7f == 0x7f);
    !at_least_p
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::traits::Identity;
    use ed25519_dalek::{Signer, SigningKey};

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn canonical_y_refuses_exactly_the_encodings_at_or_above_p() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!canonical_y(&p));
        let mut below = p;
        below[0] = 0xec;
        assert!(canonical_y(&below));
        let mut top = [0xffu8; 32];
        top[31] = 0xff; // sign bit set, y = 2^255 - 1
        assert!(!canonical_y(&top));
        assert!(canonical_y(&[0u8; 32]));
    }

    #[test]
    fn verdicts_agree_with_ed25519_dalek_verify_strict() {
        for seed in 1..6u8 {
            let signer = signing_key(seed);
            let verifying = signer.verifying_key();
            let key = Ed25519Key::new(&verifying);
            for n in 0..8usize {
                let message = format!("license-gate {seed} {n}").into_bytes();
                let good = signer.sign(&message).to_bytes();
                let mut candidates = vec![good.to_vec()];
                // A flipped bit in each part, s + ℓ (malleable), a short one.
                let mut bad = good;
                bad[n % 64] ^= 1 << (n % 8);
                candidates.push(bad.to_vec());
                let mut malleable = good;
                let (_, s_part) = malleable.split_at_mut(32);
                add_order(s_part);
                candidates.push(malleable.to_vec());
                candidates.push(good[..63].to_vec());
                // R plus a point of order 8: not of small order itself, so it
                // passes that check, and the equation refuses it.
                let r = CompressedEdwardsY(good[..32].try_into().unwrap()).decompress().unwrap();
                let mut mixed = good;
                mixed[..32].copy_from_slice((r + EIGHT_TORSION[1]).compress().as_bytes());
                candidates.push(mixed.to_vec());
                for candidate in candidates {
                    let expected = <[u8; 64]>::try_from(candidate.as_slice())
                        .map(|b| verifying.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&b)).is_ok())
                        .unwrap_or(false);
                    assert_eq!(key.verify(&message, &candidate), expected, "seed {seed}, case {n}");
                }
                assert!(key.verify(&message, &good));
            }
        }
    }

    /// `s + ℓ`, little-endian in place: the same point, a malleable encoding.
    fn add_order(s: &mut [u8]) {
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, o) in s.iter_mut().zip(ORDER) {
            let sum = u16::from(*b) + u16::from(o) + carry;
            *b = sum as u8;
            carry = sum >> 8;
        }
    }

    #[test]
    fn a_small_order_r_is_refused_even_when_the_equation_holds() {
        // R = identity and s = k·a: [s]B - [k]A = identity holds, yet a
        // small-order R lets one signature verify under several keys.
        let signer = signing_key(7);
        let key = Ed25519Key::new(&signer.verifying_key());
        let r = CompressedEdwardsY::identity().to_bytes();
        let message = b"license-gate: small order";
        let k = Scalar::from_hash(
            Sha512::new().chain_update(r).chain_update(signer.verifying_key().to_bytes()).chain_update(message),
        );
        let s = k * signer.to_scalar();
        assert_eq!(ED25519_BASEPOINT_POINT * s - signer.verifying_key().to_edwards() * k, EdwardsPoint::default());
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r);
        signature[32..].copy_from_slice(&s.to_bytes());
        assert!(!key.verify(message, &signature));
    }

    #[test]
    fn prepare_builds_the_table_and_a_first_signature_would_have() {
        let signer = signing_key(3);
        let key = Ed25519Key::new(&signer.verifying_key());
        assert!(key.table.get().is_none());
        key.prepare();
        assert!(key.table.get().is_some());
        let lazy = Ed25519Key::new(&signer.verifying_key());
        assert!(lazy.verify(b"m", &signer.sign(b"m").to_bytes()));
        assert!(lazy.table.get().is_some());
    }

    #[test]
    fn a_non_canonical_r_is_refused() {
        let signer = signing_key(9);
        let key = Ed25519Key::new(&signer.verifying_key());
        let mut signature = signer.sign(b"m").to_bytes();
        // y = p + 1 encodes the same y as 1 (a small-order point), and y = p + 2.. the
        // points of y = 2..: either way verify_strict refuses it.
        signature[..32].copy_from_slice(&{
            let mut y = [0xffu8; 32];
            y[0] = 0xef;
            y[31] = 0x7f;
            y
        });
        assert!(!key.verify(b"m", &signature));
    }
}

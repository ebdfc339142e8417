//! ECDSA verification (ES256, ES384) with precomputed fixed-base tables.
//!
//! RustCrypto's `p256`/`p384` verify by computing `u1·G + u2·Q` from
//! scratch for every signature (0.13: two constant-time scalar
//! multiplications, 4 doublings and a 16-way table scan per 4-bit window;
//! 0.14: a variable-time wNAF combination), their tables rebuilt per call.
//! Verification handles only public data, so it may be variable-time, and
//! both points are fixed: G forever, Q for as long as the configuration
//! lives. Tables of `d·2^(bw)·P` for signed digits `d` (a negative digit
//! subtracts its point: negation is one field negation) turn each
//! multiplication into one addition per window of `b` bits, no doubling.
//!
//! The group arithmetic (field, point addition, normalisation, scalar
//! inversion) is the curve crate's; this file only chooses which points to
//! add. The verification equation is FIPS 186's, as in
//! `ecdsa::hazmat::verify_prehashed`, and the tests hold it to RustCrypto's
//! own verifier. The 0.14 curve crates (elliptic-curve 0.14) replaced the
//! 0.13 line here: p384's field moved from fiat-crypto's unrolled 12-limb
//! products to Montgomery arithmetic on crypto-bigint, 73 KB less module and
//! misses 8 % (ES256) and 23 % (ES384) fewer instructions (issue 13).

use std::sync::OnceLock;

use ecdsa::{EcdsaCurve, Signature};
use elliptic_curve::group::{Curve as _, Group};
use elliptic_curve::ops::{Invert, Reduce};
use elliptic_curve::point::AffineCoordinates;
use elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytes, PrimeField, ProjectivePoint, Scalar};
use sha2::Digest;

/// The curves this verifier is built for, with the hash JWS pairs them with.
pub trait JwsCurve: EcdsaCurve + CurveArithmetic {
    type Hash: Digest;
    /// Window bits of the generator's table (one per VM) and of a key's
    /// (one per key): each window costs one addition per signature, each
    /// bit more doubles a window's points.
    const GENERATOR_WINDOW: usize;
    const KEY_WINDOW: usize;
    /// The generator's table, built once per VM on first use.
    fn generator_table() -> &'static FixedBase<Self>;
}

/// P-256: 37 additions for G (2,368 points, 170 KB per VM) and 43 for the
/// key (1,376 points, 99 KB per key); 104 with the unsigned 5-bit tables
/// before (issue 13, BENCHMARKS.md).
impl JwsCurve for p256::NistP256 {
    type Hash = sha2::Sha256;
    const GENERATOR_WINDOW: usize = 7;
    const KEY_WINDOW: usize = 6;
    fn generator_table() -> &'static FixedBase<Self> {
        static TABLE: OnceLock<FixedBase<p256::NistP256>> = OnceLock::new();
        TABLE.get_or_init(|| FixedBase::new(p256::ProjectivePoint::GENERATOR, Self::GENERATOR_WINDOW))
    }
}

/// P-384: 65 additions per table (2,080 points, 216 KB each).
impl JwsCurve for p384::NistP384 {
    type Hash = sha2::Sha384;
    const GENERATOR_WINDOW: usize = 6;
    const KEY_WINDOW: usize = 6;
    fn generator_table() -> &'static FixedBase<Self> {
        static TABLE: OnceLock<FixedBase<p384::NistP384>> = OnceLock::new();
        TABLE.get_or_init(|| FixedBase::new(p384::ProjectivePoint::GENERATOR, Self::GENERATOR_WINDOW))
    }
}

/// `table[w * half + d - 1] = d · 2^(bits·w) · P` for every window `w` and
/// every digit `d` in `1..=half` (`half = 2^(bits-1)`). A scalar is recoded
/// into signed digits `-half < d <= half`, so a table holds half the points
/// an unsigned one of the same window would.
pub struct FixedBase<C: CurveArithmetic> {
    bits: usize,
    // Affine, normalised in one batch (one inversion for the whole table):
    // two coordinates instead of three, and a mixed addition is cheaper
    // than a projective one.
    table: Vec<AffinePoint<C>>,
}

impl<C: CurveArithmetic> FixedBase<C> {
    fn new(point: ProjectivePoint<C>, bits: usize) -> Self {
        let half = 1usize << (bits - 1);
        // Windows up to bit NUM_BITS included: the top window of a scalar
        // below 2^NUM_BITS is then at most half, and no carry leaves it.
        let windows = (Scalar::<C>::NUM_BITS as usize + 1).div_ceil(bits);
        let mut table = Vec::with_capacity(windows * half);
        let mut base = point;
        for _ in 0..windows {
            let mut multiple = base;
            for _ in 1..half {
                table.push(multiple);
                multiple += base;
            }
            table.push(multiple);
            // `multiple` is half · base: the next window's base is twice it.
            base = multiple.double();
        }
        let mut affine = vec![AffinePoint::<C>::default(); table.len()];
        ProjectivePoint::<C>::batch_normalize(&table, &mut affine);
        FixedBase { bits, table: affine }
    }

    /// `k · P`, variable-time (k is public: it comes from the signature).
    fn mul(&self, k: &Scalar<C>) -> ProjectivePoint<C> {
        let repr = k.to_repr();
        let bytes: &[u8] = repr.as_ref(); // big-endian
        let bit =
            |i: usize| bytes.len().checked_sub(1 + i / 8).and_then(|b| bytes.get(b)).map_or(0, |b| (b >> (i % 8)) & 1);
        let half = 1usize << (self.bits - 1);
        let mut acc = ProjectivePoint::<C>::identity();
        let mut carry = 0;
        for (window, points) in self.table.chunks(half).enumerate() {
            let value = (0..self.bits).fold(carry, |v, j| v + (usize::from(bit(window * self.bits + j)) << j));
            // value - 2^bits when above half: a negative digit, and a carry
            // of 2^bits into the next window.
            carry = usize::from(value > half);
            let magnitude = if carry == 1 { (1 << self.bits) - value } else { value };
            if let Some(point) = magnitude.checked_sub(1).and_then(|i| points.get(i)) {
                if carry == 1 {
                    acc -= *point;
                } else {
                    acc += *point;
                }
            }
        }
        acc
    }
}

/// A configured ECDSA public key with its table, built on first use (or by
/// [`EcdsaKey::prepare`]): a fetched JWKS may hold many keys no token names.
pub struct EcdsaKey<C: JwsCurve> {
    point: ProjectivePoint<C>,
    table: OnceLock<FixedBase<C>>,
}

impl<C: JwsCurve> EcdsaKey<C> {
    pub fn new(point: AffinePoint<C>) -> Self {
        EcdsaKey { point: point.into(), table: OnceLock::new() }
    }

    /// Builds the key's table and the curve generator's now (a few ms for
    /// P-256) instead of on the first request that names the key.
    pub fn prepare(&self) {
        let _ = C::generator_table();
        let _ = self.table();
    }

    fn table(&self) -> &FixedBase<C> {
        self.table.get_or_init(|| FixedBase::new(self.point, C::KEY_WINDOW))
    }

    /// Verifies a JWS signature: fixed-width `r || s` over `SHA-x(message)`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::<C>::from_slice(signature) else {
            return false; // r or s zero, out of range, or the wrong length
        };
        // SHA-256 for P-256, SHA-384 for P-384: the digest is exactly as
        // long as the order, so bits2int neither pads nor truncates.
        let Ok(z) = FieldBytes::<C>::try_from(&C::Hash::digest(message)[..]) else {
            return false;
        };
        let z = <Scalar<C> as Reduce<FieldBytes<C>>>::reduce(&z);
        let (r, s) = signature.split_scalars();
        let s_inv = *s.invert_vartime();
        let (u1, u2) = (z * s_inv, *r * s_inv);
        let sum = C::generator_table().mul(&u1) + self.table().mul(&u2);
        // The identity's affine x is zero, never equal to a non-zero r.
        let x = sum.to_affine().x();
        <Scalar<C> as Reduce<FieldBytes<C>>>::reduce(&x) == *r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elliptic_curve::Field;

    #[test]
    fn prepare_builds_the_tables() {
        let key = EcdsaKey::<p384::NistP384>::new(p384::AffinePoint::GENERATOR);
        assert!(key.table.get().is_none());
        key.prepare();
        assert!(key.table.get().is_some());
    }
    use p256::ecdsa::signature::{Signer, Verifier};

    /// A deterministic stream of scalars, no RNG crate needed.
    fn scalars<C: CurveArithmetic>(n: usize) -> Vec<Scalar<C>> {
        (0..n as u64)
            .map(|i| {
                let seed = Scalar::<C>::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
                seed.square().square() * seed + Scalar::<C>::from(i)
            })
            .collect()
    }

    /// Scalars whose windows carry into the next one: all ones, runs of
    /// ones ending at a window's top, n - 1, and powers of two.
    fn carry_scalars<C: CurveArithmetic>() -> Vec<Scalar<C>> {
        let mut ks = vec![Scalar::<C>::ZERO, Scalar::<C>::ONE, -Scalar::<C>::ONE];
        let mut power = Scalar::<C>::ONE;
        for i in 0..Scalar::<C>::NUM_BITS {
            ks.push(power);
            ks.push(power - Scalar::<C>::ONE);
            if i % 6 == 5 {
                ks.push(-power);
            }
            power = power.double();
        }
        ks
    }

    #[test]
    fn fixed_base_multiplication_agrees_with_the_curve_crate() {
        let g = p256::ProjectivePoint::GENERATOR;
        for bits in [2, 5, 6, 7] {
            let table = FixedBase::<p256::NistP256>::new(g, bits);
            let ks = scalars::<p256::NistP256>(40).into_iter().chain(carry_scalars::<p256::NistP256>());
            for k in ks {
                assert_eq!(table.mul(&k), g * k, "{bits}-bit windows");
            }
        }
        let g = p384::ProjectivePoint::GENERATOR;
        let table = FixedBase::<p384::NistP384>::new(g, p384::NistP384::KEY_WINDOW);
        for k in scalars::<p384::NistP384>(20).into_iter().chain(carry_scalars::<p384::NistP384>()) {
            assert_eq!(table.mul(&k), g * k);
        }
    }

    #[test]
    fn verdicts_agree_with_rustcrypto_p256() {
        let secret = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let public = *secret.verifying_key();
        let ours = EcdsaKey::<p256::NistP256>::new(*public.as_affine());
        for i in 0..30u32 {
            let message = format!("header.payload-{i}");
            let signature: p256::ecdsa::Signature = secret.sign(message.as_bytes());
            let mut bytes = signature.to_bytes().to_vec();
            assert!(ours.verify(message.as_bytes(), &bytes), "valid signature {i}");
            assert!(!ours.verify(format!("{message}x").as_bytes(), &bytes), "other message {i}");
            bytes[(i as usize) % 64] ^= 1 << (i % 8);
            let theirs = p256::ecdsa::Signature::from_slice(&bytes)
                .map(|s| public.verify(message.as_bytes(), &s).is_ok())
                .unwrap_or(false);
            assert!(!theirs);
            assert_eq!(ours.verify(message.as_bytes(), &bytes), theirs, "tampered signature {i}");
        }
        // A zero r or s, a short signature: refused, never a panic.
        assert!(!ours.verify(b"m", &[0u8; 64]));
        assert!(!ours.verify(b"m", &[1u8; 63]));
    }

    #[test]
    fn verdicts_agree_with_rustcrypto_p384() {
        let secret = p384::ecdsa::SigningKey::from_bytes(&[9u8; 48].into()).unwrap();
        let public = *secret.verifying_key();
        let ours = EcdsaKey::<p384::NistP384>::new(*public.as_affine());
        for i in 0..10u32 {
            let message = format!("header.payload-{i}");
            let signature: p384::ecdsa::Signature = secret.sign(message.as_bytes());
            let mut bytes = signature.to_bytes().to_vec();
            assert!(ours.verify(message.as_bytes(), &bytes));
            bytes[(i as usize * 7) % 96] ^= 0x40;
            assert!(!ours.verify(message.as_bytes(), &bytes));
        }
    }
}

//! Wycheproof test vectors against license-gate's own signature verifiers.
//!
//! Every vector goes through `license_gate::crypto::Verifier`, what the module
//! verifies tokens with, on key material built the way the configuration
//! builds it (`keys.rs`): PKCS#1 DER for RSA, the SEC1 point for ECDSA, the
//! raw 32 bytes for Ed25519, the secret for HMAC.
//!
//! Wycheproof's verdicts: "valid" must verify, "invalid" must be refused. For
//! "acceptable" and for what JWS (RFC 7518) rules out, the policies asserted are:
//!
//! - ECDSA (ES256, ES384; P1363 `r || s`): acceptable vectors ACCEPTED (these
//!   files have none). High-S signatures are ACCEPTED, as BoringSSL does and as
//!   RFC 7518 allows: for every valid vector, its twin `(r, n - s)` must verify
//!   too. A P1363 file hashed with SHA-512 must be refused whole: ES256 and
//!   ES384 hash with SHA-256 and SHA-384.
//! - RSA PKCS#1 v1.5 (RS256/384/512): acceptable vectors (a DigestInfo without
//!   its NULL parameter, flag `MissingNull`) REFUSED: the encoding is compared
//!   byte for byte, as BoringSSL does. Keys outside 2048..=4096 bits are refused
//!   by the factory with `RsaKeyError::TooLong`/`TooShort`: the 8192-bit files
//!   assert that every group is refused with exactly `TooLong(8192)`.
//! - RSA-PSS (PS256/384/512): only MGF1 with the message hash and a salt as
//!   long as the hash is JWS (RFC 7518 §3.5). Groups with those parameters
//!   follow Wycheproof; every other group (salt 0 or of another length, another
//!   MGF1 hash, SHA-1/SHA-224 messages) must be refused whole, valid vectors
//!   included, with one exception: a vector Wycheproof re-signed with the JWS
//!   salt length (comment `s_len changed to <hash length>`, "invalid" for its
//!   group) is a genuine JWS signature and must be ACCEPTED. A group whose hash
//!   no PS algorithm uses is tried with all three. Acceptable vectors REFUSED
//!   (none in these files).
//! - Ed25519 (EdDSA, strict verification): acceptable vectors REFUSED (none).
//! - HMAC (HS256/384/512): JWS never truncates a tag, so every vector whose
//!   `tagSize` is shorter than the hash output is REFUSED, valid or not;
//!   full-length tags follow Wycheproof whatever the key length (the minimum
//!   secret length is the configuration's business, not the verifier's).
//!   Acceptable vectors REFUSED (none).
//!
//! A key the factory refuses where the table expects a usable key, or accepts
//! where it expects a refusal, fails the test. Every file must run at least one
//! vector, except the 8192-bit RSA files, whose every group must be refused.
//! Each test prints its per-file counts (`cargo test --test wycheproof -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt::Debug;

use license_gate::crypto::rsa::{MAX_BITS, MIN_BITS, RsaKey, RsaKeyError};
use license_gate::crypto::{Algorithm, KeyError, KeyMaterial, Verifier};
use wycheproof::{EllipticCurve, HashFunction, Mgf, TestResult};

/// The verdict our verifier must give one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Accept,
    Refuse,
}

impl Expect {
    /// Wycheproof's verdict, with the family's policy for "acceptable".
    fn from_wycheproof(result: TestResult, acceptable: Expect) -> Expect {
        match result {
            TestResult::Valid => Expect::Accept,
            TestResult::Invalid => Expect::Refuse,
            TestResult::Acceptable => acceptable,
        }
    }
}

/// What is expected of the keys in an RSA file.
#[derive(Clone, Copy, Debug)]
enum Keys {
    /// Every group's key is usable: all its vectors run.
    Usable,
    /// Every group's key has this many bits, outside `MIN_BITS..=MAX_BITS`,
    /// and the factory refuses it for exactly that reason.
    Refused(usize),
}

fn verifier(alg: Algorithm, key: &KeyMaterial) -> Result<Verifier, KeyError> {
    Verifier::new(alg, key)
}

fn verifies(verifier: &Verifier, message: &[u8], signature: &[u8]) -> bool {
    verifier.verify(message, signature)
}

/// One file's counts and failures.
struct Tally {
    file: &'static str,
    /// `numberOfTests` in the file.
    total: usize,
    /// Vectors run through a verifier (a vector tried with several algorithms counts once).
    vectors: usize,
    /// Of those: Wycheproof's valid, invalid and acceptable.
    by_result: [usize; 3],
    accepted: usize,
    refused: usize,
    /// Vectors held refused by JWS policy whatever Wycheproof says (truncated
    /// HMAC tags, PSS parameters or ECDSA hashes that are not JWS's).
    policy_refused: usize,
    /// Vectors held accepted by JWS policy against Wycheproof's "invalid"
    /// (PSS signatures re-signed with JWS's salt length in a group that is not).
    policy_accepted: usize,
    /// Extra checks beyond the file's vectors (ECDSA high-S twins).
    extra: usize,
    /// Whether the table expects every key of the file refused.
    keys_expected_refused: bool,
    /// Groups whose key the factory refused, as expected: (tcIds, vectors, reason).
    keys_refused: Vec<(String, usize, String)>,
    failures: Vec<String>,
}

impl Tally {
    fn new(file: &'static str, total: usize) -> Tally {
        Tally {
            file,
            total,
            vectors: 0,
            by_result: [0; 3],
            accepted: 0,
            refused: 0,
            policy_refused: 0,
            policy_accepted: 0,
            extra: 0,
            keys_expected_refused: false,
            keys_refused: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, message: String) {
        self.failures.push(format!("{}: {message}", self.file));
    }

    /// Records one verdict (`count`: whether it is a new vector, not a re-run).
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        count: bool,
        alg: Algorithm,
        tc_id: usize,
        comment: &str,
        flags: &dyn Debug,
        result: TestResult,
        expect: Expect,
        accepted: bool,
    ) {
        if count {
            self.vectors += 1;
            self.by_result[match result {
                TestResult::Valid => 0,
                TestResult::Invalid => 1,
                TestResult::Acceptable => 2,
            }] += 1;
            if accepted {
                self.accepted += 1;
            } else {
                self.refused += 1;
            }
        }
        if accepted != (expect == Expect::Accept) {
            let got = if accepted { "accepted" } else { "refused" };
            self.fail(format!(
                "tcId {tc_id} with {alg:?}: Wycheproof says {result:?}, expected {expect:?}, {got}; \
                 comment {comment:?}; flags {flags:?}"
            ));
        }
    }

    fn key_vectors_refused(&self) -> usize {
        self.keys_refused.iter().map(|(_, n, _)| n).sum()
    }
}

/// Prints the counts and fails on any failure, or on a file that ran no vector.
fn finish(family: &str, tallies: Vec<Tally>) {
    println!("{family}:");
    let mut failures = Vec::new();
    for t in &tallies {
        let [valid, invalid, acceptable] = t.by_result;
        println!(
            "  {}: {} of {} vectors run (valid {valid}, invalid {invalid}, acceptable {acceptable}); \
             accepted {} (of which {} by JWS policy), refused {} (of which {} by JWS policy); {} extra checks; \
             key refused in {} groups ({} vectors)",
            t.file,
            t.vectors,
            t.total,
            t.accepted,
            t.policy_accepted,
            t.refused,
            t.policy_refused,
            t.extra,
            t.keys_refused.len(),
            t.key_vectors_refused(),
        );
        for (tc_ids, n, reason) in &t.keys_refused {
            println!("    key refused ({n} vectors, tcId {tc_ids}): {reason}");
        }
        if t.vectors + t.key_vectors_refused() != t.total {
            failures.push(format!(
                "{}: {} vectors run + {} under refused keys != {} in the file",
                t.file,
                t.vectors,
                t.key_vectors_refused(),
                t.total
            ));
        }
        // Every file runs a vector, but those whose keys the table expects refused.
        if t.keys_expected_refused {
            if t.vectors > 0 || t.keys_refused.is_empty() {
                failures.push(format!("{}: expected every key refused", t.file));
            }
        } else if t.vectors == 0 {
            failures.push(format!("{}: no vector ran", t.file));
        }
        failures.extend(t.failures.iter().cloned());
    }
    assert!(failures.is_empty(), "{family}: {} failures:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// ECDSA, P1363 (r || s) signatures: ES256 and ES384.

use wycheproof::ecdsa::TestName as EcdsaFile;

/// (file, algorithm, whether the file's hash is the algorithm's: if not, every vector is refused).
const ECDSA_FILES: &[(EcdsaFile, &str, Algorithm, bool)] = &[
    (EcdsaFile::EcdsaSecp256r1Sha256P1363, "ecdsa_secp256r1_sha256_p1363", Algorithm::ES256, true),
    (EcdsaFile::EcdsaSecp384r1Sha384P1363, "ecdsa_secp384r1_sha384_p1363", Algorithm::ES384, true),
    (EcdsaFile::EcdsaSecp256r1Sha512P1363, "ecdsa_secp256r1_sha512_p1363", Algorithm::ES256, false),
    (EcdsaFile::EcdsaSecp384r1Sha512P1363, "ecdsa_secp384r1_sha512_p1363", Algorithm::ES384, false),
];

/// Policy for Wycheproof's "acceptable" ECDSA vectors.
const ECDSA_ACCEPTABLE: Expect = Expect::Accept;

/// Group orders, big-endian (SEC 2 §2.4.2, §2.5.1).
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_ORDER: &str =
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `(r, n - s)`: the other signature the same (r, s) stands for.
fn high_s_twin(signature: &[u8], order: &[u8]) -> Vec<u8> {
    let (r, s) = signature.split_at(order.len());
    let mut twin = vec![0; order.len()];
    let mut borrow = 0i16;
    for i in (0..order.len()).rev() {
        let d = i16::from(order[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        twin[i] = d.rem_euclid(256) as u8;
    }
    assert_eq!(borrow, 0, "s is below the order");
    [r, &twin].concat()
}

#[test]
fn ecdsa_p1363() {
    let mut tallies = Vec::new();
    for &(file, name, alg, jws_hash) in ECDSA_FILES {
        assert_eq!(name.parse::<EcdsaFile>().ok(), Some(file), "the table names {name} wrongly");
        let set = wycheproof::ecdsa::TestSet::load(file).unwrap();
        let mut tally = Tally::new(name, set.number_of_tests);
        let (curve, hash, order) = match alg {
            Algorithm::ES256 => (EllipticCurve::Secp256r1, HashFunction::Sha2_256, hex(P256_ORDER)),
            _ => (EllipticCurve::Secp384r1, HashFunction::Sha2_384, hex(P384_ORDER)),
        };
        for group in &set.test_groups {
            assert_eq!(group.key.curve, curve, "{name}: the table pairs the file with the wrong algorithm");
            assert_eq!(group.hash == hash, jws_hash, "{name}: the file's hash is not what the table says");
            let key = KeyMaterial::Ec(group.key.key.to_vec());
            let verifier = match verifier(alg, &key) {
                Ok(v) => v,
                Err(e) => {
                    let ids: Vec<_> = group.tests.iter().map(|t| t.tc_id).collect();
                    tally.fail(format!("key of tcId {ids:?} refused: {e}"));
                    continue;
                }
            };
            for test in &group.tests {
                let expect = if jws_hash {
                    Expect::from_wycheproof(test.result, ECDSA_ACCEPTABLE)
                } else {
                    tally.policy_refused += 1;
                    Expect::Refuse
                };
                let accepted = verifies(&verifier, &test.msg, &test.sig);
                tally.check(true, alg, test.tc_id, &test.comment, &test.flags, test.result, expect, accepted);
                // High-S policy: the twin of every valid signature verifies too.
                if jws_hash && test.result == TestResult::Valid {
                    let twin = high_s_twin(&test.sig, &order);
                    let accepted = verifies(&verifier, &test.msg, &twin);
                    tally.extra += 1;
                    let comment = format!("{} [its (r, n - s) twin]", test.comment);
                    tally.check(false, alg, test.tc_id, &comment, &test.flags, test.result, Expect::Accept, accepted);
                }
            }
        }
        tallies.push(tally);
    }
    finish("ECDSA (P1363)", tallies);
}

// ---------------------------------------------------------------------------
// RSA keys, shared by PKCS#1 v1.5 and PSS.

/// The verifier for an RSA group's key, built from its PKCS#1 DER (as a PEM
/// key is) and checked against the JWK path (modulus and exponent), or `None`
/// when the key is refused, recorded in `tally`.
fn rsa_verifier(
    tally: &mut Tally,
    keys: Keys,
    alg: Algorithm,
    group: (&[u8], &[u8], &[u8], usize),
    tc_ids: &[usize],
) -> Option<Verifier> {
    let (asn, n, e, key_size) = group;
    let from_der = verifier(alg, &KeyMaterial::rsa_from_pkcs1_der(asn).unwrap());
    let from_components = verifier(alg, &KeyMaterial::Rsa { n: n.to_vec(), e: e.to_vec() });
    let direct = RsaKey::new(n, e).map(|k| k.bits());
    let ids = format!("{}..={}", tc_ids.first().unwrap_or(&0), tc_ids.last().unwrap_or(&0));
    match (keys, from_der) {
        (Keys::Usable, Ok(v)) => {
            if let Err(err) = from_components {
                tally.fail(format!("key of tcId {ids}: DER accepted, but (n, e) refused: {err}"));
            }
            if direct != Ok(key_size) {
                tally.fail(format!("key of tcId {ids}: {key_size} bits, RsaKey::new says {direct:?}"));
            }
            Some(v)
        }
        (Keys::Refused(bits), Err(err)) => {
            let reason = if bits > MAX_BITS { RsaKeyError::TooLong(bits) } else { RsaKeyError::TooShort(bits) };
            assert!(!(MIN_BITS..=MAX_BITS).contains(&bits), "the table expects a usable size to be refused");
            let is_reason = |k: &KeyError| matches!(k, KeyError::Rsa(r) if *r == reason);
            if key_size != bits || direct != Err(reason.clone()) || !is_reason(&err) {
                tally.fail(format!("key of tcId {ids} ({key_size} bits): refused with {err:?}, expected {reason:?}"));
            }
            match &from_components {
                Err(e) if is_reason(e) => {}
                other => tally.fail(format!("key of tcId {ids}: (n, e) gave {:?}", other.as_ref().err())),
            }
            tally.keys_refused.push((ids, tc_ids.len(), format!("{err}")));
            None
        }
        (Keys::Usable, Err(err)) => {
            tally.fail(format!("key of tcId {ids} ({key_size} bits) refused: {err}"));
            None
        }
        (Keys::Refused(bits), Ok(_)) => {
            tally.fail(format!("key of tcId {ids} ({key_size} bits) accepted, expected refused as {bits} bits"));
            None
        }
    }
}

// ---------------------------------------------------------------------------
// RSA PKCS#1 v1.5: RS256, RS384, RS512.

use wycheproof::rsa_pkcs1_verify::TestName as Pkcs1File;

const PKCS1_FILES: &[(Pkcs1File, &str, Algorithm, Keys)] = &[
    (Pkcs1File::Rsa2048Sha256, "rsa_signature_2048_sha256", Algorithm::RS256, Keys::Usable),
    (Pkcs1File::Rsa2048Sha384, "rsa_signature_2048_sha384", Algorithm::RS384, Keys::Usable),
    (Pkcs1File::Rsa2048Sha512, "rsa_signature_2048_sha512", Algorithm::RS512, Keys::Usable),
    (Pkcs1File::Rsa3072Sha256, "rsa_signature_3072_sha256", Algorithm::RS256, Keys::Usable),
    (Pkcs1File::Rsa3072Sha384, "rsa_signature_3072_sha384", Algorithm::RS384, Keys::Usable),
    (Pkcs1File::Rsa3072Sha512, "rsa_signature_3072_sha512", Algorithm::RS512, Keys::Usable),
    (Pkcs1File::Rsa4096Sha256, "rsa_signature_4096_sha256", Algorithm::RS256, Keys::Usable),
    (Pkcs1File::Rsa4096Sha384, "rsa_signature_4096_sha384", Algorithm::RS384, Keys::Usable),
    (Pkcs1File::Rsa4096Sha512, "rsa_signature_4096_sha512", Algorithm::RS512, Keys::Usable),
    (Pkcs1File::Rsa8192Sha256, "rsa_signature_8192_sha256", Algorithm::RS256, Keys::Refused(8192)),
    (Pkcs1File::Rsa8192Sha384, "rsa_signature_8192_sha384", Algorithm::RS384, Keys::Refused(8192)),
    (Pkcs1File::Rsa8192Sha512, "rsa_signature_8192_sha512", Algorithm::RS512, Keys::Refused(8192)),
];

/// Policy for Wycheproof's "acceptable" PKCS#1 v1.5 vectors (`MissingNull`).
const PKCS1_ACCEPTABLE: Expect = Expect::Refuse;

fn hash_of(alg: Algorithm) -> HashFunction {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 | Algorithm::HS256 => HashFunction::Sha2_256,
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => HashFunction::Sha2_384,
        _ => HashFunction::Sha2_512,
    }
}

#[test]
fn rsa_pkcs1_v15() {
    let mut tallies = Vec::new();
    for &(file, name, alg, keys) in PKCS1_FILES {
        assert_eq!(name.parse::<Pkcs1File>().ok(), Some(file), "the table names {name} wrongly");
        let set = wycheproof::rsa_pkcs1_verify::TestSet::load(file).unwrap();
        let mut tally = Tally::new(name, set.number_of_tests);
        tally.keys_expected_refused = matches!(keys, Keys::Refused(_));
        for group in &set.test_groups {
            assert_eq!(group.hash, hash_of(alg), "{name}: the table pairs the file with the wrong algorithm");
            let tc_ids: Vec<_> = group.tests.iter().map(|t| t.tc_id).collect();
            let key = (&group.asn_key[..], &group.key.n[..], &group.key.e[..], group.key_size);
            let Some(verifier) = rsa_verifier(&mut tally, keys, alg, key, &tc_ids) else { continue };
            for test in &group.tests {
                let expect = Expect::from_wycheproof(test.result, PKCS1_ACCEPTABLE);
                let accepted = verifies(&verifier, &test.msg, &test.sig);
                tally.check(true, alg, test.tc_id, &test.comment, &test.flags, test.result, expect, accepted);
            }
        }
        tallies.push(tally);
    }
    finish("RSA PKCS#1 v1.5", tallies);
}

// ---------------------------------------------------------------------------
// RSA-PSS: PS256, PS384, PS512 (MGF1 with the same hash, salt as long as the hash).

use wycheproof::rsa_pss_verify::TestName as PssFile;

/// Which groups of a PSS file have JWS's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PssParams {
    /// All: every vector follows Wycheproof.
    Jws,
    /// None: every vector is refused.
    Other,
    /// Some of each.
    Mixed,
}

const PSS_FILES: &[(PssFile, &str, PssParams)] = &[
    (PssFile::RsaPss2048Sha256Mgf1SaltLen32, "rsa_pss_2048_sha256_mgf1_32", PssParams::Jws),
    (PssFile::RsaPss2048Sha384Mgf1SaltLen48, "rsa_pss_2048_sha384_mgf1_48", PssParams::Jws),
    (PssFile::RsaPss3072Sha256Mgf1SaltLen32, "rsa_pss_3072_sha256_mgf1_32", PssParams::Jws),
    (PssFile::RsaPss4096Sha256Mgf1SaltLen32, "rsa_pss_4096_sha256_mgf1_32", PssParams::Jws),
    (PssFile::RsaPss4096Sha384Mgf1SaltLen48, "rsa_pss_4096_sha384_mgf1_48", PssParams::Jws),
    (PssFile::RsaPss4096Sha512Mgf1SaltLen64, "rsa_pss_4096_sha512_mgf1_64", PssParams::Jws),
    // Salt lengths JWS does not use: refused, valid signatures included.
    (PssFile::RsaPss2048Sha256Mgf1SaltLen0, "rsa_pss_2048_sha256_mgf1_0", PssParams::Other),
    (PssFile::RsaPss4096Sha512Mgf1SaltLen32, "rsa_pss_4096_sha512_mgf1_32", PssParams::Other),
    // Every hash x MGF1 hash x salt length, all valid signatures.
    (PssFile::RsaPssmisc, "rsa_pss_misc", PssParams::Mixed),
];

/// Policy for Wycheproof's "acceptable" PSS vectors.
const PSS_ACCEPTABLE: Expect = Expect::Refuse;

#[test]
fn rsa_pss() {
    let mut tallies = Vec::new();
    for &(file, name, params) in PSS_FILES {
        assert_eq!(name.parse::<PssFile>().ok(), Some(file), "the table names {name} wrongly");
        let set = wycheproof::rsa_pss_verify::TestSet::load(file).unwrap();
        let mut tally = Tally::new(name, set.number_of_tests);
        let (mut jws_groups, mut other_groups) = (0, 0);
        for group in &set.test_groups {
            let alg = match group.hash {
                HashFunction::Sha2_256 => Some(Algorithm::PS256),
                HashFunction::Sha2_384 => Some(Algorithm::PS384),
                HashFunction::Sha2_512 => Some(Algorithm::PS512),
                _ => None,
            };
            let h_len = match group.hash {
                HashFunction::Sha2_256 => 32,
                HashFunction::Sha2_384 => 48,
                _ => 64,
            };
            let jws = alg.is_some()
                && group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && group.salt_size == h_len;
            if jws {
                jws_groups += 1;
            } else {
                other_groups += 1;
            }
            // A hash no PS algorithm uses: try all three, each must refuse.
            let algs = match alg {
                Some(alg) => vec![alg],
                None => vec![Algorithm::PS256, Algorithm::PS384, Algorithm::PS512],
            };
            let tc_ids: Vec<_> = group.tests.iter().map(|t| t.tc_id).collect();
            let key = (&group.asn_key[..], &group.key.n[..], &group.key.e[..], group.key_size);
            let verifiers: Vec<_> =
                algs.iter().filter_map(|alg| rsa_verifier(&mut tally, Keys::Usable, *alg, key, &tc_ids)).collect();
            if verifiers.len() != algs.len() {
                continue;
            }
            for test in &group.tests {
                let resigned_for_jws = alg.is_some()
                    && group.mgf == Mgf::Mgf1
                    && group.mgf_hash == Some(group.hash)
                    && test.comment == format!("s_len changed to {h_len}");
                let expect = if jws {
                    Expect::from_wycheproof(test.result, PSS_ACCEPTABLE)
                } else if resigned_for_jws {
                    tally.policy_accepted += 1;
                    Expect::Accept
                } else {
                    tally.policy_refused += 1;
                    Expect::Refuse
                };
                // Every algorithm's verifier was built (checked above), in order.
                for (i, (alg, verifier)) in algs.iter().zip(&verifiers).enumerate() {
                    let accepted = verifies(verifier, &test.msg, &test.sig);
                    let comment = format!(
                        "{} [{:?}, MGF1 {:?}, salt {}]",
                        test.comment, group.hash, group.mgf_hash, group.salt_size
                    );
                    tally.check(i == 0, *alg, test.tc_id, &comment, &test.flags, test.result, expect, accepted);
                }
            }
        }
        let found = match (jws_groups, other_groups) {
            (_, 0) => PssParams::Jws,
            (0, _) => PssParams::Other,
            _ => PssParams::Mixed,
        };
        assert_eq!(found, params, "{name}: {jws_groups} groups with JWS parameters, {other_groups} without");
        tallies.push(tally);
    }
    finish("RSA-PSS", tallies);
}

// ---------------------------------------------------------------------------
// Ed25519: EdDSA.

use wycheproof::eddsa::TestName as EddsaFile;

const EDDSA_FILES: &[(EddsaFile, &str)] = &[(EddsaFile::Ed25519, "ed25519")];

/// Policy for Wycheproof's "acceptable" Ed25519 vectors.
const EDDSA_ACCEPTABLE: Expect = Expect::Refuse;

#[test]
fn ed25519() {
    let mut tallies = Vec::new();
    for &(file, name) in EDDSA_FILES {
        assert_eq!(name.parse::<EddsaFile>().ok(), Some(file), "the table names {name} wrongly");
        let set = wycheproof::eddsa::TestSet::load(file).unwrap();
        let mut tally = Tally::new(name, set.number_of_tests);
        for group in &set.test_groups {
            assert_eq!(group.key.curve, wycheproof::EdwardsCurve::Ed25519, "{name}");
            let verifier = match verifier(Algorithm::EdDSA, &KeyMaterial::Ed(group.key.pk.to_vec())) {
                Ok(v) => v,
                Err(e) => {
                    let ids: Vec<_> = group.tests.iter().map(|t| t.tc_id).collect();
                    tally.fail(format!("key of tcId {ids:?} refused: {e}"));
                    continue;
                }
            };
            for test in &group.tests {
                let expect = Expect::from_wycheproof(test.result, EDDSA_ACCEPTABLE);
                let accepted = verifies(&verifier, &test.msg, &test.sig);
                let alg = Algorithm::EdDSA;
                tally.check(true, alg, test.tc_id, &test.comment, &test.flags, test.result, expect, accepted);
            }
        }
        tallies.push(tally);
    }
    finish("Ed25519", tallies);
}

// ---------------------------------------------------------------------------
// HMAC: HS256, HS384, HS512.

use wycheproof::mac::TestName as MacFile;

const HMAC_FILES: &[(MacFile, &str, Algorithm)] = &[
    (MacFile::HmacSha256, "hmac_sha256", Algorithm::HS256),
    (MacFile::HmacSha384, "hmac_sha384", Algorithm::HS384),
    (MacFile::HmacSha512, "hmac_sha512", Algorithm::HS512),
];

/// Policy for Wycheproof's "acceptable" full-length HMAC vectors.
const HMAC_ACCEPTABLE: Expect = Expect::Refuse;

#[test]
fn hmac() {
    let mut tallies = Vec::new();
    for &(file, name, alg) in HMAC_FILES {
        assert_eq!(name.parse::<MacFile>().ok(), Some(file), "the table names {name} wrongly");
        let set = wycheproof::mac::TestSet::load(file).unwrap();
        let mut tally = Tally::new(name, set.number_of_tests);
        let full_bits = match alg {
            Algorithm::HS256 => 256,
            Algorithm::HS384 => 384,
            _ => 512,
        };
        let mut truncated_groups = 0;
        for group in &set.test_groups {
            let full = group.tag_size == full_bits;
            truncated_groups += usize::from(!full);
            for test in &group.tests {
                // The key is per vector: one verifier each, as one configured secret.
                let verifier = verifier(alg, &KeyMaterial::Secret(test.key.to_vec())).unwrap();
                let expect = if full {
                    Expect::from_wycheproof(test.result, HMAC_ACCEPTABLE)
                } else {
                    tally.policy_refused += 1;
                    Expect::Refuse
                };
                let accepted = verifies(&verifier, &test.msg, &test.tag);
                let comment = format!("{} [key {} bits, tag {} bits]", test.comment, group.key_size, group.tag_size);
                tally.check(true, alg, test.tc_id, &comment, &test.flags, test.result, expect, accepted);
            }
        }
        assert!(truncated_groups > 0, "{name}: no truncated-tag group left to hold refused");
        tallies.push(tally);
    }
    finish("HMAC", tallies);
}

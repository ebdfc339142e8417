//! The verdict cache's entry decoding, through `VerdictCache::verdict` with
//! shared data that holds the fuzz bytes. Must never panic, and:
//! - a hit never calls the verifier, a miss calls it once;
//! - a second lookup that hits returns the same verdict;
//! - a decoded verdict, written again and read back, is the same verdict.
//!
//! Input: `flags | token length | token | rest`. Flags bit 0 clear: `rest` is
//! the stored entry as is. Set: `rest[0]` picks a verdict, which a previous
//! `verdict()` call encodes into a recording store; `rest[1..]` are edits
//! (3 bytes each: u16 position, value; XOR, or truncate when the value is 0)
//! applied to that encoding, so decoding gets past the token comparison.
//! Bits 1-2: the clock ([`CACHE_CLOCKS`]); bit 3: read under another epoch
//! than entries are written under ([`CACHE_EPOCHS`]).
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use license_gate::cache::Epoch;
use license_gate::cache::{CacheOutcome, VerdictCache};
use license_gate::reason::Reason;
use license_gate_fuzz::{
    CACHE_CLOCKS, CACHE_EPOCHS, CACHE_FINGERPRINT, FixedStore, NOW, RecordingStore, cache_settings, sample_verdict,
};

fuzz_target!(|data: &[u8]| {
    let [flags, token_len, rest @ ..] = data else { return };
    let (token, rest) = rest.split_at(usize::from(*token_len).min(rest.len()));
    let token = String::from_utf8_lossy(token);
    let now = CACHE_CLOCKS[usize::from(flags >> 1) & 3];
    let epoch = CACHE_EPOCHS[usize::from(flags >> 3) & 1];
    if flags & 1 == 0 {
        check(&token, rest, now, epoch);
    } else if let [pick, edits @ ..] = rest {
        let Some(mut entry) = encode(&token, sample_verdict(*pick)) else { return };
        for edit in edits.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % (entry.len() + 1);
            match (edit[2], entry.get_mut(at)) {
                (0, _) => entry.truncate(at),
                (v, Some(b)) => *b ^= v,
                (v, None) => entry.push(v),
            }
        }
        check(&token, &entry, now, epoch);
    }
});

fn new_cache() -> VerdictCache {
    VerdictCache::new(cache_settings(), CACHE_FINGERPRINT)
}

/// The entry `verdict()` writes for this token and verdict at NOW.
fn encode(token: &str, verdict: Result<license_gate::license::License, Reason>) -> Option<Vec<u8>> {
    let store = RecordingStore::default();
    let _ = new_cache().verdict(&store, token, NOW, CACHE_EPOCHS[0], |_| verdict);
    store.0.into_inner()
}

fn check(token: &str, entry: &[u8], now: u64, epoch: Epoch) {
    let cache = new_cache();
    let store = FixedStore(entry);
    let calls = Cell::new(0);
    let (first, outcome) = cache.verdict(&store, token, now, epoch, |_| {
        calls.set(calls.get() + 1);
        Err(Reason::BadSignature)
    });
    let hit = match outcome {
        Some(CacheOutcome::Hit) => true,
        Some(CacheOutcome::Miss) => false,
        None => panic!("the cache is enabled"),
    };
    assert_eq!(calls.get(), usize::from(!hit), "hit: {hit}, verifier calls: {}", calls.get());

    let (second, outcome) = cache.verdict(&store, token, now, epoch, |_| Err(Reason::Expired));
    if outcome == Some(CacheOutcome::Hit) {
        assert_eq!(second, first, "a second lookup hit another verdict");
    }

    if hit {
        // Written again by a cache that misses, then read back.
        let verdict = first.clone().map(|l| (*l).clone());
        let store = RecordingStore::default();
        let _ = new_cache().verdict(&store, token, now, epoch, |_| verdict);
        if let Some(bytes) = store.0.into_inner() {
            let (back, outcome) = new_cache()
                .verdict(&FixedStore(&bytes), token, now, epoch, |_| panic!("a re-encoded entry was not read back"));
            assert_eq!(outcome, Some(CacheOutcome::Hit));
            assert_eq!(back, first, "the verdict changed through encode/decode");
        }
    }
}

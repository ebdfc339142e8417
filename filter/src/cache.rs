//! The verdict cache, kept in proxy-wasm shared data so that a token is
//! verified once per Envoy process, whichever worker sees it first.
//!
//! Shared data never evicts, so the cache is a fixed array of slots: the key
//! is `lg2:<build id>:<config fingerprint>:<slot>`, the slot chosen from a
//! fast hash of the token. The build id (see `build.rs`) keeps a module from
//! reading entries another build wrote while both run in one Envoy process
//! during an update; the config fingerprint does the same across
//! configurations. Memory stays bounded however many distinct tokens arrive. Each
//! entry holds the whole token, compared byte for byte (a slot collision is a
//! miss, never another token's verdict, and no hash collision can be forged),
//! an expiry, and the verdict: the verified license the policy needs, or the
//! denial reason (kept briefly, so a repeated bad token costs no signature
//! check). The feature decision is still taken per request from the cached
//! license, so one entry serves every route.
//!
//! Why not store sha256(token)? Hashing a 700-byte token costs several µs in
//! V8, more than everything else a cache hit does; comparing bytes is nearly free.
//!
//! In front of shared data, each VM (one per Envoy worker) keeps its own
//! small direct-mapped copy of recent verdicts (`cache.local_entries`): a hit
//! there costs no host call and no decoding. It holds only what shared data
//! held or verification produced, with the same expiry.

use std::cell::RefCell;
use std::hash::Hasher;
use std::rc::Rc;

use crate::license::License;
use crate::reason::Reason;

/// A verdict as the cache hands it out: licenses are shared, not copied.
pub type Verified = Result<Rc<License>, Reason>;

/// Access to the host's shared data (proxy-wasm `get/set_shared_data`).
pub trait SharedStore {
    /// The value and its CAS token, if the key exists.
    fn get(&self, key: &str) -> Option<(Vec<u8>, Option<u32>)>;
    /// Writes `value` if `cas` still matches (`None`: unconditionally).
    /// Returns false when the write was refused.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Number of slots; 0 disables the cache.
    pub max_entries: u32,
    /// Longest life of a positive entry (it never outlives the license).
    pub ttl_seconds: u64,
    /// Life of a cached denial.
    pub negative_ttl_seconds: u64,
    /// Slots of each VM's local copy; 0 turns it off.
    pub local_entries: u32,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { max_entries: 10_000, ttl_seconds: 300, negative_ttl_seconds: 30, local_entries: 1_024 }
    }
}

/// What a verdict was decided under, besides the configuration and the
/// build: the key ring's and the revocations' epochs (their remote
/// generations, and whether those were in force). A verdict is served only
/// under the very epoch it was decided in: after a key rotation or a new
/// revocation list, every token is decided afresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epoch {
    pub keys: u64,
    pub revocations: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

#[derive(Debug)]
pub struct VerdictCache {
    settings: CacheSettings,
    /// `lg2:<build id>:<first 8 bytes of sha256(config), hex>:`: neither a
    /// new configuration nor a new build reads the previous one's verdicts.
    prefix: String,
    local: LocalCache,
}

/// This VM's own direct-mapped copy of recent verdicts.
#[derive(Debug)]
struct LocalCache {
    slots: RefCell<Vec<Option<LocalEntry>>>,
}

#[derive(Debug)]
struct LocalEntry {
    token: Box<str>,
    expires_at: u64,
    epoch: Epoch,
    verdict: Verified,
}

impl LocalCache {
    fn new(entries: u32) -> LocalCache {
        let mut slots = Vec::new();
        slots.resize_with(entries as usize, || None);
        LocalCache { slots: RefCell::new(slots) }
    }

    fn get(&self, hash: u64, token: &str, now: u64, epoch: Epoch) -> Option<Verified> {
        let slots = self.slots.borrow();
        let entry = slots.get(slot(hash, slots.len())?)?.as_ref()?;
        (now < entry.expires_at && entry.epoch == epoch && same_bytes(entry.token.as_bytes(), token.as_bytes()))
            .then(|| entry.verdict.clone())
    }

    fn put(&self, hash: u64, token: &str, expires_at: u64, epoch: Epoch, verdict: &Verified) {
        let mut slots = self.slots.borrow_mut();
        if let Some(index) = slot(hash, slots.len())
            && let Some(place) = slots.get_mut(index)
        {
            // Reuse the slot's token allocation when the token is the same.
            match place {
                Some(e) if same_bytes(e.token.as_bytes(), token.as_bytes()) => {
                    e.expires_at = expires_at;
                    e.epoch = epoch;
                    e.verdict = verdict.clone();
                }
                _ => *place = Some(LocalEntry { token: token.into(), expires_at, epoch, verdict: verdict.clone() }),
            }
        }
    }
}

/// The slot of `hash` among `n` (none when there are no slots).
fn slot(hash: u64, n: usize) -> Option<usize> {
    (n > 0).then(|| (hash % n as u64) as usize)
}

impl VerdictCache {
    /// `config_fingerprint` names the configuration (see `Config`).
    pub fn new(settings: CacheSettings, config_fingerprint: &str) -> VerdictCache {
        // Never more local slots than shared ones: `max_entries` is the
        // admin's bound on what the cache holds.
        let local = LocalCache::new(settings.local_entries.min(settings.max_entries));
        VerdictCache { settings, prefix: format!("lg2:{}:{config_fingerprint}:", build_id()), local }
    }

    pub fn enabled(&self) -> bool {
        self.settings.max_entries > 0
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The verdict for `token` at `now` under `epoch`: from the cache when a
    /// live entry for this very token, decided under this very epoch, is
    /// there; else from `verify`, then stored (a temporary
    /// `keys_unavailable` never is).
    pub fn verdict(
        &self,
        store: &dyn SharedStore,
        token: &str,
        now: u64,
        epoch: Epoch,
        verify: impl FnOnce(&str) -> Result<License, Reason>,
    ) -> (Verified, Option<CacheOutcome>) {
        if !self.enabled() {
            return (verify(token).map(Rc::new), None);
        }
        let hash = token_hash(token);
        if let Some(verdict) = self.local.get(hash, token, now, epoch) {
            return (verdict, Some(CacheOutcome::Hit));
        }
        let key = self.key(hash);
        let existing = store.get(&key);
        let cas = existing.as_ref().and_then(|(_, cas)| *cas);
        if let Some(entry) = existing.as_ref().and_then(|(bytes, _)| codec::decode(bytes, token))
            && now < entry.expires_at
            && entry.epoch == epoch
        {
            let verdict = entry.verdict.map(Rc::new);
            self.local.put(hash, token, entry.expires_at, epoch, &verdict);
            return (verdict, Some(CacheOutcome::Hit));
        }

        let verdict = verify(token).map(Rc::new);
        let expires_at = match &verdict {
            Ok(license) => {
                let ttl_end = now.saturating_add(self.settings.ttl_seconds);
                license.valid_until.map_or(ttl_end, |end| end.min(ttl_end))
            }
            Err(Reason::KeysUnavailable) => now,
            Err(_) => now.saturating_add(self.settings.negative_ttl_seconds),
        };
        if expires_at > now {
            let entry = codec::encode(token, expires_at, epoch, &verdict);
            // A refused write means another worker just filled the slot:
            // its verdict is as good as ours.
            let _ = store.set(&key, &entry, cas);
            self.local.put(hash, token, expires_at, epoch, &verdict);
        }
        (verdict, Some(CacheOutcome::Miss))
    }

    /// The shared-data key of the token's slot.
    fn key(&self, hash: u64) -> String {
        let slot = hash % u64::from(self.settings.max_entries.max(1));
        format!("{}{slot}", self.prefix)
    }
}

/// The module's build identity, 16 hex digits. It sits behind a marker in
/// the module's data, where a test can find it (and patch it to play a
/// second build).
pub fn build_id() -> &'static str {
    const MARKED: &str = concat!("license-gate-build-id:", env!("LICENSE_GATE_BUILD_ID"));
    // black_box: the marker must stay in the module, not be folded away.
    let marked = std::hint::black_box(MARKED);
    marked.get("license-gate-build-id:".len()..).unwrap_or(marked)
}

/// Slots only spread tokens; correctness rests on comparing whole tokens.
/// A JWS ends with its signature, where distinct tokens differ: hashing the
/// length and the last 32 bytes spreads them as well as hashing everything.
fn token_hash(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let tail = bytes.get(bytes.len().saturating_sub(32)..).unwrap_or(bytes);
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write_usize(bytes.len());
    hasher.write(tail);
    hasher.finish()
}

/// Byte equality a word at a time: Wasm has no vector `memcmp`, and the
/// compiler's goes byte by byte over a token of hundreds of bytes.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word(chunk: &[u8]) -> u64 {
        chunk.try_into().map_or(0, u64::from_le_bytes)
    }
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    a.len() == b.len() && wa.remainder() == wb.remainder() && wa.zip(wb).all(|(x, y)| word(x) == word(y))
}

/// A compact binary encoding of cache entries: no JSON to re-parse on a hit.
///
/// ```text
/// u8 version=3 | u32 token length | token | u64 expires_at
/// u64 keys epoch | u64 revocations epoch | u8 kind
/// kind 0 (license): u64 active_until | u64 valid_until | u64 exp   (u64::MAX: none)
///                   str? plan | str? tenant | str? license_id
///                   u16 n, n × str features | u16 n, n × str? forwarded
///                   u16 n, n × str deployments (n = 0xFFFF: no claim)
/// kind 1 (denial):  u8 reason index
/// str: u16 length + UTF-8; str?: length 0xFFFF for none. Integers little-endian.
/// ```
mod codec {
    use std::collections::BTreeSet;

    use crate::license::License;
    use crate::reason::Reason;

    const VERSION: u8 = 3;
    const NONE: u16 = u16::MAX;

    pub struct Entry {
        pub expires_at: u64,
        pub epoch: super::Epoch,
        pub verdict: Result<License, Reason>,
    }

    pub fn encode(token: &str, expires_at: u64, epoch: super::Epoch, verdict: &super::Verified) -> Vec<u8> {
        let mut out = Vec::with_capacity(token.len() + 128);
        out.push(VERSION);
        out.extend_from_slice(&(token.len() as u32).to_le_bytes());
        out.extend_from_slice(token.as_bytes());
        out.extend_from_slice(&expires_at.to_le_bytes());
        out.extend_from_slice(&epoch.keys.to_le_bytes());
        out.extend_from_slice(&epoch.revocations.to_le_bytes());
        match verdict {
            Err(reason) => {
                out.push(1);
                let index = Reason::ALL.iter().position(|r| r == reason).unwrap_or(0);
                out.push(index as u8);
            }
            Ok(l) => {
                let l = l.as_ref();
                out.push(0);
                for t in [l.active_until, l.valid_until, l.expires_at] {
                    out.extend_from_slice(&t.unwrap_or(u64::MAX).to_le_bytes());
                }
                for s in [&l.plan, &l.tenant, &l.license_id] {
                    put_opt(&mut out, s.as_deref());
                }
                put_len(&mut out, l.features.len());
                for f in &l.features {
                    put_opt(&mut out, Some(f));
                }
                put_len(&mut out, l.forwarded.len());
                for v in &l.forwarded {
                    put_opt(&mut out, v.as_deref());
                }
                match &l.deployments {
                    None => out.extend_from_slice(&NONE.to_le_bytes()),
                    Some(d) => {
                        put_len(&mut out, d.len());
                        for v in d {
                            put_opt(&mut out, Some(v));
                        }
                    }
                }
            }
        }
        out
    }

    fn put_len(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&(n.min(usize::from(NONE - 1)) as u16).to_le_bytes());
    }

    fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            // Longer strings cannot be headers anyway; store them as absent.
            Some(s) if s.len() < usize::from(NONE) => {
                out.extend_from_slice(&(s.len() as u16).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            _ => out.extend_from_slice(&NONE.to_le_bytes()),
        }
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
            self.at += n;
            Some(out)
        }
        fn u8(&mut self) -> Option<u8> {
            self.take(1)?.first().copied()
        }
        fn u32(&mut self) -> Option<u32> {
            let b = self.take(4)?;
            Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
        }
        fn u16(&mut self) -> Option<u16> {
            let b = self.take(2)?;
            Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
        }
        fn u64(&mut self) -> Option<u64> {
            let mut a = [0u8; 8];
            a.copy_from_slice(self.take(8)?);
            Some(u64::from_le_bytes(a))
        }
        fn time(&mut self) -> Option<Option<u64>> {
            self.u64().map(|t| (t != u64::MAX).then_some(t))
        }
        fn opt_str(&mut self) -> Option<Option<String>> {
            match self.u16()? {
                NONE => Some(None),
                n => Some(Some(std::str::from_utf8(self.take(usize::from(n))?).ok()?.to_string())),
            }
        }
    }

    /// The entry if it is a well-formed entry of this version for exactly
    /// this token; `None` otherwise (checked before anything is allocated).
    pub fn decode(bytes: &[u8], token: &str) -> Option<Entry> {
        let mut r = Reader { bytes, at: 0 };
        if r.u8()? != VERSION {
            return None;
        }
        let len = usize::try_from(r.u32()?).ok()?;
        if !super::same_bytes(r.take(len)?, token.as_bytes()) {
            return None;
        }
        let expires_at = r.u64()?;
        let epoch = super::Epoch { keys: r.u64()?, revocations: r.u64()? };
        let verdict = match r.u8()? {
            1 => Err(*Reason::ALL.get(usize::from(r.u8()?))?),
            0 => {
                let (active_until, valid_until, exp) = (r.time()?, r.time()?, r.time()?);
                let (plan, tenant, license_id) = (r.opt_str()?, r.opt_str()?, r.opt_str()?);
                let mut features = BTreeSet::new();
                for _ in 0..r.u16()? {
                    features.insert(r.opt_str()??);
                }
                let mut forwarded = Vec::new();
                for _ in 0..r.u16()? {
                    forwarded.push(r.opt_str()?);
                }
                let deployments = match r.u16()? {
                    NONE => None,
                    n => {
                        let mut list = Vec::with_capacity(usize::from(n));
                        for _ in 0..n {
                            list.push(r.opt_str()??);
                        }
                        Some(list)
                    }
                };
                Ok(License {
                    features,
                    plan,
                    tenant,
                    license_id,
                    expires_at: exp,
                    active_until,
                    valid_until,
                    forwarded,
                    deployments,
                })
            }
            _ => return None,
        };
        (r.at == bytes.len()).then_some(Entry { expires_at, epoch, verdict })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use crate::testing::Store;

    use super::*;
    use crate::license::LicenseStatus;

    #[test]
    fn same_bytes_is_equality() {
        let a = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        for n in 0..a.len() {
            for m in 0..a.len() {
                assert_eq!(same_bytes(&a[..n], &a[..m]), n == m, "{n} {m}");
            }
            let mut b = a.to_vec();
            b[n] ^= 1;
            assert!(!same_bytes(a, &b), "differs at {n}");
        }
        assert!(same_bytes(a, a.to_vec().as_slice()));
    }

    fn license(exp: Option<u64>) -> License {
        License {
            features: ["a".to_string(), "b c".to_string()].into(),
            plan: Some("pro".into()),
            tenant: None,
            license_id: Some("lic-1".into()),
            deployments: Some(vec!["eu-1".into(), "*.prod".into()]),
            expires_at: exp,
            active_until: exp.map(|e| e + 60),
            valid_until: exp.map(|e| e + 60 + 100),
            forwarded: vec![Some("x".into()), None, Some(String::new())],
        }
    }

    /// Shared data only: these tests are about its semantics.
    fn settings(max_entries: u32) -> CacheSettings {
        CacheSettings { max_entries, ttl_seconds: 300, negative_ttl_seconds: 10, local_entries: 0 }
    }

    fn ok(l: License) -> Verified {
        Ok(Rc::new(l))
    }

    #[test]
    fn entries_round_trip() {
        let l = license(Some(1_000));
        let bytes = codec::encode("tok.en.x", 99, Epoch::default(), &ok(l.clone()));
        let e = codec::decode(&bytes, "tok.en.x").unwrap();
        assert_eq!((e.expires_at, e.verdict), (99, Ok(l)));
        assert!(codec::decode(&bytes, "tok.en.y").is_none(), "another token never reads this entry");
        assert!(codec::decode(&bytes, "tok.en").is_none());
        let perpetual = license(None);
        let e = codec::decode(&codec::encode("p", 5, Epoch::default(), &ok(perpetual.clone())), "p").unwrap();
        assert_eq!(e.verdict, Ok(perpetual));
        for reason in Reason::ALL {
            let e = codec::decode(&codec::encode("t", 1, Epoch::default(), &Err(reason)), "t").unwrap();
            assert_eq!(e.verdict, Err(reason));
        }
        assert!(codec::decode(&bytes[..bytes.len() - 1], "tok.en.x").is_none());
        assert!(codec::decode(&[1], "t").is_none());
        assert!(codec::decode(&[], "t").is_none());
    }

    #[test]
    fn second_lookup_is_a_hit_and_does_not_verify() {
        let store = Store::default();
        let cache = VerdictCache::new(settings(100), "{config}");
        let calls = Cell::new(0);
        let verify = |_: &str| {
            calls.set(calls.get() + 1);
            Ok(license(Some(10_000)))
        };
        assert_eq!(cache.verdict(&store, "t1", 1_000, Epoch::default(), verify).1, Some(CacheOutcome::Miss));
        let (hit, outcome) = cache.verdict(&store, "t1", 1_001, Epoch::default(), verify);
        assert_eq!(outcome, Some(CacheOutcome::Hit));
        assert_eq!(hit, ok(license(Some(10_000))));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn status_is_recomputed_and_entries_never_outlive_the_grace_period() {
        let store = Store::default();
        let cache = VerdictCache::new(settings(100), "c");
        let exp = 1_000;
        // active until exp+60, valid until exp+160; the TTL (300) is longer.
        let _ = cache.verdict(&store, "t", 950, Epoch::default(), |_| Ok(license(Some(exp))));
        let (l, o) = cache.verdict(&store, "t", exp + 60, Epoch::default(), |_| Err(Reason::Expired));
        assert_eq!((l.map(|l| l.status_at(exp + 60)), o), (Ok(LicenseStatus::Grace), Some(CacheOutcome::Hit)));
        let (l, o) = cache.verdict(&store, "t", exp + 160, Epoch::default(), |_| Err(Reason::Expired));
        assert_eq!((l, o), (Err(Reason::Expired), Some(CacheOutcome::Miss)));
    }

    #[test]
    fn each_vm_keeps_a_bounded_local_copy_with_the_same_expiry() {
        use CacheOutcome::{Hit, Miss};
        let store = Store::default();
        let local = CacheSettings { local_entries: 4, ..settings(100) };
        let (worker_a, worker_b) = (VerdictCache::new(local, "c"), VerdictCache::new(local, "c"));
        let never = |_: &str| Err(Reason::Malformed);
        let _ = worker_a.verdict(&store, "t", 0, Epoch::default(), |_| Ok(license(None)));
        // The other worker finds it in shared data, then in its own copy
        // even once shared data no longer has it.
        assert_eq!(worker_b.verdict(&store, "t", 1, Epoch::default(), never), (ok(license(None)), Some(Hit)));
        store.map.borrow_mut().clear();
        assert_eq!(worker_b.verdict(&store, "t", 2, Epoch::default(), never), (ok(license(None)), Some(Hit)));
        // A local denial lives exactly as long as the shared one (10 s).
        let _ = worker_b.verdict(&store, "bad", 100, Epoch::default(), |_| Err(Reason::BadSignature));
        store.map.borrow_mut().clear();
        assert_eq!(
            worker_b.verdict(&store, "bad", 109, Epoch::default(), never),
            (Err(Reason::BadSignature), Some(Hit))
        );
        assert_eq!(worker_b.verdict(&store, "bad", 110, Epoch::default(), never), (Err(Reason::Malformed), Some(Miss)));
        // Four slots, whatever the traffic; a slot collision is a miss, never
        // the other token's verdict.
        let verdict_of =
            |i: usize| if i.is_multiple_of(2) { ok(license(Some(i as u64 + 1_000))) } else { Err(Reason::Expired) };
        for i in 0..100 {
            let _ = worker_b
                .verdict(&store, &format!("tok{i}"), 200, Epoch::default(), |_| verdict_of(i).map(|l| (*l).clone()));
        }
        assert_eq!(worker_b.local.slots.borrow().len(), 4);
        let mut hits = 0;
        for i in 0..100 {
            let token = format!("tok{i}");
            if let Some(v) = worker_b.local.get(token_hash(&token), &token, 201, Epoch::default()) {
                hits += 1;
                assert_eq!(v, verdict_of(i), "{token}");
            }
        }
        assert!((1..=4).contains(&hits), "{hits} local hits from 4 slots");
    }

    #[test]
    fn denials_are_cached_for_the_negative_ttl() {
        let store = Store::default();
        let cache = VerdictCache::new(settings(100), "c");
        let _ = cache.verdict(&store, "bad", 100, Epoch::default(), |_| Err(Reason::BadSignature));
        let (v, o) = cache.verdict(&store, "bad", 109, Epoch::default(), |_| Ok(license(None)));
        assert_eq!((v, o), (Err(Reason::BadSignature), Some(CacheOutcome::Hit)));
        let (v, o) = cache.verdict(&store, "bad", 110, Epoch::default(), |_| Err(Reason::Malformed));
        assert_eq!((v, o), (Err(Reason::Malformed), Some(CacheOutcome::Miss)));
    }

    #[test]
    fn slots_are_bounded_and_a_collision_is_a_miss() {
        let store = Store::default();
        let cache = VerdictCache::new(settings(1), "c");
        let _ = cache.verdict(&store, "first", 0, Epoch::default(), |_| Ok(license(None)));
        // One slot: "second" lands on "first"'s entry and must not read it.
        let (v, o) = cache.verdict(&store, "second", 0, Epoch::default(), |_| Err(Reason::IssuerMismatch));
        assert_eq!((v, o), (Err(Reason::IssuerMismatch), Some(CacheOutcome::Miss)));
        for i in 0..1000 {
            let _ = cache.verdict(&store, &format!("t{i}"), 0, Epoch::default(), |_| Ok(license(None)));
        }
        assert_eq!(store.map.borrow().len(), 1);
        let wide = VerdictCache::new(settings(16), "another config");
        for i in 0..1000 {
            let _ = wide.verdict(&store, &format!("t{i}"), 0, Epoch::default(), |_| Ok(license(None)));
        }
        assert_eq!(store.map.borrow().len(), 1 + 16);
    }

    #[test]
    fn another_configuration_never_reads_these_entries() {
        let store = Store::default();
        let a = VerdictCache::new(settings(100), "config a");
        let b = VerdictCache::new(settings(100), "config b");
        assert_ne!(a.prefix(), b.prefix());
        let _ = a.verdict(&store, "t", 0, Epoch::default(), |_| Ok(license(None)));
        let (v, o) = b.verdict(&store, "t", 0, Epoch::default(), |_| Err(Reason::UnknownKid));
        assert_eq!((v, o), (Err(Reason::UnknownKid), Some(CacheOutcome::Miss)));
    }

    #[test]
    fn a_disabled_cache_always_verifies() {
        let store = Store::default();
        let cache = VerdictCache::new(settings(0), "c");
        assert_eq!(cache.verdict(&store, "t", 0, Epoch::default(), |_| Ok(license(None))).1, None);
        assert!(store.map.borrow().is_empty());
    }

    #[test]
    fn a_stale_cas_write_is_dropped_not_retried() {
        let store = Store::default();
        let cache = VerdictCache::new(settings(1), "c");
        let _ = cache.verdict(&store, "old", 0, Epoch::default(), |_| Ok(license(None)));
        // Between our read and our write another worker rewrites the slot.
        let (v, _) = cache.verdict(&store, "ours", 0, Epoch::default(), |_| {
            store.set(&format!("{}0", cache.prefix()), b"theirs", None);
            Ok(license(None))
        });
        assert!(v.is_ok());
        assert_eq!(store.map.borrow().values().next().map(|(v, _)| v.clone()), Some(b"theirs".to_vec()));
    }
}

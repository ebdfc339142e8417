//! Documents the gateway fetches for itself through an Envoy cluster: the
//! JWKS (`keys.remote`) and the signed revocation list
//! (`revocation.remote`). Host-independent: the adapter turns a [`Fetcher`]'s
//! answers into `dispatch_http_call`s and feeds the responses back.
//!
//! One fetch per Envoy process per period, however many workers: the
//! process-wide state lives in shared data (`<prefix>:state`, small, read by
//! every worker on every tick) beside the last good document
//! (`<prefix>:doc`, read only when its generation changes). Workers compete
//! for a short lease on the state by CAS, with a random per-VM id; the
//! holder fetches, validates and publishes. A failed or invalid fetch never
//! replaces the last good document: it is counted, logged, and retried with
//! backoff (1 s, doubling, capped at `refresh_seconds`). The generation
//! changes only when the document's content does.

use crate::cache::SharedStore;
use crate::error::ConfigError;
use crate::schema::RawRemote;

/// `keys.remote` / `revocation.remote`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSettings {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_seconds: u64,
    pub timeout_ms: u64,
    pub max_stale_seconds: u64,
    pub max_bytes: usize,
}

/// The defaults of one kind of document.
#[derive(Debug, Clone, Copy)]
pub struct RemoteDefaults {
    pub refresh_seconds: u64,
    pub max_bytes: usize,
}

pub const JWKS_DEFAULTS: RemoteDefaults = RemoteDefaults { refresh_seconds: 300, max_bytes: 65_536 };
pub const REVOCATION_DEFAULTS: RemoteDefaults = RemoteDefaults { refresh_seconds: 60, max_bytes: 1_048_576 };
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_MAX_STALE_SECONDS: u64 = 86_400;
/// Largest document accepted at all, whatever `max_bytes` says: shared data
/// holds it once per process and every worker parses it.
const MAX_BYTES_LIMIT: usize = 16 * 1024 * 1024;
/// An unknown `kid` asks for an early refresh at most this often per process.
pub const EARLY_REFRESH_INTERVAL_MS: u64 = 30_000;
/// The first retry after a failure; doubles up to `refresh_seconds`.
const FIRST_BACKOFF_MS: u64 = 1_000;

impl RemoteSettings {
    pub(crate) fn compile(field: &str, raw: &RawRemote, defaults: RemoteDefaults) -> Result<Self, ConfigError> {
        let err = |name: &str, message: &str| ConfigError::new(format!("{field}.{name}"), message);
        if raw.cluster.is_empty() {
            return Err(err("cluster", "must name an Envoy cluster"));
        }
        if !raw.path.starts_with('/') {
            return Err(err("path", "must start with \"/\""));
        }
        if raw.path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(err("path", "must not contain spaces or control characters"));
        }
        let authority = raw.authority.clone().unwrap_or_else(|| raw.cluster.clone());
        if authority.is_empty() || authority.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'/') {
            return Err(err("authority", "must be a host name (with an optional port)"));
        }
        let refresh_seconds = raw.refresh_seconds.unwrap_or(defaults.refresh_seconds);
        if refresh_seconds == 0 {
            return Err(err("refresh_seconds", "must be at least 1"));
        }
        let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=60_000).contains(&timeout_ms) {
            return Err(err("timeout_ms", "must be from 1 to 60000"));
        }
        let max_stale_seconds = raw.max_stale_seconds.unwrap_or(DEFAULT_MAX_STALE_SECONDS);
        if max_stale_seconds < refresh_seconds {
            return Err(err("max_stale_seconds", "must be at least refresh_seconds"));
        }
        let max_bytes = raw.max_bytes.unwrap_or(defaults.max_bytes);
        if !(1..=MAX_BYTES_LIMIT).contains(&max_bytes) {
            return Err(err("max_bytes", &format!("must be from 1 to {MAX_BYTES_LIMIT}")));
        }
        Ok(RemoteSettings {
            cluster: raw.cluster.clone(),
            path: raw.path.clone(),
            authority,
            refresh_seconds,
            timeout_ms,
            max_stale_seconds,
            max_bytes,
        })
    }
}

/// The documents fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Jwks,
    Revocations,
}

impl Document {
    pub const ALL: [Document; 2] = [Document::Jwks, Document::Revocations];

    pub fn index(self) -> usize {
        match self {
            Document::Jwks => 0,
            Document::Revocations => 1,
        }
    }

    /// In stat names and shared-data keys.
    pub fn stat_name(self) -> &'static str {
        match self {
            Document::Jwks => "jwks",
            Document::Revocations => "revocation",
        }
    }
}

/// Why a fetch failed: the `reason` label of `*_fetch_failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// An answer other than 200 (or 304 to our `If-None-Match`), or no
    /// cluster to send the request to.
    Status,
    /// No answer in time (or the connection failed).
    Timeout,
    /// An answer that is not a usable document.
    Invalid,
    /// An answer longer than `max_bytes`.
    TooLarge,
}

impl FetchFailure {
    pub const ALL: [FetchFailure; 4] =
        [FetchFailure::Status, FetchFailure::Timeout, FetchFailure::Invalid, FetchFailure::TooLarge];

    pub fn code(self) -> &'static str {
        match self {
            FetchFailure::Status => "status",
            FetchFailure::Timeout => "timeout",
            FetchFailure::Invalid => "invalid",
            FetchFailure::TooLarge => "too_large",
        }
    }
}

/// The process-wide fetch state, as kept in shared data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRecord {
    /// Bumped whenever the published document's content changes.
    pub generation: u64,
    /// Milliseconds since the epoch of the last successful fetch (0: never).
    pub fetched_at_ms: u64,
    /// When the next fetch is due.
    pub next_fetch_ms: u64,
    /// Failures since the last success (for the backoff).
    pub failures: u32,
    /// Who may fetch now, and until when.
    pub lease_holder: u64,
    pub lease_until_ms: u64,
    /// When an unknown `kid` last brought a fetch forward.
    pub early_at_ms: u64,
    /// The published content's fingerprint (what the generation follows).
    pub fingerprint: u64,
    /// The published document's own issue time (revocation lists only).
    pub issued_at: u64,
    /// The published document's `ETag`, for `If-None-Match`.
    pub etag: String,
}

impl FetchRecord {
    const VERSION: u8 = 1;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80 + self.etag.len());
        out.push(Self::VERSION);
        for n in [
            self.generation,
            self.fetched_at_ms,
            self.next_fetch_ms,
            u64::from(self.failures),
            self.lease_holder,
            self.lease_until_ms,
            self.early_at_ms,
            self.fingerprint,
            self.issued_at,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(self.etag.as_bytes());
        out
    }

    /// `None` for anything but a record this build wrote.
    pub fn decode(bytes: &[u8]) -> Option<FetchRecord> {
        let (&version, rest) = bytes.split_first()?;
        if version != Self::VERSION {
            return None;
        }
        let mut n = [0u64; 9];
        for (i, slot) in n.iter_mut().enumerate() {
            let chunk = rest.get(i * 8..i * 8 + 8)?;
            *slot = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        let etag = std::str::from_utf8(rest.get(72..)?).ok()?.to_string();
        let [
            generation,
            fetched_at_ms,
            next_fetch_ms,
            failures,
            lease_holder,
            lease_until_ms,
            early_at_ms,
            fingerprint,
            issued_at,
        ] = n;
        Some(FetchRecord {
            generation,
            fetched_at_ms,
            next_fetch_ms,
            failures: u32::try_from(failures).ok()?,
            lease_holder,
            lease_until_ms,
            early_at_ms,
            fingerprint,
            issued_at,
            etag,
        })
    }
}

/// The request the adapter must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub cluster: String,
    pub headers: Vec<(&'static str, String)>,
    pub timeout_ms: u64,
}

/// A newer document than the one this VM has: install it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub generation: u64,
    pub document: Vec<u8>,
}

/// What one tick found: the process's view of the document, and whether
/// this VM must fetch now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TickOutcome {
    /// A document published since this VM last looked.
    pub published: Option<Published>,
    pub fetch: Option<FetchRequest>,
}

/// An answer to the fetch, as the host delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// `None`: no answer (timeout, reset, no such cluster).
    pub status: Option<u32>,
    pub etag: Option<String>,
    /// `Err(size)`: the body was longer than `max_bytes` and was not read.
    pub body: Result<Vec<u8>, usize>,
}

/// What a validated document says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    /// Of the content that matters (the keys, the revoked ids), so that a
    /// re-serialised but equal document keeps its generation.
    pub fingerprint: u64,
    pub issued_at: u64,
}

/// The outcome of one fetch, for stats and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A good answer; `changed` when it published a new generation.
    Success { changed: bool },
    /// `detail` says why, for the log line.
    Failed { failure: FetchFailure, detail: String },
}

/// One VM's side of fetching one document.
#[derive(Debug)]
pub struct Fetcher {
    pub settings: RemoteSettings,
    /// `lg2:<build>:<config>:<kind>`.
    prefix: String,
    vm_id: u64,
    /// The generation this VM has installed.
    local_generation: u64,
    /// A fetch this VM has in flight, and when it was sent.
    in_flight: Option<u64>,
    /// An unknown `kid` was seen: bring the next fetch forward.
    early: std::cell::Cell<bool>,
    /// The last successful fetch this VM knows of (0: none).
    fetched_at_ms: u64,
}

impl Fetcher {
    pub fn new(settings: RemoteSettings, prefix: String, vm_id: u64) -> Fetcher {
        Fetcher {
            settings,
            prefix,
            vm_id,
            local_generation: 0,
            in_flight: None,
            early: std::cell::Cell::new(false),
            fetched_at_ms: 0,
        }
    }

    /// When the document in force was last fetched, if ever.
    pub fn fetched_at_ms(&self) -> Option<u64> {
        (self.fetched_at_ms > 0).then_some(self.fetched_at_ms)
    }

    /// Until when (seconds) the document in force may be trusted: its last
    /// fetch plus `max_stale_seconds`; 0 when there never was one.
    pub fn fresh_until(&self) -> u64 {
        self.fetched_at_ms().map_or(0, |at| at / 1_000 + self.settings.max_stale_seconds)
    }

    fn state_key(&self) -> String {
        format!("{}:state", self.prefix)
    }

    fn doc_key(&self) -> String {
        format!("{}:doc", self.prefix)
    }

    /// Makes the next tick read the published document again (after this
    /// VM failed to install it, e.g. before it had the keys to verify it).
    pub fn forget_generation(&mut self) {
        self.local_generation = 0;
    }

    /// Asks for a fetch before the period is over (at most once per 30 s
    /// per process); called from the request path, acted on at the next tick.
    pub fn request_early_refresh(&self) {
        self.early.set(true);
    }

    /// Every tick: pick up what another worker published, and fetch when
    /// the process is due and this VM wins the lease.
    pub fn tick(&mut self, store: &dyn SharedStore, now_ms: u64) -> TickOutcome {
        let (mut record, mut cas) = read_record(store, &self.state_key());
        let published = self.pick_up(store, &record);
        if self.early.take() && now_ms.saturating_sub(record.early_at_ms) >= EARLY_REFRESH_INTERVAL_MS {
            let mut next = record.clone();
            next.early_at_ms = now_ms;
            next.next_fetch_ms = now_ms;
            if store.set(&self.state_key(), &next.encode(), cas) {
                (record, cas) = read_record(store, &self.state_key());
            }
        }
        let lease_free = record.lease_until_ms <= now_ms || record.lease_holder == self.vm_id;
        let in_flight = self.in_flight.is_some_and(|sent| now_ms < sent + self.settings.timeout_ms + 2_000);
        let mut fetch = None;
        if now_ms >= record.next_fetch_ms && lease_free && !in_flight {
            let mut leased = record.clone();
            leased.lease_holder = self.vm_id;
            leased.lease_until_ms = now_ms + self.settings.timeout_ms + 2_000;
            if store.set(&self.state_key(), &leased.encode(), cas) {
                self.in_flight = Some(now_ms);
                fetch = Some(self.request(&record));
            }
        }
        self.fetched_at_ms = record.fetched_at_ms;
        TickOutcome { published, fetch }
    }

    /// What another worker published since this VM last looked, without
    /// fetching: the request path calls it when [`Publications`] moved.
    pub fn sync(&mut self, store: &dyn SharedStore) -> Option<Published> {
        let (record, _) = read_record(store, &self.state_key());
        self.fetched_at_ms = record.fetched_at_ms;
        self.pick_up(store, &record)
    }

    /// The published document, when its generation is not the one this VM has.
    fn pick_up(&mut self, store: &dyn SharedStore, record: &FetchRecord) -> Option<Published> {
        if record.generation == self.local_generation {
            return None;
        }
        let (bytes, _) = store.get(&self.doc_key())?;
        let generation = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        if generation != record.generation {
            // Published in between: the next tick sees both agree.
            return None;
        }
        self.local_generation = generation;
        Some(Published { generation, document: bytes.get(8..)?.to_vec() })
    }

    fn request(&self, record: &FetchRecord) -> FetchRequest {
        let mut headers = vec![
            (":method", "GET".to_string()),
            (":path", self.settings.path.clone()),
            (":authority", self.settings.authority.clone()),
            (":scheme", "http".to_string()),
        ];
        if !record.etag.is_empty() && record.fetched_at_ms > 0 {
            headers.push(("if-none-match", record.etag.clone()));
        }
        FetchRequest { cluster: self.settings.cluster.clone(), headers, timeout_ms: self.settings.timeout_ms }
    }

    /// The host could not send the request at all (no such cluster).
    pub fn dispatch_failed(&mut self, store: &dyn SharedStore, now_ms: u64) -> FetchOutcome {
        self.in_flight = None;
        let detail = format!("cluster \"{}\" is unknown or cannot take requests", self.settings.cluster);
        self.fail(store, now_ms, FetchFailure::Status, detail)
    }

    /// The answer to this VM's fetch. `validate` parses the document (with
    /// the record in force, e.g. to refuse an older revocation list).
    pub fn on_response(
        &mut self,
        store: &dyn SharedStore,
        now_ms: u64,
        response: FetchResponse,
        validate: impl FnOnce(&[u8], &FetchRecord) -> Result<Validated, String>,
    ) -> (FetchOutcome, Option<Published>) {
        self.in_flight = None;
        let (current, _) = read_record(store, &self.state_key());
        let body = match (response.status, response.body) {
            (None, _) => return (self.fail(store, now_ms, FetchFailure::Timeout, "no answer".into()), None),
            (Some(304), _) if current.fetched_at_ms > 0 && !current.etag.is_empty() => None,
            (Some(200), Err(size)) => {
                let detail = format!("{size} bytes, more than max_bytes {}", self.settings.max_bytes);
                return (self.fail(store, now_ms, FetchFailure::TooLarge, detail), None);
            }
            (Some(200), Ok(body)) if body.len() > self.settings.max_bytes => {
                let detail = format!("{} bytes, more than max_bytes {}", body.len(), self.settings.max_bytes);
                return (self.fail(store, now_ms, FetchFailure::TooLarge, detail), None);
            }
            (Some(200), Ok(body)) => Some(body),
            (Some(status), _) => {
                return (self.fail(store, now_ms, FetchFailure::Status, format!("HTTP status {status}")), None);
            }
        };
        let validated = match &body {
            None => None,
            Some(body) => match validate(body, &current) {
                Ok(v) => Some(v),
                Err(detail) => return (self.fail(store, now_ms, FetchFailure::Invalid, detail), None),
            },
        };
        let refresh_ms = self.settings.refresh_seconds * 1_000;
        let mut installed = None;
        self.update(store, |record| {
            installed = None;
            let mut doc = None;
            if let (Some(body), Some(v)) = (&body, validated) {
                if v.fingerprint != record.fingerprint || record.fetched_at_ms == 0 {
                    record.generation += 1;
                    record.fingerprint = v.fingerprint;
                    let mut bytes = record.generation.to_le_bytes().to_vec();
                    bytes.extend_from_slice(body);
                    doc = Some(bytes);
                    installed = Some(Published { generation: record.generation, document: body.clone() });
                }
                record.issued_at = v.issued_at;
                record.etag = response.etag.clone().unwrap_or_default();
            }
            record.fetched_at_ms = now_ms;
            record.next_fetch_ms = now_ms + refresh_ms;
            record.failures = 0;
            record.lease_until_ms = 0;
            doc
        });
        if let Some(p) = &installed {
            self.local_generation = p.generation;
        }
        self.fetched_at_ms = now_ms;
        (FetchOutcome::Success { changed: installed.is_some() }, installed)
    }

    fn fail(&mut self, store: &dyn SharedStore, now_ms: u64, failure: FetchFailure, detail: String) -> FetchOutcome {
        let refresh_ms = self.settings.refresh_seconds * 1_000;
        self.update(store, |record| {
            record.failures = record.failures.saturating_add(1);
            let backoff = FIRST_BACKOFF_MS.saturating_mul(1 << (record.failures - 1).min(20));
            record.next_fetch_ms = now_ms + backoff.min(refresh_ms);
            record.lease_until_ms = 0;
            None
        });
        FetchOutcome::Failed { failure, detail }
    }

    /// Read-modify-write of the state by CAS. `change` may return a
    /// document to publish: it is written first, so that a worker that sees
    /// the new generation in the state always finds its document.
    fn update(&self, store: &dyn SharedStore, mut change: impl FnMut(&mut FetchRecord) -> Option<Vec<u8>>) {
        for _ in 0..4 {
            let (mut record, cas) = read_record(store, &self.state_key());
            if let Some(doc) = change(&mut record) {
                let _ = store.set(&self.doc_key(), &doc, None);
            }
            if store.set(&self.state_key(), &record.encode(), cas) {
                return;
            }
        }
    }
}

/// A process-wide counter, bumped after every newly published document
/// and read by every request of a gateway with remote documents: a worker
/// then installs what another one published at once, not at its next tick,
/// so a revocation or a rotation takes effect on every worker together.
#[derive(Debug)]
pub struct Publications {
    key: String,
    seen: std::cell::Cell<u64>,
}

impl Publications {
    /// `lg2:<build>:<config>:published`.
    pub fn new(prefix: &str) -> Publications {
        Publications { key: format!("{prefix}:published"), seen: std::cell::Cell::new(0) }
    }

    fn read(&self, store: &dyn SharedStore) -> (u64, Option<u32>) {
        store
            .get(&self.key)
            .and_then(|(bytes, cas)| Some((u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?), cas)))
            .unwrap_or((0, None))
    }

    /// Whether anything was published since this VM last asked.
    pub fn changed(&self, store: &dyn SharedStore) -> bool {
        let (count, _) = self.read(store);
        count != self.seen.replace(count)
    }

    /// Tells the other workers a document was published (after its state).
    pub fn bump(&self, store: &dyn SharedStore) {
        for _ in 0..8 {
            let (count, cas) = self.read(store);
            if store.set(&self.key, &count.wrapping_add(1).to_le_bytes(), cas) {
                return;
            }
        }
    }
}

/// The state record and its CAS (a fresh record when there is none yet, or
/// when what is there is not one this build can read).
fn read_record(store: &dyn SharedStore, key: &str) -> (FetchRecord, Option<u32>) {
    match store.get(key) {
        Some((bytes, cas)) => (FetchRecord::decode(&bytes).unwrap_or_default(), cas),
        None => (FetchRecord::default(), None),
    }
}

/// A 64-bit fingerprint of some bytes (the first 8 bytes of their SHA-256).
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    let out = digest.finalize();
    out.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Store;

    fn settings(refresh: u64) -> RemoteSettings {
        let raw: RawRemote = serde_json::from_str(&format!(
            r#"{{"cluster":"keys","path":"/jwks","refresh_seconds":{refresh},"timeout_ms":1000,"max_stale_seconds":3600}}"#
        ))
        .unwrap();
        RemoteSettings::compile("keys.remote", &raw, JWKS_DEFAULTS).unwrap()
    }

    fn ok(body: &[u8]) -> FetchResponse {
        FetchResponse { status: Some(200), etag: Some("\"v1\"".into()), body: Ok(body.to_vec()) }
    }

    fn by_content(body: &[u8], _: &FetchRecord) -> Result<Validated, String> {
        if body.starts_with(b"{") {
            Ok(Validated { fingerprint: fingerprint(&[body]), issued_at: 0 })
        } else {
            Err("bad".into())
        }
    }

    #[test]
    fn records_round_trip_and_refuse_other_layouts() {
        let record = FetchRecord {
            generation: 7,
            fetched_at_ms: 1,
            next_fetch_ms: 2,
            failures: 3,
            lease_holder: 4,
            lease_until_ms: 5,
            early_at_ms: 6,
            fingerprint: 8,
            issued_at: 9,
            etag: "\"x\"".into(),
        };
        assert_eq!(FetchRecord::decode(&record.encode()), Some(record.clone()));
        let mut other = record.encode();
        other[0] = 2;
        assert_eq!(FetchRecord::decode(&other), None);
        assert_eq!(FetchRecord::decode(&record.encode()[..40]), None);
    }

    #[test]
    fn one_vm_fetches_the_other_picks_up_and_the_generation_follows_content() {
        let store = Store::default();
        let (mut a, mut b) = (Fetcher::new(settings(10), "p".into(), 1), Fetcher::new(settings(10), "p".into(), 2));
        let request = a.tick(&store, 1_000).fetch.expect("due at once");
        assert_eq!(request.headers[1], (":path", "/jwks".to_string()));
        assert_eq!(b.tick(&store, 1_000).fetch, None, "the lease is a's");
        let (outcome, published) = a.on_response(&store, 1_100, ok(b"{\"keys\":1}"), by_content);
        assert_eq!(outcome, FetchOutcome::Success { changed: true });
        assert_eq!(published.map(|p| p.generation), Some(1));
        let seen = b.tick(&store, 1_200);
        assert_eq!(seen.published.map(|p| p.document), Some(b"{\"keys\":1}".to_vec()));
        assert_eq!(seen.fetch, None, "not due before refresh_seconds");
        // Due again: the same content keeps generation 1, and If-None-Match goes out.
        let request = b.tick(&store, 11_100).fetch.expect("due");
        assert!(request.headers.contains(&("if-none-match", "\"v1\"".to_string())));
        let (outcome, published) = b.on_response(&store, 11_150, ok(b"{\"keys\":1}"), by_content);
        assert_eq!((outcome, published), (FetchOutcome::Success { changed: false }, None));
        assert_eq!(b.fresh_until(), 11 + 3600);
    }

    #[test]
    fn failures_keep_the_document_and_back_off() {
        let store = Store::default();
        let mut f = Fetcher::new(settings(8), "p".into(), 1);
        f.tick(&store, 0).fetch.expect("due");
        f.on_response(&store, 0, ok(b"{}"), by_content);
        let mut due_at = Vec::new();
        let mut now = 8_000;
        while due_at.len() < 5 {
            if f.tick(&store, now).fetch.is_some() {
                due_at.push(now);
                let failed = f.on_response(
                    &store,
                    now,
                    FetchResponse { status: None, etag: None, body: Ok(vec![]) },
                    by_content,
                );
                assert_eq!(
                    failed.0,
                    FetchOutcome::Failed { failure: FetchFailure::Timeout, detail: "no answer".into() }
                );
            }
            now += 500;
        }
        // 1 s, 2 s, 4 s, then capped at refresh_seconds (8 s).
        assert_eq!(due_at, [8_000, 9_000, 11_000, 15_000, 23_000]);
        let bad = f.on_response(&store, now, ok(b"not json"), by_content).0;
        assert!(matches!(bad, FetchOutcome::Failed { failure: FetchFailure::Invalid, .. }));
        let big = FetchResponse { status: Some(200), etag: None, body: Err(70_000) };
        assert!(matches!(
            f.on_response(&store, now, big, by_content).0,
            FetchOutcome::Failed { failure: FetchFailure::TooLarge, .. }
        ));
    }

    #[test]
    fn settings_errors_name_the_field() {
        let err = |json: &str| {
            let raw: RawRemote = serde_json::from_str(json).unwrap();
            RemoteSettings::compile("keys.remote", &raw, JWKS_DEFAULTS).unwrap_err().to_string()
        };
        assert_eq!(
            err(r#"{"cluster":"","path":"/"}"#),
            "license-gate: config: keys.remote.cluster: must name an Envoy cluster"
        );
        assert_eq!(
            err(r#"{"cluster":"k","path":"/a b"}"#),
            "license-gate: config: keys.remote.path: must not contain spaces or control characters"
        );
        assert_eq!(
            err(r#"{"cluster":"k","path":"/","max_bytes":0}"#),
            "license-gate: config: keys.remote.max_bytes: must be from 1 to 16777216"
        );
        let defaults: RawRemote = serde_json::from_str(r#"{"cluster":"k","path":"/j"}"#).unwrap();
        let s = RemoteSettings::compile("keys.remote", &defaults, JWKS_DEFAULTS).unwrap();
        assert_eq!(
            (s.authority.as_str(), s.refresh_seconds, s.timeout_ms, s.max_stale_seconds, s.max_bytes),
            ("k", 300, 5000, 86_400, 65_536)
        );
    }
}

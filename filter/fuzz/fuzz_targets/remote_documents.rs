//! Any bytes as a fetched document: a JWKS (`keys.remote`) and a signed
//! revocation list (`revocation.remote`), both parsed with the fixed test key
//! set in force. A key server, or anyone on its path, controls these bytes:
//! they must never panic, and a list that parses was signed by a known key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use license_gate::config::Config;
use license_gate::keys::{ASYMMETRIC, KeySet};
use license_gate::revocation::RevocationList;
use license_gate_fuzz::{ISSUER, NOW, config, verify_config_json};

thread_local! {
    static CONFIG: Config = config(&verify_config_json());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = KeySet::from_jwks_document(data, ASYMMETRIC) {
        assert!(!set.is_empty(), "an accepted JWKS has a usable key");
    }
    CONFIG.with(|config| {
        let issuers = [ISSUER.to_string()];
        if let Ok(list) = RevocationList::parse(data, &config.runtime.keys, &issuers, NOW, 60) {
            assert!(list.ids.len() <= license_gate::revocation::MAX_IDS);
        }
    });
});

//! Any bytes, as a token, into `Verifier::verify` with a fixed key set
//! (RS256, PS256, ES256, ES384, EdDSA test keys): it must never panic, and a
//! license it accepts must still be valid at the time it was checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use license_gate::config::Config;
use license_gate_fuzz::{NOW, config, verify_config_json};

thread_local! {
    // Config holds the verdict cache's RefCell: not Sync, so not a static.
    static CONFIG: Config = config(&verify_config_json());
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    CONFIG.with(|config| {
        // NOW (the seeds' tokens are valid then) and the end of time (past
        // every `exp`, saturating arithmetic everywhere).
        for now in [NOW, u64::MAX] {
            if let Ok(license) = config.policy.verifier.verify(&token, now, &config.runtime.keys) {
                assert!(
                    license.valid_until.is_none_or(|end| now < end),
                    "accepted at {now} a license valid until {:?}",
                    license.valid_until
                );
            }
        }
    });
});

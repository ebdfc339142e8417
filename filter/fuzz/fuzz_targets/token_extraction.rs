//! A request built by `arbitrary` (header names mostly from the list the
//! filter reads: `:path`, `:method`, `:authority`, `cookie`, `authorization`,
//! `x-license`, owned headers; values any bytes) through `decide` and
//! `Decision::action`, with a config that has every token source, strips
//! the token, has prefix, exact, host and method rules and deployment
//! binding. The verifier is a stub that answers from the input, the
//! gateway's identity comes from it too. Must never panic.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use license_gate::cache::Verified;
use license_gate::config::Config;
use license_gate::decision::decide;
use license_gate::license::License;
use license_gate::reason::Reason;
use license_gate::request::RequestHeaders;
use license_gate_fuzz::{RequestInput, config, gate_config_json, sample_licenses};

thread_local! {
    static ENFORCE: Config = config(&gate_config_json("enforce"));
    static DRY_RUN: Config = config(&gate_config_json("dry_run"));
    static LICENSES: Vec<Rc<License>> = sample_licenses().into_iter().map(Rc::new).collect();
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = RequestInput::decode(data) else { return };
    let now = input.now();
    let identity = input.identity();
    let req = RequestHeaders::new(input.pairs());
    let licenses = LICENSES.with(Clone::clone);
    let answer = |token: &str| -> Verified {
        let reason = Reason::ALL[usize::from(input.verdict >> 2) % Reason::ALL.len()];
        match input.verdict % 4 {
            // Every feature; then one past `exp` (in grace from NOW + 50); a denial.
            0 => Ok(licenses[0].clone()),
            1 => Ok(licenses[2].clone()),
            2 => Err(reason),
            _ if token.len().is_multiple_of(2) => Ok(licenses[1].clone()),
            _ => Err(reason),
        }
    };
    let run = |config: &Config| {
        let max = config.policy.max_token_bytes;
        let mut verify = |token: &str, at: u64| -> Verified {
            assert!(!token.is_empty(), "verify called with an empty token");
            assert!(token.len() <= max, "verify called with a {}-byte token (max {max})", token.len());
            assert_eq!(at, now);
            answer(token)
        };
        let decision = decide(&config.policy, &identity, &req, now, &mut verify);
        std::hint::black_box(decision.action(&req, now));
    };
    if input.dry_run() { DRY_RUN.with(run) } else { ENFORCE.with(run) }
});

//! Any bytes into `Config::from_json`: it must never panic. A configuration
//! it accepts then decides one fixed request, so that the compiled rules,
//! token sources and forwarded headers are exercised too.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use license_gate::config::Config;
use license_gate::decision::decide;
use license_gate::request::RequestHeaders;
use license_gate_fuzz::{NOW, identity, sample_licenses};

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::from_json(data) else { return };
    let _ = config.policy.owned_headers().count();
    let req = RequestHeaders::new(
        [
            (":method", "GET"),
            (":authority", "admin.example.com:8443"),
            (":path", "/api/reports/q?license=q.r.s&x=1"),
            ("authorization", "Bearer a.b.c"),
            ("x-license", "d.e.f"),
            ("cookie", "a=1; license=g.h.i"),
            ("x-license-status", "active"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect(),
    );
    let license = Rc::new(sample_licenses().swap_remove(0));
    let mut verify = |_: &str, _: u64| Ok(license.clone());
    let decision = decide(&config.policy, &identity(0), &req, NOW, &mut verify);
    std::hint::black_box(decision.action(&req, NOW));
});

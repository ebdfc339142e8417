//! A proxy-wasm HTTP filter that does nothing: the cost floor of running any
//! Wasm filter in Envoy's V8, against which license-gate is measured.
//!
//! Its plugin configuration may be a number N: it then makes N of the
//! cheapest host calls (`get_current_time`) per request and nothing else, so
//! the benchmark can show what host calls alone cost in Envoy.
#![cfg(target_arch = "wasm32")]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { calls: 0 }) });
}}

struct Root {
    calls: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        self.calls = config.and_then(|c| String::from_utf8(c).ok()).and_then(|c| c.trim().parse().ok()).unwrap_or(0);
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass { calls: self.calls }))
    }
}

struct Pass {
    calls: u32,
}

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        for _ in 0..self.calls {
            let _ = hostcalls::get_current_time();
        }
        Action::Continue
    }
}

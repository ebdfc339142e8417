//! A proxy-wasm HTTP filter that does nothing: the cost floor of running any
//! Wasm filter in Envoy's V8, against which license-gate is measured.
//!
//! Its plugin configuration may be a number N: it then makes N of the
//! cheapest host calls (`get_current_time`) per request and nothing else, so
//! the benchmark can show what host calls alone cost in Envoy. `headers`
//! instead fetches the request headers once, as license-gate does;
//! `get:a,b` fetches just the named headers, one host call each. `floor` is
//! the least host work any Wasm license gate does: read `:path` and the
//! token header, increment one counter, set one upstream header.
#![cfg(target_arch = "wasm32")]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { calls: 0, headers: false, get: Vec::new(), floor: None })
    });
}}

struct Root {
    calls: u32,
    headers: bool,
    get: Vec<String>,
    /// `floor`: the counter it increments.
    floor: Option<u32>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        let config = config.and_then(|c| String::from_utf8(c).ok()).unwrap_or_default();
        self.headers = config.trim() == "headers";
        self.calls = config.trim().parse().unwrap_or(0);
        if let Some(names) = config.trim().strip_prefix("get:") {
            self.get = names.split(',').map(str::to_string).collect();
        }
        if config.trim() == "floor" {
            self.floor = hostcalls::define_metric(proxy_wasm::types::MetricType::Counter, "floor.requests").ok();
        }
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass { calls: self.calls, headers: self.headers, get: self.get.clone(), floor: self.floor }))
    }
}

struct Pass {
    calls: u32,
    headers: bool,
    get: Vec<String>,
    floor: Option<u32>,
}

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.headers {
            let _ = hostcalls::get_map_bytes(proxy_wasm::types::MapType::HttpRequestHeaders);
        }
        for name in &self.get {
            let _ = hostcalls::get_map_value_bytes(proxy_wasm::types::MapType::HttpRequestHeaders, name);
        }
        for _ in 0..self.calls {
            let _ = hostcalls::get_current_time();
        }
        if let Some(counter) = self.floor {
            let map = proxy_wasm::types::MapType::HttpRequestHeaders;
            let _ = hostcalls::get_map_value_bytes(map, ":path");
            let _ = hostcalls::get_map_value_bytes(map, "authorization");
            let _ = hostcalls::increment_metric(counter, 1);
            let _ = hostcalls::set_map_value(map, "x-license-status", Some("active"));
        }
        Action::Continue
    }
}

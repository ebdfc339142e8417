//! The proxy-wasm adapter: configuration in `on_configure`, one decision per
//! request in `on_http_request_headers`. All policy lives in the core modules;
//! this file only moves data between them and the host.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, BufferType, ContextType, LogLevel, MapType};

use crate::config::Config;
use crate::decision::{Action, Decision, decide};
use crate::request::{HeaderEdit, RequestHeaders};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: None }) });
}}

fn log(level: LogLevel, message: &str) {
    // Logging must never take the request down with it.
    let _ = hostcalls::log(level, message);
}

/// Seconds since the epoch on the host's clock.
fn now_seconds() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        if bytes.is_empty() {
            log(LogLevel::Error, "license-gate: config: config: the plugin configuration is empty");
            return false;
        }
        match Config::from_json(&bytes) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                log(LogLevel::Error, &e.to_string());
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Gate { config }))
    }
}

struct Gate {
    config: Rc<Config>,
}

impl Context for Gate {}

impl HttpContext for Gate {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> HostAction {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let req = RequestHeaders::new(headers);
        let config = &self.config;
        let mut verify = |token: &str, now: u64| config.verifier.verify(token, now);
        let decision = decide(config, &req, now_seconds(), &mut verify);
        self.apply(&req, decision)
    }
}

impl Gate {
    fn apply(&self, req: &RequestHeaders, decision: Decision) -> HostAction {
        if let Some(reason) = decision.would_deny {
            log(
                LogLevel::Info,
                &format!("license-gate: dry_run: would deny {} {}: {reason}", req.method(), req.path()),
            );
        }
        match decision.action {
            Action::Continue(edits) => {
                for edit in edits {
                    let _ = match &edit {
                        HeaderEdit::Remove(name) => {
                            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None)
                        }
                        HeaderEdit::Set(name, value) => {
                            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
                        }
                    };
                }
                HostAction::Continue
            }
            Action::Respond(resp) => {
                let headers: Vec<(&str, &str)> =
                    resp.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let _ = hostcalls::send_http_response(resp.status, headers, Some(resp.body.as_bytes()));
                HostAction::Pause
            }
        }
    }
}

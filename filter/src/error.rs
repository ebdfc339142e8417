//! Configuration errors: which field, and what is wrong with it, on one line
//! an admin can act on (`license-gate: config: rules[2].require.all: …`).

use std::fmt;

use crate::json_path::error_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }

    /// A serde_json error in `text`, named by the field it points at.
    pub fn from_json(text: &[u8], error: &serde_json::Error) -> Self {
        let path = error_path(text, error);
        let field = if path.is_empty() { "config".to_string() } else { path };
        ConfigError::new(field, strip_position(&error.to_string()))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "license-gate: config: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// serde_json appends "at line 1 column 42": noise in a one-line log message
/// that already names the field.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

//! One service's answer in Kea's shape: `{"result": N, "text": "...", "arguments": {...}}`
//! (Kea ARM "Management API"); the control agent sends a list of them, one per service.

use serde_json::{json, Value};

/// Kea's result codes (`isc::config::CONTROL_RESULT_*`).
pub mod result {
    pub const SUCCESS: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const COMMAND_UNSUPPORTED: u8 = 2;
    pub const EMPTY: u8 = 3;
    pub const CONFLICT: u8 = 4;
}

#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub result: u8,
    pub text: String,
    pub arguments: Option<Value>,
}

impl Answer {
    pub fn new(result: u8, text: impl Into<String>, arguments: Option<Value>) -> Self {
        Self {
            result,
            text: text.into(),
            arguments,
        }
    }

    pub fn success(text: impl Into<String>) -> Self {
        Self::new(result::SUCCESS, text, None)
    }

    pub fn with_arguments(text: impl Into<String>, arguments: Value) -> Self {
        Self::new(result::SUCCESS, text, Some(arguments))
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self::new(result::ERROR, text, None)
    }

    pub fn empty(text: impl Into<String>) -> Self {
        Self::new(result::EMPTY, text, None)
    }

    pub fn conflict(text: impl Into<String>) -> Self {
        Self::new(result::CONFLICT, text, None)
    }

    pub fn unsupported(command: &str) -> Self {
        Self::new(
            result::COMMAND_UNSUPPORTED,
            format!("'{command}' command not supported."),
            None,
        )
    }

    pub fn to_json(&self) -> Value {
        let mut map = json!({ "result": self.result, "text": self.text });
        if let (Some(arguments), Value::Object(map)) = (&self.arguments, &mut map) {
            map.insert("arguments".into(), arguments.clone());
        }
        map
    }

    /// The HTTP body the control agent sends: a list with one answer per service.
    pub fn body(answers: &[Answer]) -> Vec<u8> {
        let list: Vec<Value> = answers.iter().map(Answer::to_json).collect();
        serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec())
    }
}

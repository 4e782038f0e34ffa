//! Internals the fuzz targets in `fuzz/` drive directly; not an API, nothing else uses it.
//!
//! Each item is a thin alias of a private one, so the targets test the code that serves
//! requests, not a copy of it.

use std::sync::Arc;

use crate::conn::framing::{Tracker, Verdicts};

pub use crate::validate::form_parse::{parse as form_parse, FormValue};
pub use crate::validate::json::{loads as json_loads, DecodeError as JsonDecodeError};
pub use crate::validate::json::{Value as JsonValue, MAX_DEPTH as JSON_MAX_DEPTH};

/// `EmailStr` as the routes check it (with its fast path for plain addresses).
pub fn email_check(value: &str) -> Result<(), String> {
    crate::validate::email::check(value)
}

/// `EmailStr` by python-email-validator's rules alone, without the fast path.
pub fn email_check_faithfully(value: &str) -> Result<(), String> {
    crate::validate::email::validate_faithfully(value).map(drop)
}

/// A framing [`Tracker`] and what it has concluded so far.
pub struct FramingProbe {
    tracker: Tracker,
    verdicts: Arc<Verdicts>,
}

impl FramingProbe {
    pub fn new() -> Self {
        let verdicts = Verdicts::new();
        FramingProbe {
            tracker: Tracker::new(verdicts.clone()),
            verdicts,
        }
    }

    /// Follows the next bytes the client sent.
    pub fn feed(&mut self, data: &[u8]) {
        self.tracker.feed(data);
    }

    /// Complete request heads seen so far.
    pub fn heads(&self) -> u64 {
        self.verdicts.heads()
    }

    /// Index of the first head with both `Content-Length` and `Transfer-Encoding`.
    pub fn first_ambiguous(&self) -> Option<u64> {
        self.verdicts.first_ambiguous()
    }

    /// Whether the bytes so far are whole requests and nothing more.
    pub fn at_request_boundary(&self) -> bool {
        self.tracker.at_request_boundary()
    }
}

impl Default for FramingProbe {
    fn default() -> Self {
        Self::new()
    }
}

//! Invariants the fuzz targets share: every rejection body has FastAPI's shape and never
//! echoes a secret the client submitted (contract §3).

use auth_proxy::validate::Rejection;
use serde_json::Value;

/// The fixed texts of our error bodies in which a secret may appear by coincidence only
/// (a password `"password"` is not leaked by `ctx.pattern` being `^password$`).
const VOCABULARY: &[&str] = &[
    "^password$",
    "Field required",
    "Input should be a valid string",
];

/// What a client submitted: secret field values, and every other text (names, other values)
/// in which a secret may occur by coincidence.
#[derive(Debug, Default)]
pub struct Submitted {
    pub secrets: Vec<String>,
    pub others: Vec<String>,
}

impl Submitted {
    /// Records a field of a decoded body; `is_secret_field` says which are secrets.
    pub fn field(&mut self, name: &str, value: &str) {
        self.others.push(name.to_owned());
        if is_secret_field(name) {
            self.secrets.push(value.to_owned());
        } else {
            self.others.push(value.to_owned());
        }
    }

    /// The secrets that, if found in an echo, can only have come from a secret field.
    fn checkable(&self) -> impl Iterator<Item = &str> {
        self.secrets.iter().map(String::as_str).filter(|s| {
            !s.is_empty()
                && !self.others.iter().any(|o| o.contains(s))
                && !VOCABULARY.iter().any(|v| v.contains(s))
        })
    }
}

/// Whether a body field holds a secret that no rejection may echo.
fn is_secret_field(name: &str) -> bool {
    matches!(name, "password" | "client_secret" | "refresh_token")
}

/// Panics unless `rejection` is a well-formed FastAPI error body that echoes no secret of `submitted`.
pub fn check_rejection(rejection: &Rejection, submitted: &Submitted) {
    match rejection {
        Rejection::Unprocessable(bytes) => check_422(bytes, submitted),
        Rejection::BadRequest(bytes) => {
            let v = parse(bytes);
            let obj = v.as_object().expect("400 body is an object");
            assert!(
                obj.len() == 1 && obj["detail"].is_string(),
                "400 shape: {v}"
            );
        }
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "rejection is not JSON ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn check_422(bytes: &[u8], submitted: &Submitted) {
    let v = parse(bytes);
    let obj = v.as_object().expect("422 body is an object");
    assert_eq!(obj.len(), 1, "422 has only detail: {v}");
    let entries = obj["detail"].as_array().expect("detail is a list");
    assert!(!entries.is_empty(), "detail lists at least one error");
    for e in entries {
        let e = e.as_object().expect("each error is an object");
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        // Pydantic's key order, input and ctx optional.
        let allowed = [
            &["type", "loc", "msg"][..],
            &["type", "loc", "msg", "input"],
            &["type", "loc", "msg", "ctx"],
            &["type", "loc", "msg", "input", "ctx"],
        ];
        assert!(allowed.contains(&keys.as_slice()), "error keys {keys:?}");
        assert!(e["type"].as_str().is_some_and(|t| !t.is_empty()), "type");
        assert!(e["msg"].is_string(), "msg");
        let loc = e["loc"].as_array().expect("loc is a list");
        assert_eq!(
            loc.first(),
            Some(&Value::from("body")),
            "loc starts at body"
        );
        assert!(loc.len() <= 2, "loc depth");
        if let Some(at) = loc.get(1) {
            assert!(at.is_string() || at.is_u64(), "loc member");
        }
        if let Some(ctx) = e.get("ctx") {
            let ctx = ctx.as_object().expect("ctx is an object");
            assert!(
                ctx.len() == 1 && ctx.values().all(Value::is_string),
                "ctx {ctx:?}"
            );
        }
        // An error located at a plain field (`email`, `grant_type`...) carries that field's
        // value and fixed text in `ctx` (email-validator's reason, a pattern), where a short
        // secret such as "." or "the" appears by coincidence; its `input` is still checked.
        let at_plain_field = loc
            .get(1)
            .and_then(Value::as_str)
            .is_some_and(|field| !is_secret_field(field));
        for secret in submitted.checkable() {
            for member in ["input", "ctx"] {
                if member == "ctx" && at_plain_field {
                    continue;
                }
                if let Some(value) = e.get(member) {
                    assert!(
                        !holds(value, secret),
                        "422 echoes the secret {secret:?} in {member}: {}",
                        String::from_utf8_lossy(bytes)
                    );
                }
            }
        }
    }
    if !has_number_beyond_loc(&v) {
        // Starlette's compact rendering (separators=(",", ":"), ensure_ascii=False) is
        // serde_json's too, except for floats and big integers, which are left out here.
        let again = serde_json::to_vec(&v).expect("re-render");
        assert_eq!(again, bytes, "not compact JSON as Starlette renders it");
    }
}

/// Whether any string or key inside `value` contains `needle`.
fn holds(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(s) => s.contains(needle),
        Value::Array(items) => items.iter().any(|v| holds(v, needle)),
        Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.contains(needle) || holds(v, needle)),
        _ => false,
    }
}

fn has_number_beyond_loc(v: &Value) -> bool {
    v["detail"].as_array().into_iter().flatten().any(|e| {
        ["input", "ctx"]
            .iter()
            .any(|m| e.get(m).is_some_and(has_number))
    })
}

fn has_number(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::Array(items) => items.iter().any(has_number),
        Value::Object(fields) => fields.values().any(has_number),
        _ => false,
    }
}

/// `value` percent-encoded as `application/x-www-form-urlencoded`: every byte but the
/// unreserved ones escaped, so that decoding gives back exactly `value`.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub mod framing_model;

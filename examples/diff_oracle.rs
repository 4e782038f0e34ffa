//! The proxy's side of the differential scripts (`bench/diff_fuzz.py`): reads one JSON request a
//! line on stdin, answers one JSON line on stdout, through the code that serves requests
//! (`auth_proxy::fuzzing` and `auth_proxy::validate`), never a copy of it.
//!
//! A request is `{"op": ..., "body": ..., "ct": ...}` where `body` (and `ct`, the
//! Content-Type, absent for none) are latin-1 strings, one character a byte, so any bytes can be
//! written. The ops:
//!
//! - `json`: `json.loads(body)` → `{"ok": v}`, `{"syntax": [msg, pos]}` or `{"unparsable": true}`;
//!   `v` is tagged so that Python can rebuild its own value from it: ints `{"i": digits}`,
//!   floats `{"f": bits}` (the IEEE bits as a decimal string), objects `{"o": [[k, v], ...]}`.
//! - `email`: `{"ok": true}` or `{"reason": text}` from `EmailStr`, and `faithful` the same from
//!   the step-by-step port of email-validator (they must agree).
//! - `form`: `{"fields": [[name, value] | [name, {"file": filename, "size": n}], ...]}` or
//!   `{"status": 400|422, "body": text}` from the form parser (Starlette's `Request.form()`).
//! - `register`, `refresh`, `login`: `{"status": 200, "upstream": text}` (the body the central
//!   service would get) or the rejection's `{"status": 400|422, "body": text}`.
//!
//! Run it from the script; by hand: `echo '{"op":"json","body":"[1,"}' | cargo run --example diff_oracle`.

use std::borrow::Cow;
use std::io::{BufRead, Write};

use auth_proxy::fuzzing::{email_check, email_check_faithfully, form_parse, json_loads};
use auth_proxy::fuzzing::{FormValue, JsonDecodeError, JsonValue};
use auth_proxy::validate::{self, Rejection};
use serde_json::{json, Value};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(request) => answer(&request),
            Err(e) => json!({"bad_request": e.to_string()}),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
}

/// A latin-1 string back to its bytes; `None` if a character is past U+00FF.
fn bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_str()?
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

fn answer(request: &Value) -> Value {
    let Some(body) = bytes(&request["body"]) else {
        return json!({"bad_request": "body must be a latin-1 string"});
    };
    let ct = bytes(&request["ct"]);
    let ct = ct.as_deref();
    match request["op"].as_str().unwrap_or_default() {
        "json" => match json_loads(&body) {
            Ok(v) => json!({"ok": tagged(&v)}),
            Err(JsonDecodeError::Syntax { msg, pos }) => json!({"syntax": [msg, pos]}),
            Err(JsonDecodeError::Unparsable) => json!({"unparsable": true}),
        },
        "email" => {
            let text = String::from_utf8_lossy(&body);
            let verdict = |r: Result<(), String>| match r {
                Ok(()) => json!({"ok": true}),
                Err(reason) => json!({"reason": reason}),
            };
            json!({"result": verdict(email_check(&text)), "faithful": verdict(email_check_faithfully(&text))})
        }
        "form" => {
            let mut fields = Vec::new();
            let parsed = form_parse(ct, &body, |name: Cow<'_, str>, value| {
                fields.push(match value {
                    FormValue::Text(text) => json!([name, text]),
                    FormValue::File { filename, size } => {
                        json!([name, {"file": filename, "size": size}])
                    }
                });
            });
            match parsed {
                Ok(()) => json!({"fields": fields}),
                Err(rejection) => rejected(rejection),
            }
        }
        "register" => match validate::register(ct, &body) {
            Ok(valid) => upstream(&valid.to_upstream_body()),
            Err(rejection) => rejected(rejection),
        },
        "refresh" => match validate::refresh(ct, &body) {
            Ok(valid) => upstream(&valid.to_upstream_body()),
            Err(rejection) => rejected(rejection),
        },
        "login" => match validate::login_upstream_body(ct, &bytes::Bytes::from(body)) {
            Ok(sent) => upstream(&sent),
            Err(rejection) => rejected(rejection),
        },
        other => json!({"bad_request": format!("unknown op {other:?}")}),
    }
}

fn upstream(body: &[u8]) -> Value {
    json!({"status": 200, "upstream": String::from_utf8_lossy(body)})
}

fn rejected(rejection: Rejection) -> Value {
    let (status, body) = match rejection {
        Rejection::Unprocessable(body) => (422, body),
        Rejection::BadRequest(body) => (400, body),
    };
    json!({"status": status, "body": String::from_utf8_lossy(&body)})
}

fn tagged(v: &JsonValue) -> Value {
    match v {
        JsonValue::Null => Value::Null,
        JsonValue::Bool(b) => json!(b),
        JsonValue::Int(digits) => json!({"i": digits}),
        JsonValue::Float(f) => json!({"f": f.to_bits().to_string()}),
        JsonValue::Str(s) => json!(s),
        JsonValue::Array(items) => Value::Array(items.iter().map(tagged).collect()),
        JsonValue::Object(fields) => {
            json!({"o": fields.iter().map(|(k, v)| json!([k, tagged(v)])).collect::<Vec<_>>()})
        }
    }
}

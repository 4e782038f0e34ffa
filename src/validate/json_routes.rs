//! `/register` and `/refresh`: JSON bodies, a serde fast path for well-formed input and a
//! Python-faithful slow path that explains every failure as FastAPI does.

use std::borrow::Cow;

use serde::Deserialize;

use super::email;
use super::errors::{self, body_input, Entry, Input, Loc};
use super::json::{self, DecodeError, Value};
use super::pytext::is_python_space;
use super::{Refresh, Register, Rejection};

#[derive(Deserialize)]
struct RegisterWire<'a> {
    #[serde(borrow)]
    email: Cow<'a, str>,
    #[serde(borrow)]
    password: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RefreshWire<'a> {
    #[serde(borrow)]
    refresh_token: Cow<'a, str>,
}

/// What FastAPI made of the body before validating it.
enum Body<'a> {
    /// Empty body: FastAPI never looks at it.
    Absent,
    /// Not a JSON content type: validated as raw bytes.
    Raw(&'a [u8]),
    Json(Value),
}

pub fn register<'a>(
    content_type: Option<&[u8]>,
    body: &'a [u8],
) -> Result<Register<'a>, Rejection> {
    if let Some(wire) = fast::<RegisterWire<'a>>(content_type, body) {
        // EmailStr only validates: the address goes upstream as the client wrote it,
        // because `/login` forwards the username verbatim and the central service
        // compares the two strings.
        return match email::check(&wire.email) {
            Ok(()) => Ok(Register {
                email: wire.email,
                password: wire.password,
            }),
            Err(reason) => Err(errors::unprocessable(&[email_error(&wire.email, reason)])),
        };
    }
    let value = model_object(content_type, body)?;
    let mut entries = Vec::new();
    let email = match value.get("email") {
        None => {
            entries.push(Entry::missing(Loc::Field("email"), body_input(&value)));
            None
        }
        Some(Value::Str(s)) => match email::check(s) {
            Ok(()) => Some(Cow::Owned(s.clone())),
            Err(reason) => {
                entries.push(email_error(s, reason));
                None
            }
        },
        Some(other) => {
            entries.push(Entry::string_type("email", other));
            None
        }
    };
    let password = string_field(&value, "password", body_input(&value), &mut entries);
    match (email, password) {
        (Some(email), Some(password)) if entries.is_empty() => Ok(Register {
            email,
            password: Cow::Owned(password),
        }),
        _ => Err(errors::unprocessable(&entries)),
    }
}

pub fn refresh<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Result<Refresh<'a>, Rejection> {
    if let Some(wire) = fast::<RefreshWire<'a>>(content_type, body) {
        return Ok(Refresh {
            refresh_token: wire.refresh_token,
        });
    }
    let body = read(content_type, body)?;
    let mut entries = Vec::new();
    // An embedded body field is looked up with `body.get(...)`: anything but an object
    // (a list, a string, null, raw bytes, no body) has no `.get` and reads as missing.
    let token = if let Body::Json(value @ Value::Object(_)) = &body {
        string_field(value, "refresh_token", Input::Null, &mut entries)
    } else {
        entries.push(Entry::missing(Loc::Field("refresh_token"), Input::Null));
        None
    };
    match token {
        Some(refresh_token) if entries.is_empty() => Ok(Refresh {
            refresh_token: Cow::Owned(refresh_token),
        }),
        _ => Err(errors::unprocessable(&entries)),
    }
}

/// A Pydantic model whose fields are all required plain `str`s, as a route's sole body
/// parameter: the values in `fields` order, or every `missing` / `string_type` error in that
/// order (the central service's own `RegisterRequest` and `RefreshRequest`).
pub fn str_model<const N: usize>(
    content_type: Option<&[u8]>,
    body: &[u8],
    fields: [&'static str; N],
) -> Result<[String; N], Rejection> {
    let value = model_object(content_type, body)?;
    let mut entries = Vec::new();
    let values = fields.map(|field| string_field(&value, field, body_input(&value), &mut entries));
    if entries.is_empty() {
        // `string_field` records an error for every `None`, so there is none left here.
        Ok(values.map(Option::unwrap_or_default))
    } else {
        Err(errors::unprocessable(&entries))
    }
}

/// The JSON object that a sole model body parameter validates, or FastAPI's 422 for a body
/// that is absent (`missing`), not JSON (`model_attributes_type` over the text) or not an
/// object (`model_attributes_type` over the value).
fn model_object(content_type: Option<&[u8]>, body: &[u8]) -> Result<Value, Rejection> {
    let value = match read(content_type, body)? {
        Body::Absent => {
            return Err(errors::unprocessable(&[Entry::missing(
                Loc::Body,
                Input::Null,
            )]))
        }
        Body::Raw(raw) => {
            let text = String::from_utf8_lossy(raw);
            return Err(errors::unprocessable(&[Entry::not_an_object(Input::Text(
                &text,
            ))]));
        }
        Body::Json(v) => v,
    };
    if !matches!(value, Value::Object(_)) {
        return Err(errors::unprocessable(&[Entry::not_an_object(
            Input::Value(&value),
        )]));
    }
    Ok(value)
}

fn email_error(input: &str, reason: String) -> Entry<'_> {
    Entry {
        kind: "value_error",
        loc: Loc::Field("email"),
        msg: format!("value is not a valid email address: {reason}"),
        input: Input::Text(input),
        ctx: Some(("reason", reason)),
    }
}

/// A required `str` field of an object; records `missing` or `string_type`.
fn string_field<'v>(
    value: &'v Value,
    field: &'static str,
    missing: Input<'v>,
    entries: &mut Vec<Entry<'v>>,
) -> Option<String> {
    match value.get(field) {
        None => {
            entries.push(Entry::missing(Loc::Field(field), missing));
            None
        }
        Some(Value::Str(s)) => Some(s.clone()),
        Some(other) => {
            entries.push(Entry::string_type(field, other));
            None
        }
    }
}

/// The fast path: a JSON object that serde takes is one CPython would decode to the same
/// fields. Anything else (BOM, other encodings, duplicates, NaN, deep nesting, lone
/// surrogates, wrong types) goes to the slow path, which is exact.
fn fast<'a, T: Deserialize<'a>>(content_type: Option<&[u8]>, body: &'a [u8]) -> Option<T> {
    if !is_json(content_type) {
        return None;
    }
    // serde would happily take a JSON array for a struct; Python's `dict.get` would not.
    if body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        != Some(&b'{')
    {
        return None;
    }
    // serde skips unknown strings without checking UTF-8; Python decodes the whole body first.
    let text = std::str::from_utf8(body).ok()?;
    if body.len() > 4300 && has_long_digit_run(body) {
        return None; // CPython refuses int literals over 4300 digits; let the slow path decide.
    }
    serde_json::from_str(text).ok()
}

fn has_long_digit_run(body: &[u8]) -> bool {
    // A running count, not `split`: that built a sub-slice for every non-digit byte.
    let mut run = 0usize;
    body.iter().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run > 4300
    })
}

/// FastAPI's body reading: JSON only for `application/json` or `application/*+json`.
fn read<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Result<Body<'a>, Rejection> {
    if body.is_empty() {
        return Ok(Body::Absent);
    }
    if !is_json(content_type) {
        return Ok(Body::Raw(body));
    }
    match json::loads(body) {
        Ok(v) => Ok(Body::Json(v)),
        Err(DecodeError::Syntax { msg, pos }) => Err(errors::unprocessable(&[Entry {
            kind: "json_invalid",
            loc: Loc::Position(pos),
            msg: "JSON decode error".to_owned(),
            input: Input::EmptyObject,
            ctx: Some(("error", msg.to_owned())),
        }])),
        Err(DecodeError::Unparsable) => Err(errors::unparsable_body()),
    }
}

/// `email.message.Message.get_content_type()` is `application/json` or `application/*+json`.
/// A missing or empty header is not JSON (FastAPI 0.165's strict content type).
///
/// Starlette decodes the header as latin-1, one character per byte; only ASCII can match the
/// names compared here, so the bytes are compared as they are, without decoding.
fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(raw) = content_type.filter(|v| !v.is_empty()) else {
        return false;
    };
    if raw.eq_ignore_ascii_case(b"application/json") {
        return true; // what nearly every client sends
    }
    let mut ctype = raw.split(|&b| b == b';').next().unwrap_or_default();
    while let [first, rest @ ..] = ctype {
        if !is_python_space(char::from(*first)) {
            break;
        }
        ctype = rest;
    }
    while let [rest @ .., last] = ctype {
        if !is_python_space(char::from(*last)) {
            break;
        }
        ctype = rest;
    }
    let Some(slash) = ctype.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (main, sub) = (
        ctype.get(..slash).unwrap_or_default(),
        ctype.get(slash + 1..).unwrap_or_default(),
    );
    if sub.contains(&b'/') || !main.eq_ignore_ascii_case(b"application") {
        return false;
    }
    let suffix = sub.get(sub.len().saturating_sub(5)..).unwrap_or_default();
    sub.eq_ignore_ascii_case(b"json") || suffix.eq_ignore_ascii_case(b"+json")
}

#[cfg(test)]
mod tests;

//! Pure request validation: decodes the auth routes' bodies and rejects bad input with the
//! bytes FastAPI 0.165 / Pydantic 2 would send, never echoing a secret.
//!
//! Every route has a fast path (serde into borrowed fields, or a direct form scan) and falls
//! back to a Python-faithful slow path ([`json`], [`form`]) only to explain a failure or to
//! handle a body the fast path does not take. No I/O, no async runtime, no hyper types.

// These docs name FastAPI, CPython, Pydantic and their exception types on nearly every line;
// they are proper nouns, not code, and backticking each one would bury the prose.
#![allow(clippy::doc_markdown)]

mod echo;
pub(crate) mod email;
mod email_chars;
mod email_domain;
mod email_idna;
mod email_pretty;
mod errors;
mod form;
pub(crate) mod form_parse;
mod idna_tables;
pub(crate) mod json;
mod json_routes;
mod outbound;
mod punycode;
mod pytext;

#[cfg(test)]
mod form_vectors;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors;

use std::borrow::Cow;
use std::fmt;

/// Why a request body was refused; the bytes are the complete `application/json` response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 422: the complete response body, bytes exactly as FastAPI/Starlette would send them (after secret redaction).
    Unprocessable(bytes::Bytes),
    /// 400: the complete response body, e.g. `{"detail":"Missing boundary in multipart."}`.
    BadRequest(bytes::Bytes),
}

// The valid bodies borrow their text from the request body wherever it needed no decoding
// (the usual case), so validating one allocates next to nothing.

/// A valid `/register` body.
pub struct Register<'a> {
    /// Exactly as the client wrote it (the JSON string's value): `EmailStr` validated it, but
    /// its normalised form (NFC, lower-case domain, no display name) is not what the user
    /// will log in with, and the central service compares strings.
    pub email: Cow<'a, str>,
    pub password: Cow<'a, str>,
}

/// A valid `/login` form (FastAPI's `OAuth2PasswordRequestForm`).
pub struct Login<'a> {
    pub username: Cow<'a, str>,
    pub password: Cow<'a, str>,
    /// `Some("password")` or absent: an empty value counts as absent, as in FastAPI.
    pub grant_type: Option<Cow<'a, str>>,
    /// Exactly as sent (space-separated scopes); `""` when absent.
    pub scope: Cow<'a, str>,
    pub client_id: Option<Cow<'a, str>>,
    pub client_secret: Option<Cow<'a, str>>,
}

/// A valid `/refresh` body.
pub struct Refresh<'a> {
    pub refresh_token: Cow<'a, str>,
}

/// Validates a `/register` request body.
pub fn register<'a>(
    content_type: Option<&[u8]>,
    body: &'a [u8],
) -> Result<Register<'a>, Rejection> {
    json_routes::register(content_type, body)
}

/// Validates a `/login` request body.
pub fn login<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Result<Login<'a>, Rejection> {
    form::login(content_type, body)
}

/// Validates a `/login` request body and returns the body the central service gets: the
/// client's own bytes when they already are that form (the usual case: no copy, no
/// re-encoding), else the six fields re-encoded by [`Login::to_upstream_body`].
pub fn login_upstream_body(
    content_type: Option<&[u8]>,
    body: &bytes::Bytes,
) -> Result<bytes::Bytes, Rejection> {
    if form::is_upstream_ready(content_type, body) {
        return Ok(body.clone());
    }
    Ok(login(content_type, body)?.to_upstream_body())
}

/// The `username` of a body that [`login_upstream_body`] returned, still urlencoded. That
/// body spells every value as Python's `quote_plus` does, whether it is the client's own or
/// re-encoded, so these bytes name one username exactly as sent (no case folding or other
/// normalisation), however the client encoded its form (urlencoded or multipart).
pub fn login_upstream_username(upstream_body: &[u8]) -> &[u8] {
    upstream_body
        .split(|b| *b == b'&')
        .find_map(|field| field.strip_prefix(b"username="))
        .unwrap_or_default()
}

/// Validates a `/refresh` request body.
pub fn refresh<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Result<Refresh<'a>, Rejection> {
    json_routes::refresh(content_type, body)
}

/// Validates a JSON body against a Pydantic model of required plain `str` fields that is a
/// route's sole body parameter, such as the central service's own `RegisterRequest
/// {email: str, password: str}` (no `EmailStr`) and `RefreshRequest {refresh_token: str}`:
/// the values in `fields` order, or FastAPI's 422 (400 for a body it cannot decode).
pub fn str_model<const N: usize>(
    content_type: Option<&[u8]>,
    body: &[u8],
    fields: [&'static str; N],
) -> Result<[String; N], Rejection> {
    json_routes::str_model(content_type, body, fields)
}

/// FastAPI `OAuth2PasswordBearer`: `None` (401 `{"detail":"Not authenticated"}`) only when the
/// header is absent or empty or its scheme, up to the first space, is not case-insensitively
/// "bearer"; otherwise the rest, stripped of Python whitespace, even when that is empty or no
/// token at all (the route then refuses it as a token). Bytes, as Starlette's latin-1 string.
pub fn oauth2_bearer_token(authorization: Option<&[u8]>) -> Option<&[u8]> {
    let value = authorization.filter(|v| !v.is_empty())?;
    let (scheme, param) = match memchr::memchr(b' ', value) {
        Some(space) => (value.get(..space)?, value.get(space + 1..)?),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let is_space = |b: &u8| pytext::is_python_space(char::from(*b));
    let start = param
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(param.len());
    let end = param
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |last| last + 1);
    param.get(start..end)
}

/// FastAPI `HTTPBearer`: split at the first space, scheme case-insensitively "bearer", token
/// stripped and non-empty. `None` means 401 `{"detail":"Not authenticated"}`.
pub fn bearer_token(authorization: Option<&[u8]>) -> Option<&str> {
    // Starlette decodes header values as latin-1; a non-ASCII token would be re-encoded
    // differently upstream, so only UTF-8 (in practice ASCII) values are taken.
    let value = std::str::from_utf8(authorization?).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches(pytext::is_python_space);
    (!token.is_empty()).then_some(token)
}

impl Register<'_> {
    /// `{"email":...,"password":...}`: exactly these two fields.
    pub fn to_upstream_body(&self) -> bytes::Bytes {
        outbound::json_object(&[("email", &self.email), ("password", &self.password)])
    }
}

impl Login<'_> {
    /// The six form fields, urlencoded; absent optional ones are omitted.
    pub fn to_upstream_body(&self) -> bytes::Bytes {
        let fields = [
            ("grant_type", self.grant_type.as_deref()),
            ("username", Some(&*self.username)),
            ("password", Some(&*self.password)),
            ("scope", Some(&*self.scope)),
            ("client_id", self.client_id.as_deref()),
            ("client_secret", self.client_secret.as_deref()),
        ];
        outbound::urlencoded(&fields)
    }
}

impl Refresh<'_> {
    /// `{"refresh_token":...}`.
    pub fn to_upstream_body(&self) -> bytes::Bytes {
        outbound::json_object(&[("refresh_token", &self.refresh_token)])
    }
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for Register<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Register")
            .field("email", &self.email)
            .field("password", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for Login<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("grant_type", &self.grant_type)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| REDACTED),
            )
            .finish()
    }
}

impl fmt::Debug for Refresh<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresh")
            .field("refresh_token", &REDACTED)
            .finish()
    }
}

#[cfg(test)]
mod tests;

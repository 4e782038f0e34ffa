//! `/login`: FastAPI's `OAuth2PasswordRequestForm` over Starlette's form parsing
//! (urlencoded and multipart), with its errors in parameter order.

use super::errors::{self, Entry, Input, Loc};
use super::form_parse::{self, FormValue};
use super::upstream::unreserved;
use super::{Login, Rejection};

/// The form's parameters, in the order FastAPI validates (and reports) them.
const FIELDS: [&str; 6] = [
    "grant_type",
    "username",
    "password",
    "scope",
    "client_id",
    "client_secret",
];
const GRANT_TYPE_PATTERN: &str = "^password$";

pub fn login<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> Result<Login<'a>, Rejection> {
    let mut found: [Option<FormValue<'a>>; 6] = Default::default();
    form_parse::parse(content_type, body, |name, value| {
        let slot = FIELDS.iter().position(|f| name == *f);
        if let Some(slot) = slot.and_then(|n| found.get_mut(n)) {
            *slot = Some(value); // Starlette's FormData.get: the last value of a repeated field
        }
    })?;
    let mut entries = Vec::new();
    for (value, field) in found.iter().zip(FIELDS) {
        // FastAPI reads "" as absent.
        match value.as_ref().filter(|v| !v.is_empty_input()) {
            None => {
                if matches!(field, "username" | "password") {
                    entries.push(Entry::missing(Loc::Field(field), Input::Null));
                }
            }
            Some(FormValue::Text(s)) => {
                if field == "grant_type" && s != "password" {
                    entries.push(pattern_mismatch(s));
                }
            }
            Some(FormValue::File { .. }) => {
                // FastAPI echoes Starlette's UploadFile internals here; we leave the input out.
                entries.push(Entry::plain(
                    "string_type",
                    Loc::Field(field),
                    "Input should be a valid string",
                    Input::Redacted,
                ));
            }
        }
    }
    if !entries.is_empty() {
        return Err(errors::unprocessable(&entries));
    }
    // Every value left is valid text; a file here would have been an error above.
    let [grant_type, username, password, scope, client_id, client_secret] =
        found.map(|value| match value {
            Some(FormValue::Text(s)) if !s.is_empty() => Some(s),
            _ => None,
        });
    match (username, password) {
        (Some(username), Some(password)) => Ok(Login {
            username,
            password,
            grant_type,
            scope: scope.unwrap_or_default(),
            client_id,
            client_secret,
        }),
        _ => Err(errors::unprocessable(&[Entry::missing(
            Loc::Field("username"),
            Input::Null,
        )])),
    }
}

/// Whether a `/login` body can go upstream as the client sent it: a valid form that is
/// already what [`Login::to_upstream_body`] writes, except that an optional field may be
/// present and empty (the contract allows either). That is the six names in FastAPI's order,
/// each at most once, optional ones possibly absent, separated by single `&`; every value in
/// `quote_plus`'s own spelling ([`is_quote_plus_spelling`]); `grant_type` empty or `password`;
/// `username` and `password` non-empty. Such a body decodes to the same six values as its
/// re-encoding, so forwarding it unchanged saves decoding, re-encoding and two allocations.
/// Anything else, valid or not, takes [`login`].
pub fn is_upstream_ready(content_type: Option<&[u8]>, body: &[u8]) -> bool {
    if !form_parse::is_plain_urlencoded(content_type.unwrap_or_default()) {
        return false;
    }
    let mut next = 0; // the first slot of `FIELDS` that may come next
    for piece in body.split(|&b| b == b'&') {
        let Some((name, value)) = split_at_eq(piece) else {
            return false;
        };
        let Some(slot) = FIELDS
            .iter()
            .skip(next)
            .position(|field| field.as_bytes() == name)
            .map(|offset| next + offset)
        else {
            return false;
        };
        // `username` (1) and `password` (2) are required: neither may be skipped.
        if (next..slot).any(|skipped| matches!(skipped, 1 | 2)) {
            return false;
        }
        let valid = match slot {
            0 => value.is_empty() || value == b"password",
            1 | 2 => !value.is_empty(),
            _ => true,
        };
        if !valid || !is_quote_plus_spelling(value) {
            return false;
        }
        next = slot + 1;
    }
    next > 2
}

fn split_at_eq(piece: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = piece.iter().position(|&b| b == b'=')?;
    Some((piece.get(..eq)?, piece.get(eq + 1..)?))
}

/// Whether `quote_plus(unquote_plus(raw)) == raw` for a value that decodes to ASCII:
/// unreserved bytes, `+` for a space, and `%XX` (upper-case hex) only for an ASCII byte that
/// `quote_plus` escapes. An escape of a non-ASCII byte answers `false` (its UTF-8 would need
/// checking), and so does anything else `unquote_plus` would change the spelling of.
fn is_quote_plus_spelling(raw: &[u8]) -> bool {
    let mut rest = raw;
    loop {
        match rest {
            [] => return true,
            [b'%', hi, lo, tail @ ..] => {
                let byte = match (upper_hex(*hi), upper_hex(*lo)) {
                    (Some(hi), Some(lo)) => hi << 4 | lo,
                    _ => return false,
                };
                if byte >= 0x80 || byte == b' ' || unreserved(byte) {
                    return false;
                }
                rest = tail;
            }
            [b, tail @ ..] if *b == b'+' || unreserved(*b) => rest = tail,
            _ => return false,
        }
    }
}

fn upper_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn pattern_mismatch(input: &str) -> Entry<'_> {
    Entry {
        kind: "string_pattern_mismatch",
        loc: Loc::Field("grant_type"),
        msg: format!("String should match pattern '{GRANT_TYPE_PATTERN}'"),
        input: Input::Text(input),
        ctx: Some(("pattern", GRANT_TYPE_PATTERN.to_owned())),
    }
}

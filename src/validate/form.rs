//! `/login`: FastAPI's `OAuth2PasswordRequestForm` over Starlette's form parsing
//! (urlencoded and multipart), with its errors in parameter order.

use super::errors::{self, Entry, Input, Loc};
use super::form_parse::{self, FormValue};
use super::outbound::{unreserved, UNRESERVED};
use super::{Login, Rejection};

/// The form's parameters, in the order FastAPI validates (and reports) them.
pub(super) const FIELDS: [&str; 6] = [
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
/// present and empty (the central service reads both alike). That is the six names in FastAPI's order,
/// each at most once, optional ones possibly absent, separated by single `&`; every value in
/// `quote_plus`'s own spelling ([`is_quote_plus_spelling`]); `grant_type` empty or `password`;
/// `username` and `password` non-empty. Such a body decodes to the same six values as its
/// re-encoding, so forwarding it unchanged saves decoding, re-encoding and two allocations.
/// Anything else, valid or not, takes [`login`].
pub fn is_upstream_ready(content_type: Option<&[u8]>, body: &[u8]) -> bool {
    if !form_parse::is_plain_urlencoded(content_type.unwrap_or_default()) {
        return false;
    }
    let mut rest = body;
    let mut next = 0; // the first slot of `FIELDS` that may come next
    loop {
        // The next field present: its slot, and what follows its `name=`.
        let Some((slot, raw_value)) = (next..FIELDS.len()).find_map(|slot| {
            let after_name = rest.strip_prefix(FIELDS.get(slot)?.as_bytes())?;
            Some((slot, after_name.strip_prefix(b"=")?))
        }) else {
            return false;
        };
        // `username` (1) and `password` (2) are required: neither may be skipped.
        if (next..slot).any(|skipped| matches!(skipped, 1 | 2)) {
            return false;
        }
        let Some((value, after)) = quote_plus_value(raw_value) else {
            return false;
        };
        let valid = match slot {
            0 => value.is_empty() || value == b"password",
            1 | 2 => !value.is_empty(),
            _ => true,
        };
        if !valid {
            return false;
        }
        next = slot + 1;
        match after {
            Some(tail) => rest = tail,
            None => return next > 2,
        }
    }
}

/// The value at the start of `raw`, up to the next `&` (and what follows that `&`, if there
/// is one), when `quote_plus(unquote_plus(value)) == value` for a value that decodes to
/// ASCII: unreserved bytes, `+` for a space, and `%XX` (upper-case hex) only for an ASCII
/// byte that `quote_plus` escapes. `None` for anything else, an escape of a non-ASCII byte
/// included (its UTF-8 would need checking).
fn quote_plus_value(raw: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match CLASS[usize::from(b)] {
            Class::Plain => i += 1,
            Class::Amp => return Some((raw.get(..i)?, raw.get(i + 1..))),
            Class::Percent => {
                let hi = upper_hex(*raw.get(i + 1)?)?;
                let lo = upper_hex(*raw.get(i + 2)?)?;
                let byte = hi << 4 | lo;
                if byte >= 0x80 || byte == b' ' || unreserved(byte) {
                    return None;
                }
                i += 3;
            }
            Class::Other => return None,
        }
    }
    Some((raw, None))
}

#[derive(Clone, Copy)]
enum Class {
    /// Stands for itself in `quote_plus`'s spelling: an unreserved byte, or `+` (a space).
    Plain,
    Percent,
    Amp,
    Other,
}

const CLASS: [Class; 256] = {
    let mut table = [Class::Other; 256];
    let mut c: u8 = 0;
    loop {
        table[c as usize] = match c {
            b'%' => Class::Percent,
            b'&' => Class::Amp,
            _ if c == b'+' || UNRESERVED[c as usize] => Class::Plain,
            _ => Class::Other,
        };
        if c == u8::MAX {
            break table;
        }
        c += 1;
    }
};

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

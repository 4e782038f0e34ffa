//! `/login`: FastAPI's `OAuth2PasswordRequestForm` over Starlette's form parsing
//! (urlencoded and multipart), with its errors in parameter order.

use super::errors::{self, Entry, Input, Loc};
use super::form_parse::{self, FormValue};
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

fn pattern_mismatch(input: &str) -> Entry<'_> {
    Entry {
        kind: "string_pattern_mismatch",
        loc: Loc::Field("grant_type"),
        msg: format!("String should match pattern '{GRANT_TYPE_PATTERN}'"),
        input: Input::Text(input),
        ctx: Some(("pattern", GRANT_TYPE_PATTERN.to_owned())),
    }
}

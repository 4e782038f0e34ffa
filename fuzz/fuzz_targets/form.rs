//! The urlencoded and multipart form paths (`src/validate/form*.rs`): any content type and
//! body is parsed without a panic; a form the parser accepts, re-encoded (urlencoded always,
//! multipart when its names can be written in a header), parses to the same fields; `/login`
//! rejects with FastAPI's shape and never echoes a submitted password or client secret; and
//! the body it sends upstream decodes to the six fields it validated.
#![no_main]

use std::borrow::Cow;

use auth_proxy::fuzzing::{form_parse, FormValue};
use auth_proxy::validate::{login, login_upstream_body};
use fuzz_checks::{check_rejection, urlencode, Submitted};
use libfuzzer_sys::fuzz_target;

const URLENCODED: &[u8] = b"application/x-www-form-urlencoded";

/// A parsed field, owned: (name, text) or (name, file name and size).
#[derive(Debug, PartialEq, Eq, Clone)]
enum Field {
    Text(String, String),
    File(String, String, usize),
}

fn fields(content_type: &[u8], body: &[u8]) -> Result<Vec<Field>, auth_proxy::validate::Rejection> {
    let mut out = Vec::new();
    form_parse(Some(content_type), body, |name: Cow<'_, str>, value| {
        out.push(match value {
            FormValue::Text(text) => Field::Text(name.into_owned(), text.into_owned()),
            FormValue::File { filename, size } => Field::File(name.into_owned(), filename, size),
        });
    })?;
    Ok(out)
}

// Input: the Content-Type, a LF, then the body (the seeds in fuzz/seeds/form are readable).
fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(lf) => (data[..lf].to_vec(), data[lf + 1..].to_vec()),
        None => (URLENCODED.to_vec(), data.to_vec()),
    };
    let body = &body;
    let parsed = fields(&content_type, body);
    if let Ok(parsed) = &parsed {
        reencoded_alike(parsed);
    }
    let mut submitted = Submitted::default();
    for field in parsed.iter().flatten() {
        match field {
            Field::Text(name, value) => submitted.field(name, value),
            Field::File(name, filename, _) => {
                submitted.others.push(name.clone());
                submitted.others.push(filename.clone());
            }
        }
    }
    match login(Some(&content_type), body) {
        Err(rejection) => check_rejection(&rejection, &submitted),
        Ok(valid) => {
            let upstream =
                login_upstream_body(Some(&content_type), &bytes::Bytes::from(body.clone()))
                    .expect("a valid login has an upstream body");
            let sent = fields(URLENCODED, &upstream).expect("upstream body parses");
            let expect = [
                ("grant_type", valid.grant_type.as_deref()),
                ("username", Some(&*valid.username)),
                ("password", Some(&*valid.password)),
                ("scope", Some(&*valid.scope)),
                ("client_id", valid.client_id.as_deref()),
                ("client_secret", valid.client_secret.as_deref()),
            ];
            for (name, want) in expect {
                let got = sent.iter().rev().find_map(|f| match f {
                    Field::Text(n, v) if n == name => Some(v.as_str()),
                    _ => None,
                });
                // An optional field may go upstream empty or be left out (contract §2).
                let got = got.filter(|v| !v.is_empty() || name == "scope");
                let want = want.filter(|v| !v.is_empty() || name == "scope");
                assert_eq!(got.unwrap_or(""), want.unwrap_or(""), "upstream {name}");
            }
        }
    }
});

/// Re-encodes `parsed` and parses it again: the same fields must come back.
fn reencoded_alike(parsed: &[Field]) {
    if parsed.iter().all(|f| matches!(f, Field::Text(..))) {
        let body = parsed
            .iter()
            .filter_map(|f| match f {
                Field::Text(n, v) => Some(format!("{}={}", urlencode(n), urlencode(v))),
                Field::File(..) => None,
            })
            .collect::<Vec<_>>()
            .join("&");
        let again = fields(URLENCODED, body.as_bytes()).expect("re-encoded form parses");
        assert_eq!(again, parsed, "urlencoded round trip of {body:?}");
    }
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-. ".contains(&b))
    };
    let writable = parsed.iter().all(|f| match f {
        Field::Text(n, _) => plain(n),
        Field::File(n, filename, _) => plain(n) && plain(filename) && !filename.is_empty(),
    });
    if !writable {
        return;
    }
    let boundary = "fuzzBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for field in parsed {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match field {
            Field::Text(name, value) => {
                if value.contains(boundary) {
                    return;
                }
                let head = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n");
                body.extend_from_slice(head.as_bytes());
                body.extend_from_slice(value.as_bytes());
            }
            Field::File(name, filename, size) => {
                let head = format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                );
                body.extend_from_slice(head.as_bytes());
                body.resize(body.len() + size, b'x');
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let again = fields(content_type.as_bytes(), &body).expect("re-encoded multipart parses");
    assert_eq!(again, parsed, "multipart round trip");
}

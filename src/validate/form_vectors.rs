//! The urlencoded form vectors recorded from python-multipart 0.0.34 and FastAPI 0.165
//! (`tests/vectors/forms-0.0.34.jsonl`, written by `tests/vectors/forms.py`), and the proxy's
//! decision on each: the same fields forwarded, or the same 4xx body byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use serde_json::Value as J;

use super::{login_upstream_body, Rejection};

const FORMS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/forms-0.0.34.jsonl"
));

/// One recorded body and what the Python stack made of it.
pub struct FormVector {
    /// The body as the vector writes it: one character per byte.
    pub text: String,
    pub body: Vec<u8>,
    /// Starlette's form items, in order; `None` when it answered `form_error` (a 400) instead.
    pub fields: Option<Vec<(String, String)>>,
    pub form_error: Option<String>,
    /// FastAPI's status and body for an `OAuth2PasswordRequestForm` endpoint.
    pub status: u16,
    pub fastapi_body: String,
    /// The 4xx body the proxy sends (FastAPI's, secrets redacted).
    pub proxy_body: Option<String>,
}

pub fn lines() -> Vec<FormVector> {
    let vectors: Vec<FormVector> = FORMS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: J = serde_json::from_str(line).expect("vector line");
            let text = v["body_latin1"].as_str().expect("body_latin1").to_owned();
            let body = text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
                .collect();
            let fields = v["fields"].as_array().map(|pairs| {
                pairs
                    .iter()
                    .map(|pair| {
                        let text = |n: usize| pair[n].as_str().expect("field text").to_owned();
                        (text(0), text(1))
                    })
                    .collect()
            });
            let text_of = |key: &str| v[key].as_str().map(str::to_owned);
            FormVector {
                text,
                body,
                fields,
                form_error: text_of("form_error"),
                status: u16::try_from(v["status"].as_u64().expect("status")).expect("status"),
                fastapi_body: text_of("body").expect("body"),
                proxy_body: text_of("proxy_body"),
            }
        })
        .collect();
    assert!(vectors.len() > 100, "the recorded vectors are all there");
    vectors
}

/// The six values FastAPI's form held, from a 200 answer of the recording endpoint: `None`
/// for an optional field it did not get (absent or empty).
pub fn fastapi_values(body: &str) -> [(&'static str, Option<String>); 6] {
    let v: J = serde_json::from_str(body).expect("FastAPI's 200 body");
    super::form::FIELDS.map(|name| (name, v[name].as_str().map(str::to_owned)))
}

/// The six values an upstream form carries, as the central service's form parser reads
/// them; an absent or empty optional field is `None` (the central service reads both alike), except
/// `scope`, which FastAPI defaults to `""`.
pub fn upstream_values(upstream: &[u8]) -> [(&'static str, Option<String>); 6] {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(upstream).expect("urlencoded");
    super::form::FIELDS.map(|name| {
        let value = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let value = match (name, value) {
            ("scope", value) => Some(value.unwrap_or_default()),
            (_, value) => value.filter(|v| !v.is_empty()),
        };
        (name, value)
    })
}

#[test]
fn every_form_vector_gets_fastapis_decision() {
    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
    for line in lines() {
        let got = login_upstream_body(FORM, &bytes::Bytes::from(line.body.clone()));
        match (line.status, got) {
            (200, Ok(upstream)) => assert_eq!(
                upstream_values(&upstream),
                fastapi_values(&line.fastapi_body),
                "{:?} forwarded as {:?}",
                line.text,
                String::from_utf8_lossy(&upstream)
            ),
            (422, Err(Rejection::Unprocessable(body)))
            | (400, Err(Rejection::BadRequest(body))) => {
                assert_eq!(
                    std::str::from_utf8(&body).unwrap(),
                    line.proxy_body
                        .as_deref()
                        .expect("a 4xx has its proxy body"),
                    "{:?}",
                    line.text
                );
            }
            (status, got) => panic!("{:?}: FastAPI {status}, proxy {got:?}", line.text),
        }
    }
}

//! Golden vectors: every recorded FastAPI response and every `EmailStr` case, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use serde_json::Value as J;

use super::errors::SECRET_FIELDS;
use super::json::{self, Value};
use super::{bearer_token, echo, email, login, refresh, register, Rejection};

const ERRORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/fastapi-errors.jsonl"
));
const EMAILS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vectors/emails.jsonl"
));

/// Python's default `json.dumps` separators are `", "` and `": "`; Starlette's are compact.
fn compact(python_text: &str) -> String {
    let mut out = String::with_capacity(python_text.len());
    let (mut in_str, mut escaped, mut prev) = (false, false, ' ');
    for c in python_text.chars() {
        if in_str {
            in_str = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else if c == '"' {
            in_str = true;
        } else if c == ' ' && matches!(prev, ',' | ':') {
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
}

fn render(v: &Value) -> String {
    let mut s = String::new();
    echo::value(&mut s, v);
    s
}

/// Contract §3: drop `input` where the error is about a secret or the input holds one.
pub(super) fn redact(body: &mut Value) {
    let Value::Object(top) = body else { return };
    let Some((_, Value::Array(entries))) = top.iter_mut().find(|(k, _)| k == "detail") else {
        return;
    };
    for entry in entries {
        let Value::Object(fields) = entry else {
            continue;
        };
        let about_secret = fields.iter().any(|(k, v)| {
            k == "loc" && matches!(v, Value::Array(l) if matches!(l.last(), Some(Value::Str(f)) if SECRET_FIELDS.contains(&f.as_str())))
        });
        let holds_secret = fields.iter().any(|(k, v)| {
            k == "input" && matches!(v, Value::Object(o) if o.iter().any(|(key, _)| SECRET_FIELDS.contains(&key.as_str())))
        });
        if about_secret || holds_secret {
            fields.retain(|(k, _)| k != "input");
        }
    }
}

/// The vector's `body`, as Starlette would send it, after redaction. The raw text is what
/// Python wrote; decoding and re-echoing it must reproduce it exactly before redaction.
fn expected_body(line: &str) -> Vec<u8> {
    let raw = line
        .split_once("\"body\": ")
        .map(|(_, b)| b.trim_end())
        .and_then(|b| b.strip_suffix('}'))
        .expect("body is the last key");
    let mut value = json::loads(raw.as_bytes()).expect("vector body is JSON");
    assert_eq!(
        render(&value),
        compact(raw),
        "echo must match Python's own output"
    );
    redact(&mut value);
    render(&value).into_bytes()
}

fn form_urlencode(data: &serde_json::Map<String, J>) -> Vec<u8> {
    let fields: Vec<(&str, Option<&str>)> =
        data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    super::outbound::urlencoded(&fields).to_vec()
}

/// (status, body) for a vector's request; `None` for routes outside this layer.
fn run(request: &J) -> Option<(u16, Vec<u8>)> {
    let header = |name: &str| {
        request["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
    };
    let (mut content_type, body): (Option<&str>, Vec<u8>) = if let Some(j) = request.get("json") {
        (
            Some("application/json"),
            serde_json::to_vec(j).expect("json"),
        )
    } else if let Some(d) = request.get("data") {
        (
            Some("application/x-www-form-urlencoded"),
            form_urlencode(d.as_object().expect("data is a dict")),
        )
    } else {
        (
            None,
            request["content"]
                .as_str()
                .unwrap_or("")
                .as_bytes()
                .to_vec(),
        )
    };
    if let Some(ct) = header("content-type") {
        content_type = Some(ct);
    }
    let ct = content_type.map(str::as_bytes);
    let outcome = |r: Result<(), Rejection>| match r {
        Ok(()) => (200, Vec::new()),
        Err(Rejection::Unprocessable(b)) => (422, b.to_vec()),
        Err(Rejection::BadRequest(b)) => (400, b.to_vec()),
    };
    match (request["method"].as_str()?, request["path"].as_str()?) {
        ("POST", "/register") => Some(outcome(register(ct, &body).map(drop))),
        ("POST", "/login") => Some(outcome(login(ct, &body).map(drop))),
        ("POST", "/refresh") => Some(outcome(refresh(ct, &body).map(drop))),
        ("GET", "/protected") => Some(
            match bearer_token(header("authorization").map(str::as_bytes)) {
                Some(_) => (200, Vec::new()),
                None => (401, br#"{"detail":"Not authenticated"}"#.to_vec()),
            },
        ),
        _ => None,
    }
}

#[test]
fn every_fastapi_vector_matches_byte_for_byte() {
    let (mut checked, mut router_only) = (0, 0);
    for line in ERRORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: J = serde_json::from_str(line).expect("vector line");
        let Some((status, body)) = run(&v["request"]) else {
            assert!(
                matches!(v["status"].as_u64(), Some(404 | 405)),
                "unrouted vector {}",
                v["case"]
            );
            router_only += 1;
            continue;
        };
        assert_eq!(
            u64::from(status),
            v["status"].as_u64().expect("status"),
            "{}",
            v["case"]
        );
        let want = expected_body(line);
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&want),
            "{}",
            v["case"]
        );
        checked += 1;
    }
    assert_eq!(
        (checked, router_only),
        (
            ERRORS.lines().filter(|l| !l.trim().is_empty()).count() - 2,
            2
        )
    );
}

#[test]
fn every_email_vector_matches() {
    let mut n = 0;
    for line in EMAILS.lines().filter(|l| !l.trim().is_empty()) {
        let v: J = serde_json::from_str(line).expect("vector line");
        let input = v["input"].as_str().expect("input");
        let got = email::validate(input).map(std::borrow::Cow::into_owned);
        let body = serde_json::to_vec(&serde_json::json!({"email": input, "password": "x"}))
            .expect("json");
        if v["valid"].as_bool().expect("valid") {
            // Informative since contract v2: what Pydantic would have made of it.
            assert_eq!(
                got,
                Ok(v["normalized"].as_str().expect("normalized").to_owned()),
                "{input:?}"
            );
            // What the central service gets: the address exactly as the client wrote it.
            let upstream = register(Some(b"application/json"), &body)
                .expect("valid")
                .to_upstream_body();
            let mut want = String::from(r#"{"email":"#);
            echo::string(&mut want, input);
            want.push_str(r#","password":"x"}"#);
            assert_eq!(
                String::from_utf8_lossy(&upstream),
                want,
                "{input:?} goes upstream as written"
            );
        } else {
            let msg = v["msg"].as_str().expect("msg");
            let reason = msg
                .strip_prefix("value is not a valid email address: ")
                .expect("pydantic prefix");
            assert_eq!(got, Err(reason.to_owned()), "{input:?}");
            // And through the route, as the complete 422 body.
            let mut want =
                String::from(r#"{"detail":[{"type":"value_error","loc":["body","email"],"msg":"#);
            echo::string(&mut want, msg);
            want.push_str(",\"input\":");
            echo::string(&mut want, input);
            want.push_str(",\"ctx\":{\"reason\":");
            echo::string(&mut want, reason);
            want.push_str("}}]}");
            let got = register(Some(b"application/json"), &body).map(drop);
            assert_eq!(got, Err(Rejection::Unprocessable(want.into())), "{input:?}");
        }
        n += 1;
    }
    assert_eq!(n, EMAILS.lines().filter(|l| !l.trim().is_empty()).count());
}

//! Every golden vector of `../shared/vectors/` against the proxy over a real socket: status,
//! headers and body bytes as FastAPI sent them (secrets redacted), and nothing forwarded for
//! rejected input; valid emails reach the central service exactly as the client wrote them
//! (contract v2: the vectors' `normalized` column is informative only).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::{request, spawn_proxy, MockUpstream};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors");

/// The vectors rendered to exact bytes by `tests/vectors/render.py` (see its doc).
fn rendered_error_vectors() -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/render.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(format!("{VECTORS}/fastapi-errors.jsonl"))
        .output()
        .expect("python3 runs the vector renderer");
    assert!(
        output.status.success(),
        "render.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("rendered vector"))
        .collect()
}

fn vector_lines(file: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(format!("{VECTORS}/{file}")).expect("vector file beside the repo");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("vector line"))
        .collect()
}

#[tokio::test]
async fn every_fastapi_error_vector_is_answered_byte_exact_and_nothing_is_forwarded() {
    let vectors = rendered_error_vectors();
    assert_eq!(
        vectors.len(),
        vector_lines("fastapi-errors.jsonl").len(),
        "every line rendered"
    );
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    for vector in &vectors {
        let case = vector["case"].as_str().unwrap();
        let content_type = vector["headers"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.as_str().unwrap());
        let mut req = request(
            vector["method"].as_str().unwrap(),
            vector["path"].as_str().unwrap(),
            content_type,
            vector["body"].as_str().unwrap(),
        );
        for (name, value) in vector["headers"].as_object().unwrap() {
            if !name.eq_ignore_ascii_case("content-type") {
                req.headers_mut().append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
                );
            }
        }
        let got = client.send(req).await;
        assert_eq!(
            u64::from(got.status.as_u16()),
            vector["status"].as_u64().unwrap(),
            "{case}: status"
        );
        assert_eq!(
            got.text(),
            vector["expect_body"].as_str().unwrap(),
            "{case}: body bytes"
        );
        for (name, value) in vector["expect_headers"].as_object().unwrap() {
            assert_eq!(
                got.header(name),
                Some(value.as_str().unwrap()),
                "{case}: header {name}"
            );
        }
        assert!(got.header("x-request-id").is_some(), "{case}: x-request-id");
        assert!(
            mock.requests().is_empty(),
            "{case}: rejected input was forwarded"
        );
    }
}

#[tokio::test]
async fn every_email_vector_is_forwarded_as_written_or_rejected_with_its_message() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let emails = vector_lines("emails.jsonl");
    assert!(!emails.is_empty());
    for (n, vector) in emails.iter().enumerate() {
        let input = vector["input"].as_str().unwrap();
        let body = serde_json::json!({"email": input, "password": "pw"}).to_string();
        let got = client
            .send(request(
                "POST",
                "/register",
                Some("application/json"),
                &body,
            ))
            .await;
        if vector["valid"].as_bool().unwrap() {
            assert_eq!(got.status.as_u16(), 200, "{input:?}: {}", got.text());
            let forwarded = mock.requests().pop().expect("forwarded").body;
            assert_eq!(
                std::str::from_utf8(&forwarded).unwrap(),
                body,
                "{input:?} goes upstream as written"
            );
        } else {
            let msg = vector["msg"].as_str().unwrap();
            let reason = msg
                .strip_prefix("value is not a valid email address: ")
                .unwrap();
            let expected = serde_json::json!({"detail": [{
                "type": "value_error", "loc": ["body", "email"], "msg": msg, "input": input,
                "ctx": {"reason": reason},
            }]});
            got.assert_json(422, &expected.to_string());
        }
        let forwarded_so_far = emails[..=n].iter().filter(|v| v["valid"] == true).count();
        assert_eq!(
            mock.requests().len(),
            forwarded_so_far,
            "{input:?}: only valid emails are forwarded"
        );
    }
}

/// The six OAuth2 form fields in FastAPI's order.
const FORM_FIELDS: [&str; 6] = [
    "grant_type",
    "username",
    "password",
    "scope",
    "client_id",
    "client_secret",
];

/// What a form holds for the central service: an absent or empty optional field is `None`
/// (the contract allows either), `scope` defaults to `""` as in FastAPI.
fn upstream_form_values(body: &[u8]) -> Vec<(&'static str, Option<String>)> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap();
    FORM_FIELDS
        .iter()
        .map(|&name| {
            let value = pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
            let value = if name == "scope" {
                Some(value.cloned().unwrap_or_default())
            } else {
                value.filter(|v| !v.is_empty()).cloned()
            };
            (name, value)
        })
        .collect()
}

#[tokio::test]
async fn every_form_vector_is_forwarded_or_refused_as_fastapi_decided() {
    // tests/vectors/forms-0.0.34.jsonl: urlencoded bodies as python-multipart 0.0.34 and
    // FastAPI 0.165 read them (recorded by tests/vectors/forms.py).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/forms-0.0.34.jsonl"
    ))
    .unwrap();
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let mut forwarded = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let shown = v["body_latin1"].as_str().unwrap();
        let body: Vec<u8> = shown.chars().map(|c| u8::try_from(c).unwrap()).collect();
        let req = http::Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let got = client.send(req).await;
        let status = v["status"].as_u64().unwrap();
        assert_eq!(
            u64::from(got.status.as_u16()),
            status,
            "{shown:?}: {}",
            got.text()
        );
        if status == 200 {
            forwarded += 1;
            let seen = mock.requests();
            assert_eq!(seen.len(), forwarded, "{shown:?} forwarded once");
            let fastapi: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
            let want: Vec<(&str, Option<String>)> = FORM_FIELDS
                .iter()
                .map(|&name| (name, fastapi[name].as_str().map(str::to_owned)))
                .collect();
            assert_eq!(
                upstream_form_values(&seen[forwarded - 1].body),
                want,
                "{shown:?}"
            );
        } else {
            got.assert_json(
                got.status.as_u16(),
                v["proxy_body"]
                    .as_str()
                    .expect("a 4xx vector has the proxy's body"),
            );
            assert_eq!(mock.requests().len(), forwarded, "{shown:?} was forwarded");
        }
    }
    assert!(
        forwarded > 100,
        "{forwarded} of the vectors are valid forms"
    );
}

#[tokio::test]
async fn a_punycode_label_of_a_forbidden_code_point_gets_the_idna_packages_words() {
    // Issue 14 §2, as FastAPI 0.165 (email-validator 2.4, idna 3.21) answered it; the rule
    // behind it is checked on every address of tests/vectors/idna-3.21.jsonl by the unit tests.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let got = client
        .send(request(
            "POST",
            "/register",
            Some("application/json"),
            r#"{"email":"Ä@XN--A.UM","password":"pw"}"#,
        ))
        .await;
    let reason = r"The part after the @-sign is not valid IDNA (Codepoint U+0080 at position 1 of '\\x80' not allowed).";
    got.assert_json(
        422,
        &format!(
            r#"{{"detail":[{{"type":"value_error","loc":["body","email"],"msg":"value is not a valid email address: {reason}","input":"Ä@XN--A.UM","ctx":{{"reason":"{reason}"}}}}]}}"#
        ),
    );
    assert!(mock.requests().is_empty());
}

//! Differential check against a live FastAPI oracle's recorded answers (developer tool).
//!
//! Set `VALIDATE_DIFF_FILE` to a JSON-lines file of `{route, ct, body, status, resp}` (base64
//! for bytes) recorded from the reference FastAPI app; without it the test does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use super::json;
use super::{login, refresh, register, Rejection};

fn b64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (u32::from(d) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn matches_recorded_fastapi_answers() {
    let Ok(path) = std::env::var("VALIDATE_DIFF_FILE") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let (mut bad, mut total) = (0, 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let status = v["status"].as_u64().unwrap();
        if status == 500 {
            continue; // FastAPI crashed; we answer something sane instead.
        }
        total += 1;
        let ct = v["ct"].as_str().map(b64);
        let body = b64(v["body"].as_str().unwrap());
        let mut want = b64(v["resp"].as_str().unwrap());
        if status == 422 {
            let mut value = json::loads(&want).unwrap();
            super::vectors::redact(&mut value);
            let mut s = String::new();
            super::echo::value(&mut s, &value);
            want = s.into_bytes();
        }
        let got = match v["route"].as_str().unwrap() {
            "/register" => register(ct.as_deref(), &body).map(drop),
            "/login" => login(ct.as_deref(), &body).map(drop),
            _ => refresh(ct.as_deref(), &body).map(drop),
        };
        let (got_status, got_body) = match got {
            Ok(()) => (200, Vec::new()),
            Err(Rejection::Unprocessable(b)) => (422, b.to_vec()),
            Err(Rejection::BadRequest(b)) => (400, b.to_vec()),
        };
        let same = got_status == status && (status == 200 || got_body == want);
        if !same {
            bad += 1;
            eprintln!(
                "MISMATCH {} ct={:?} body={:?}\n  want {status} {}\n  got  {got_status} {}",
                v["route"],
                ct.as_deref().map(String::from_utf8_lossy),
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got_body)
            );
        }
    }
    assert_eq!(bad, 0, "{bad} of {total} differ");
}

//! The dev service answers as the reference central auth service's current code does: every
//! request of `tests/vectors/central.jsonl` (recorded from that service by
//! `tests/vectors/central_record.py`), replayed in order against a fresh dev service, gets the
//! recorded status, `Content-Type`, `WWW-Authenticate`, `Allow`, `Location` and exact body bytes,
//! or the line's own `dev` answer where the dev service differs on purpose (and says why).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use auth_proxy::dev_auth::{self, DevAuth, DevAuthArgs};
use serde_json::Value;
use support::{request, WithHeader, H1};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const RECORDING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/central.jsonl");
/// The response headers the recording keeps (the rest are the servers' own: date, server).
const KEPT_HEADERS: [&str; 4] = ["content-type", "www-authenticate", "allow", "location"];

async fn spawn_dev_auth() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let auth = Arc::new(DevAuth::new(&DevAuthArgs::default()));
    tokio::spawn(dev_auth::serve(listener, auth, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// `{access}` and `{refresh}` replaced by the tokens of the last login.
fn fill(text: &str, tokens: &HashMap<&str, String>) -> String {
    tokens.iter().fold(text.to_owned(), |text, (name, token)| {
        text.replace(&format!("{{{name}}}"), token)
    })
}

/// The recording's placeholders in a body: the refresh token the request presented becomes
/// `{refresh}`, any other JWT `<jwt>` (the values of a JSON object's JWT-shaped strings).
fn placeholders(body: &str, presented_refresh: Option<&str>) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let jwts = fields
        .values()
        .filter_map(Value::as_str)
        .filter(|value| value.starts_with("eyJ") && value.split('.').count() == 3);
    jwts.fold(body.to_owned(), |body, jwt| {
        let placeholder = if Some(jwt) == presented_refresh {
            "{refresh}"
        } else {
            "<jwt>"
        };
        body.replace(jwt, placeholder)
    })
}

fn text(value: &Value) -> &str {
    value.as_str().expect("a string in the recording")
}

/// What the dev service answered, in the recording's terms: status, kept headers, body.
fn answer_line(got: &support::Received, presented_refresh: Option<&str>) -> Value {
    let headers: serde_json::Map<String, Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| Some((name.to_string(), got.header(name)?.into())))
        .collect();
    serde_json::json!({
        "status": got.status.as_u16(),
        "headers": headers,
        "body": placeholders(&got.text(), presented_refresh),
    })
}

#[tokio::test]
async fn dev_service_answers_every_recorded_request_as_the_central_service_did() {
    let (addr, _stop) = spawn_dev_auth().await;
    let recording = std::fs::read_to_string(RECORDING).expect("the recording");
    let mut tokens: HashMap<&str, String> = HashMap::new();
    let mut differences = Vec::new();
    let mut cases = 0;
    for line in recording.lines() {
        let case: Value = serde_json::from_str(line).expect("a JSON line");
        let (method, path, body) = (
            text(&case["method"]),
            text(&case["path"]),
            text(&case["body"]),
        );
        let presented = body
            .contains("{refresh}")
            .then(|| tokens.get("refresh").cloned());
        let mut sent = request(method, path, None, &fill(body, &tokens)).with("host", "localhost");
        for (name, value) in case["headers"].as_object().expect("headers") {
            sent = sent.with(name, &fill(text(value), &tokens));
        }
        // A connection each: a refused body (413) may close its connection.
        let got = H1::connect(addr).await.send(sent).await;
        let mut expected = case.get("dev").unwrap_or(&case["expect"]).clone();
        if let Some(fields) = expected.as_object_mut() {
            fields.remove("why");
        }
        let answered = answer_line(&got, presented.flatten().as_deref());
        if answered != expected {
            differences.push(format!(
                "{}\n  central: {expected}\n  dev:     {answered}",
                case["case"]
            ));
        }
        let issued = got.status == 200 && matches!(path, "/login" | "/refresh");
        if issued && case.get("dev").is_none() {
            let json: Value = serde_json::from_slice(&got.body).expect("tokens");
            tokens.insert("access", text(&json["access_token"]).to_owned());
            tokens.insert("refresh", text(&json["refresh_token"]).to_owned());
        }
        cases += 1;
    }
    assert!(
        cases >= 80,
        "the whole recording was replayed ({cases} cases)"
    );
    assert!(
        differences.is_empty(),
        "{} of {cases} answers differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

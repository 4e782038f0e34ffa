//! Issue 13 §5: request edges — `Host`, spoofable client-address headers, an oversized `Content-Length`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{get, post_json, spawn_proxy, MockUpstream, Received, WithHeader, WAIT};

const REFRESH: &str = r#"{"refresh_token":"r"}"#;

/// `POST /refresh` as raw HTTP/1.x: the request line's version, then `head` lines, then the body.
fn refresh(version: &str, head: &[&str]) -> String {
    let mut text = format!(
        "POST /refresh {version}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        REFRESH.len()
    );
    for line in head {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(REFRESH);
    text
}

/// The proxy's own JSON answer, whole: status, the exact body and its length, a request id,
/// `Connection: close`, and the connection closed afterwards.
async fn assert_closing_json(raw: &mut support::RawConn, got: &Received, status: u16, body: &str) {
    got.assert_json(status, body);
    assert_eq!(
        got.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(got.header("connection"), Some("close"));
    assert!(
        got.header("x-request-id").is_some(),
        "X-Request-Id on the 400"
    );
    assert!(
        raw.closed_within(WAIT).await,
        "connection closed after {status}"
    );
    assert!(raw.unread().is_empty(), "nothing after the answer");
}

/// Sends `request` on a fresh connection and expects `status` + `body`, closed, nothing forwarded.
async fn assert_refused(request: &str, status: u16, body: &str) {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;
    raw.send(request).await.unwrap();
    let got = raw.response().await;
    assert_closing_json(&mut raw, &got, status, body).await;
    assert!(mock.requests().is_empty(), "{request:?} was forwarded");
}

// ---- Host (RFC 9112 §3.2) ----

#[tokio::test]
async fn http11_request_without_host_returns_400_json_and_closes() {
    assert_refused(
        &refresh("HTTP/1.1", &[]),
        400,
        r#"{"detail":"Missing Host header"}"#,
    )
    .await;
}

#[tokio::test]
async fn request_with_two_host_lines_returns_400_json_and_closes() {
    for lines in [
        ["Host: a.example", "Host: b.example"],
        ["Host: a.example", "Host: a.example"],
    ] {
        assert_refused(
            &refresh("HTTP/1.1", &lines),
            400,
            r#"{"detail":"Multiple Host headers"}"#,
        )
        .await;
    }
}

#[tokio::test]
async fn host_that_is_not_an_authority_returns_400_json_and_closes() {
    for line in [
        "Host: ",
        "Host: user@proxy.example",
        "Host: proxy.example/evil",
        "Host: proxy.example:80x",
        "Host: [::1",
        "Host: <script>",
    ] {
        assert_refused(
            &refresh("HTTP/1.1", &[line]),
            400,
            r#"{"detail":"Invalid Host header"}"#,
        )
        .await;
    }
}

#[tokio::test]
async fn http10_request_without_host_is_served() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;
    raw.send(refresh("HTTP/1.0", &[])).await.unwrap();
    let got = raw.response().await;
    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    assert_eq!(got.text(), r#"{"ok":true}"#);
    let seen = mock.only_request();
    assert_eq!(seen.header("x-forwarded-host"), None, "no host to forward");
    assert_eq!(seen.header("host"), Some(mock.addr.to_string().as_str()));
}

#[tokio::test]
async fn http2_authority_wins_over_a_host_header() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let client = proxy.h2().await;
    let got = client
        .send(post_json("/refresh", REFRESH).with("host", "spoofed.example"))
        .await;
    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    let seen = mock.only_request();
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(proxy.addr.to_string().as_str()),
        ":authority, not host"
    );
}

#[tokio::test]
async fn trailing_slash_redirect_is_a_relative_reference() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    for (path, location) in [
        ("/register/?next=1", "/register?next=1"),
        ("/protected/", "/protected"),
    ] {
        let got = client
            .send(get(path).with("host", "attacker.example"))
            .await;
        assert_eq!(got.status.as_u16(), 307);
        assert_eq!(got.header("location"), Some(location));
        assert!(got.body.is_empty());
    }
    assert!(mock.requests().is_empty());
}


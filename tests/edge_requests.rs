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

// ---- Client-address and rewrite headers (trusted peers only) ----

/// Headers a client could forge to fool a central service that believes them.
const SPOOFABLE: [(&str, &str); 9] = [
    ("x-real-ip", "203.0.113.1"),
    ("true-client-ip", "203.0.113.2"),
    ("cf-connecting-ip", "203.0.113.3"),
    ("x-client-ip", "203.0.113.4"),
    ("x-forwarded-port", "8443"),
    ("x-forwarded-prefix", "/admin"),
    ("x-original-url", "/admin/users"),
    ("x-rewrite-url", "/admin/users"),
    ("x-http-method-override", "DELETE"),
];

/// Sends `POST /refresh` from 127.0.0.1 twice, with every [`SPOOFABLE`] header and with none,
/// and returns what the central service received.
async fn spoofable_headers_seen_upstream(trusted: bool) -> Vec<support::Recorded> {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        if trusted {
            c.trusted_proxies = vec![auth_proxy::config::parse_cidr("127.0.0.1").unwrap()];
        }
    })
    .await;
    let mut client = proxy.h1().await;
    let mut request = post_json("/refresh", REFRESH);
    for (name, value) in SPOOFABLE {
        request = request.with(name, value);
    }
    for request in [request, post_json("/refresh", REFRESH)] {
        let got = client.send(request).await;
        assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    }
    mock.requests()
}

#[tokio::test]
async fn client_address_and_rewrite_headers_from_an_untrusted_peer_are_dropped() {
    let seen = spoofable_headers_seen_upstream(false).await;
    for (name, _) in &SPOOFABLE[1..] {
        assert_eq!(
            seen[0].header(name),
            None,
            "{name} reached the central service"
        );
    }
    // X-Real-IP is the peer, from the same decision as X-Forwarded-For, sent or not.
    for seen in &seen {
        assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
        assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    }
}

#[tokio::test]
async fn client_address_and_rewrite_headers_from_a_trusted_peer_are_kept() {
    let seen = spoofable_headers_seen_upstream(true).await;
    for (name, value) in SPOOFABLE {
        assert_eq!(
            seen[0].header(name),
            Some(value),
            "{name} from a trusted proxy"
        );
    }
    // A trusted proxy that sends no X-Real-IP: its own address, as nginx without `real_ip`.
    assert_eq!(seen[1].header("x-real-ip"), Some("127.0.0.1"));
    for (name, _) in &SPOOFABLE[1..] {
        assert_eq!(seen[1].header(name), None, "{name} made up");
    }
}

// ---- A Content-Length hyper cannot represent ----

const TOO_LARGE: &str = r#"{"detail":"Request body too large"}"#;

/// hyper refuses 2^64 − 2 and 2^64 − 1 itself (they are its "chunked" and "close" markers).
const OVERSIZED: [&str; 2] = ["18446744073709551615", "18446744073709551614"];

/// The 413 that any length over `--max-body-bytes` gets, here made without a parsed head (so
/// without `X-Request-Id`), whole; then the connection closes.
async fn assert_too_large(raw: &mut support::RawConn) {
    let got = raw.response().await;
    got.assert_json(413, TOO_LARGE);
    let mut names: Vec<&str> = got.headers.keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["connection", "content-length", "content-type", "date"]
    );
    assert_eq!(got.header("connection"), Some("close"));
    assert_eq!(got.header("content-length"), Some("35"));
    assert!(raw.closed_within(WAIT).await, "connection closed after 413");
    assert!(raw.unread().is_empty(), "nothing after the answer");
}

fn oversized_refresh(length: &str) -> String {
    format!(
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n{REFRESH}"
    )
}

#[tokio::test]
async fn content_length_hyper_cannot_represent_returns_413_json_and_closes() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    for length in OVERSIZED {
        let mut raw = proxy.raw().await;
        raw.send(oversized_refresh(length)).await.unwrap();
        assert_too_large(&mut raw).await;
    }
    // The same answer as one below hyper's limit, which reaches the service.
    let mut raw = proxy.raw().await;
    raw.send(oversized_refresh("18446744073709551613"))
        .await
        .unwrap();
    let got = raw.response().await;
    got.assert_json(413, TOO_LARGE);
    assert!(mock.requests().is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn oversized_content_length_in_a_head_split_across_writes_returns_413() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let request = oversized_refresh(OVERSIZED[0]);
    let split = request.find("Content-Type").unwrap();
    let mut raw = proxy.raw().await;
    raw.send(&request[..split]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    raw.send(&request[split..]).await.unwrap();
    assert_too_large(&mut raw).await;
    assert!(mock.requests().is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn oversized_content_length_pipelined_after_a_request_is_answered_after_it() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let first = refresh("HTTP/1.1", &["Host: proxy.test"]);
    let mut raw = proxy.raw().await;
    raw.send(first + &oversized_refresh(OVERSIZED[1]))
        .await
        .unwrap();
    let got = raw.response().await;
    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    assert_eq!(got.text(), r#"{"ok":true}"#);
    assert_too_large(&mut raw).await;
    assert_eq!(mock.requests().len(), 1, "only the first was forwarded");
}

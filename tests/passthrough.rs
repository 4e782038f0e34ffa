//! Issue 3: each route forwards the right request and passes the central service's answer back unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde_json::json;
use support::{
    get, pattern, post_form, post_json, refused_port, spawn_proxy, within, BlackHole, MockUpstream,
    Proxy, Recorded, Reply, TestCa, WithHeader, WAIT,
};

/// `AUTH_URL` with a path prefix, as `https://h/api` in the README.
fn prefixed(mock: &MockUpstream) -> String {
    format!("{}/api", mock.url())
}

/// The headers every forwarded request carries, for a plain-HTTP client on loopback.
fn assert_forwarding_headers(seen: &Recorded, mock: &MockUpstream, proxy: &Proxy) {
    assert_eq!(seen.header("host"), Some(mock.addr.to_string().as_str()));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(proxy.addr.to_string().as_str())
    );
    let id = seen.header("x-request-id").expect("X-Request-Id upstream");
    assert!(!id.is_empty() && id.len() <= 128, "request id {id:?}");
    let length = seen.header("content-length");
    if seen.body.is_empty() {
        assert!(matches!(length, None | Some("0")), "no body: {length:?}");
    } else {
        assert_eq!(
            length,
            Some(seen.body.len().to_string().as_str()),
            "the re-serialised body's length"
        );
    }
}

/// An answer with several cookies and an end-to-end header, to see that all of it comes back.
fn cookie_reply(status: u16, body: &str) -> Reply {
    Reply::json(status, body)
        .header("set-cookie", "access=a1; HttpOnly; Path=/")
        .header("set-cookie", "refresh=r1; HttpOnly; Path=/refresh")
        .header("x-auth-upstream", "central")
}

fn assert_cookie_reply(got: &support::Received, status: u16, body: &str) {
    assert_eq!(got.status.as_u16(), status);
    assert_eq!(got.text(), body);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(
        got.header_all("set-cookie"),
        [
            "access=a1; HttpOnly; Path=/",
            "refresh=r1; HttpOnly; Path=/refresh"
        ]
    );
    assert_eq!(got.header("x-auth-upstream"), Some("central"));
}

/// Sends `request` through a proxy in front of a central service at `…/api` that answers
/// `cookie_reply(status, answer)`. Checks that the client got that answer unchanged and that
/// the one request the service saw was `method` `upstream_path` with the forwarding headers;
/// returns what the client got and what the service saw.
async fn forwarded_unchanged(
    status: u16,
    answer: &str,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
    (method, upstream_path): (&str, &str),
) -> (support::Received, Recorded) {
    let mock = MockUpstream::replying(cookie_reply(status, answer)).await;
    let proxy = spawn_proxy(&prefixed(&mock), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client.send(request).await;

    assert_cookie_reply(&got, status, answer);
    let seen = mock.only_request();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        (method, upstream_path)
    );
    assert_forwarding_headers(&seen, &mock, &proxy);
    (got, seen)
}

#[tokio::test]
async fn register_forwards_only_known_fields_and_returns_the_answer_unchanged() {
    let answer = r#"{"id":7,"email":"a@example.com"}"#;
    let request = post_json(
        "/register",
        r#"{"email":"a@example.com","password":"pw-123","is_admin":true}"#,
    )
    .with("authorization", "Bearer not-for-register")
    .with("x-request-id", "reg-1");
    let (got, seen) = forwarded_unchanged(201, answer, request, ("POST", "/api/register")).await;

    assert_eq!(got.header("x-request-id"), Some("reg-1"));
    assert_eq!(
        seen.body_json(),
        json!({"email": "a@example.com", "password": "pw-123"})
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-request-id"), Some("reg-1"));
    assert_eq!(
        seen.header("authorization"),
        None,
        "Authorization only on /protected"
    );
}

#[tokio::test]
async fn login_forwards_the_password_form_urlencoded_and_returns_the_answer_unchanged() {
    let answer = r#"{"access_token":"t","token_type":"bearer"}"#;
    let request = post_form("/login", "username=alice&password=s%26cret&role=admin")
        .with("authorization", "Bearer not-for-login");
    let (_, seen) = forwarded_unchanged(200, answer, request, ("POST", "/api/login")).await;

    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&seen.body).unwrap();
    let value = |name: &str| {
        let mut values = fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "{name} sent twice");
        first
    };
    assert_eq!(value("username"), Some("alice"));
    assert_eq!(value("password"), Some("s&cret"));
    for optional in ["grant_type", "scope", "client_id", "client_secret"] {
        assert!(
            matches!(value(optional), None | Some("")),
            "{optional} absent or empty"
        );
    }
    let known = [
        "username",
        "password",
        "grant_type",
        "scope",
        "client_id",
        "client_secret",
    ];
    assert!(
        fields.iter().all(|(k, _)| known.contains(&k.as_str())),
        "only the six OAuth2 fields: {fields:?}"
    );
    assert_eq!(
        seen.header("authorization"),
        None,
        "Authorization only on /protected"
    );
}

#[tokio::test]
async fn refresh_forwards_only_the_token_and_returns_the_answer_unchanged() {
    let answer = r#"{"access_token":"t2"}"#;
    let request = post_json("/refresh", r#"{"refresh_token":"rt-1","user_id":1}"#);
    let (_, seen) = forwarded_unchanged(200, answer, request, ("POST", "/api/refresh")).await;

    assert_eq!(seen.body_json(), json!({"refresh_token": "rt-1"}));
    assert_eq!(seen.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn protected_forwards_the_bearer_token_and_returns_the_answer_unchanged() {
    let answer = r#"{"user":"alice"}"#;
    let request = get("/protected").with("authorization", "bearer tok-123");
    let (_, seen) = forwarded_unchanged(200, answer, request, ("GET", "/api/protected")).await;

    assert_eq!(seen.header("authorization"), Some("Bearer tok-123"));
    assert!(seen.body.is_empty());
}

#[tokio::test]
async fn upstream_error_answers_pass_through_without_rewrapping() {
    let answer = r#"{"detail":"Email already registered"}"#;
    let mock = MockUpstream::replying(Reply::json(400, answer).header("x-trace", "abc")).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_json(
            "/register",
            r#"{"email":"a@example.com","password":"pw"}"#,
        ))
        .await;

    assert_eq!(got.status.as_u16(), 400);
    assert_eq!(got.text(), answer);
    assert_eq!(got.header("x-trace"), Some("abc"));
    // The same connection keeps serving.
    let again = client
        .send(post_json("/refresh", r#"{"refresh_token":"r"}"#))
        .await;
    assert_eq!(again.status.as_u16(), 400);
}

#[tokio::test]
async fn large_upstream_response_streams_before_upstream_finishes() {
    const MIB: usize = 1024 * 1024;
    let mock = MockUpstream::builder()
        .stream(MIB, 64 * 1024, Duration::ZERO)
        .hold_after_first_chunk()
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let response = client
        .send_streaming(post_json("/refresh", r#"{"refresh_token":"r"}"#))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.into_body();
    // The mock holds the rest of the body until released: a buffering proxy never gets here.
    let first = within(
        WAIT,
        "first body bytes while upstream still sending",
        body.frame(),
    )
    .await
    .expect("a frame")
    .expect("body frame")
    .into_data()
    .expect("data frame");
    assert!(!first.is_empty());
    mock.release();
    let rest = within(WAIT, "rest of the body", body.collect())
        .await
        .expect("body")
        .to_bytes();
    let mut whole = first.to_vec();
    whole.extend_from_slice(&rest);
    assert_eq!(whole.len(), MIB);
    assert!(whole == pattern(MIB), "body bytes unchanged");
}

#[tokio::test]
async fn sequential_requests_reuse_pooled_upstream_connections() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for i in 0..100 {
        let got = client
            .send(post_json(
                "/refresh",
                &format!(r#"{{"refresh_token":"r{i}"}}"#),
            ))
            .await;
        assert_eq!(got.status.as_u16(), 200, "request {i}");
    }

    assert_eq!(mock.requests().len(), 100);
    let opened = mock.connections();
    assert!(
        (1..=4).contains(&opened),
        "100 sequential requests opened {opened} upstream connections"
    );
}

#[tokio::test]
async fn https_upstream_trusted_through_upstream_ca_is_forwarded() {
    let ca = TestCa::new("central");
    let mock = MockUpstream::builder()
        .reply(Reply::json(200, r#"{"tls":true}"#))
        .tls(&ca)
        .start()
        .await;
    assert!(mock.url().starts_with("https://127.0.0.1:"));
    let proxy = spawn_proxy(&prefixed(&mock), |c| {
        c.upstream_ca = vec![ca.ca_der.clone()];
    })
    .await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_json("/refresh", r#"{"refresh_token":"r"}"#))
        .await;

    assert_eq!(got.status.as_u16(), 200, "body {:?}", got.text());
    assert_eq!(got.text(), r#"{"tls":true}"#);
    let seen = mock.only_request();
    assert_eq!(seen.path, "/api/refresh");
    assert_eq!(seen.header("host"), Some(mock.addr.to_string().as_str()));
}

#[tokio::test]
async fn https_upstream_with_an_untrusted_certificate_returns_502_json() {
    let served = TestCa::new("central");
    let trusted = TestCa::new("someone else");
    let mock = MockUpstream::builder().tls(&served).start().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_ca = vec![trusted.ca_der.clone()];
    })
    .await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_json("/refresh", r#"{"refresh_token":"r"}"#))
        .await;

    got.assert_detail(502);
    assert!(
        mock.requests().is_empty(),
        "no request over an untrusted TLS session"
    );
}

#[tokio::test]
async fn refused_upstream_returns_502_json_quickly() {
    let proxy = spawn_proxy(&format!("http://127.0.0.1:{}", refused_port()), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = within(
        Duration::from_secs(1),
        "502 for a refused connect",
        client.send(post_json("/refresh", r#"{"refresh_token":"r"}"#)),
    )
    .await;

    got.assert_detail(502);
    assert!(got.header("x-request-id").is_some());
}

#[tokio::test]
async fn upstream_reset_returns_502_json() {
    let mock = MockUpstream::builder().reset().start().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_json("/refresh", r#"{"refresh_token":"r"}"#))
        .await;

    got.assert_detail(502);
    assert!(!mock.requests().is_empty());
}

#[tokio::test]
async fn upstream_answering_malformed_http_returns_502_json() {
    let mock = MockUpstream::builder()
        .raw_answer(b"this is not HTTP\r\n\r\n")
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_json("/refresh", r#"{"refresh_token":"r"}"#))
        .await;

    got.assert_detail(502);
    // The client connection is not harmed by the upstream's failure.
    let again = client.send(get("/healthz")).await;
    assert_eq!(again.status.as_u16(), 200);
}

#[tokio::test]
async fn connect_that_never_completes_returns_504_within_connect_timeout() {
    let hole = BlackHole::new();
    let proxy = spawn_proxy(&hole.url(), |c| {
        c.connect_timeout = Duration::from_millis(300);
        c.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    refresh_is_a_504_after(&proxy, "the connect timeout", Duration::from_millis(250)).await;
}

/// POSTs `/refresh` on a fresh connection: it must be answered 504 within 3 s, and no sooner
/// than `at_least` (the `timeout` that produces it).
async fn refresh_is_a_504_after(proxy: &Proxy, timeout: &str, at_least: Duration) {
    let mut client = proxy.h1().await;
    let started = Instant::now();
    let got = within(
        Duration::from_secs(3),
        &format!("504 at {timeout}"),
        client.send(post_json("/refresh", r#"{"refresh_token":"r"}"#)),
    )
    .await;

    got.assert_detail(504);
    assert!(
        started.elapsed() >= at_least,
        "answered before {timeout}: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn slow_upstream_headers_return_504_within_upstream_timeout() {
    let mock = MockUpstream::builder()
        .delay_head(Duration::from_secs(30))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(400);
    })
    .await;
    refresh_is_a_504_after(&proxy, "the upstream timeout", Duration::from_millis(350)).await;
    assert_eq!(
        mock.requests().len(),
        1,
        "the request did reach the slow service"
    );
}

#[tokio::test]
async fn upstream_that_never_answers_returns_504_json() {
    let mock = MockUpstream::builder().silent().start().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = proxy.h1().await;

    let got = within(
        Duration::from_secs(3),
        "504 for a silent upstream",
        client.send(get("/protected").with("authorization", "Bearer t")),
    )
    .await;

    got.assert_detail(504);
    // The client connection survives the upstream's silence.
    assert_eq!(client.send(get("/healthz")).await.status.as_u16(), 200);
}

#[tokio::test]
async fn declared_content_length_over_limit_returns_413_unread_and_closes() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.max_body_bytes = 1024).await;
    let mut raw = proxy.raw().await;

    // The head promises 100 000 bytes; none follow. The proxy must answer without waiting for them.
    raw.send(
        "POST /register HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Content-Length: 100000\r\n\r\n",
    )
    .await
    .unwrap();
    let got = raw.response().await;

    got.assert_json(413, r#"{"detail":"Request body too large"}"#);
    assert!(got.header("x-request-id").is_some());
    assert!(raw.closed_within(WAIT).await, "connection closed after 413");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn chunked_body_over_limit_returns_413_while_reading_and_closes() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.max_body_bytes = 1024).await;
    let mut raw = proxy.raw().await;

    raw.send(
        "POST /refresh HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    // 3 × 512 bytes crosses the 1 KiB limit; the terminating chunk is never sent.
    let chunk = format!("200\r\n{}\r\n", "x".repeat(512));
    for _ in 0..3 {
        raw.send(&chunk).await.unwrap();
    }
    let got = raw.response().await;

    got.assert_json(413, r#"{"detail":"Request body too large"}"#);
    assert!(raw.closed_within(WAIT).await, "connection closed after 413");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn chunked_body_in_several_chunks_is_forwarded_whole() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;

    // The JSON split mid-string into three chunks (19, 15, 13 bytes): each is its own body frame.
    let request = "POST /register HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n\
         13\r\n{\"email\":\"chunk@exa\r\nf\r\nmple.com\",\"pass\r\nd\r\nword\":\"pw-1\"}\r\n0\r\n\r\n";
    raw.send(request).await.unwrap();
    let got = raw.response().await;

    got.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(
        mock.only_request().body,
        &br#"{"email":"chunk@example.com","password":"pw-1"}"#[..]
    );
    assert!(
        !raw.closed_within(Duration::from_millis(50)).await,
        "kept alive"
    );
}

#[tokio::test]
async fn chunked_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.max_body_bytes = 64).await;
    // {"refresh_token":"…"} with a 44-byte token is 64 bytes; sent as two 32-byte chunks.
    let token = "t".repeat(44);
    let body = format!(r#"{{"refresh_token":"{token}"}}"#);
    assert_eq!(body.len(), 64);
    let send = |body: String| {
        let (a, b) = body.split_at(32);
        format!(
            "POST /refresh HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n20\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            b.len()
        )
    };

    let mut raw = proxy.raw().await;
    raw.send(send(body.clone())).await.unwrap();
    raw.response().await.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(mock.only_request().body, body.as_bytes());

    let mut raw = proxy.raw().await;
    raw.send(send(format!(r#"{{"refresh_token":"{token}x"}}"#)))
        .await
        .unwrap();
    raw.response()
        .await
        .assert_json(413, r#"{"detail":"Request body too large"}"#);
    assert_eq!(mock.requests().len(), 1, "nothing more forwarded");
}

#[tokio::test]
async fn protected_without_bearer_credentials_returns_401_and_forwards_nothing() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for authorization in [
        None,
        Some("Basic YTpi"),
        Some("Bearer"),
        Some("Bearer "),
        Some("tok"),
    ] {
        let mut request = get("/protected");
        if let Some(value) = authorization {
            request = request.with("authorization", value);
        }
        let got = client.send(request).await;
        got.assert_json(401, r#"{"detail":"Not authenticated"}"#);
        assert_eq!(
            got.header("www-authenticate"),
            Some("Bearer"),
            "{authorization:?}"
        );
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn unknown_path_returns_404_json_and_keeps_the_connection() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for (method, path) in [("GET", "/nope"), ("POST", "/REGISTER"), ("GET", "/")] {
        let got = client.send(support::request(method, path, None, "")).await;
        got.assert_json(404, r#"{"detail":"Not Found"}"#);
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn wrong_method_returns_405_json_with_allow_post() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for (method, path) in [
        ("GET", "/register"),
        ("PUT", "/login"),
        ("DELETE", "/refresh"),
    ] {
        let got = client.send(support::request(method, path, None, "")).await;
        got.assert_json(405, r#"{"detail":"Method Not Allowed"}"#);
        assert_eq!(got.header("allow"), Some("POST"), "{method} {path}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn protected_answers_get_only_and_every_405_there_allows_get() {
    // FastAPI's `@app.get` adds no HEAD (an APIRoute, unlike a plain Starlette Route): HEAD
    // /protected is a 405 like any other method, `Allow: GET`, checked with FastAPI 0.165.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        assert_eq!(got.status.as_u16(), 200, "GET between the others");
        let request =
            support::request(method, "/protected", None, "").with("authorization", "Bearer t");
        let got = client.send(request).await;
        got.assert_json(405, r#"{"detail":"Method Not Allowed"}"#);
        assert_eq!(got.header("allow"), Some("GET"), "{method}");
    }
    // A HEAD answer has no body on the wire; its headers are the 405's. (HTTP/1 only: over
    // h2 the server sends a HEAD answer's body as DATA, which clients refuse; a service.rs
    // matter for every HEAD, reported separately.)
    let head = support::request("HEAD", "/protected", None, "").with("authorization", "Bearer t");
    let got = client.send(head).await;
    assert_eq!(got.status.as_u16(), 405);
    assert_eq!(got.header("allow"), Some("GET"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("content-length"), Some("31"));
    assert!(got.header("x-request-id").is_some());
    assert_eq!(got.text(), "");
    assert_eq!(mock.requests().len(), 5, "only the GETs went upstream");
    assert!(mock.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn head_is_answered_where_fastapi_and_load_balancers_expect_it() {
    // FastAPI's own /openapi.json and /docs are Starlette Routes, which add HEAD; the proxy's
    // health checks take it too. Each answers like GET, without the body; a 405 there says so.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for path in ["/openapi.json", "/docs", "/healthz"] {
        let full = client.send(get(path)).await;
        assert_eq!(full.status.as_u16(), 200, "GET {path}");
        let got = client.send(support::request("HEAD", path, None, "")).await;
        assert_eq!(got.status.as_u16(), 200, "HEAD {path}");
        assert_eq!(got.header("content-type"), full.header("content-type"));
        assert_eq!(
            got.header("content-length"),
            Some(full.body.len().to_string().as_str()),
            "HEAD {path}"
        );
        assert_eq!(got.text(), "", "HEAD {path}");
        let got = client.send(support::request("POST", path, None, "")).await;
        got.assert_json(405, r#"{"detail":"Method Not Allowed"}"#);
        assert_eq!(got.header("allow"), Some("GET, HEAD"), "POST {path}");
    }
    // Over HTTP/2 too: the HEADERS frame ends the stream, with GET's Content-Length, and no
    // DATA follows (a client reads DATA after a HEAD answer as a protocol error).
    let h2 = proxy.h2().await;
    for path in ["/openapi.json", "/docs", "/healthz", "/nowhere"] {
        let full = h2.send(get(path)).await;
        let got = h2.send(support::request("HEAD", path, None, "")).await;
        assert_eq!(got.status, full.status, "HEAD {path} over h2");
        assert_eq!(
            got.header("content-length"),
            Some(full.body.len().to_string().as_str()),
            "HEAD {path} over h2"
        );
        assert_eq!(got.text(), "", "HEAD {path} over h2");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn invalid_input_returns_422_and_forwards_nothing() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let cases = [
        post_json("/register", r#"{"email":"a@example.com"}"#),
        post_json("/refresh", r"{}"),
        post_form("/login", "username=alice"),
    ];
    for request in cases {
        let got = client.send(request).await;
        assert_eq!(got.status.as_u16(), 422, "body {:?}", got.text());
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert!(support::json(&got.body)["detail"].is_array());
    }
    assert!(mock.requests().is_empty());
}

// ---- Retry safety and input normalisation (these failed before the fixes in main) ----

#[tokio::test]
async fn upstream_reset_after_reading_a_request_is_not_sent_again() {
    // Contract §5 retries only requests not yet written. A fresh connection that the service
    // resets after reading the request is no stale pooled connection: sending the request again
    // could register a user twice.
    let mock = MockUpstream::builder().reset().start().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_json(
            "/register",
            r#"{"email":"a@example.com","password":"pw"}"#,
        ))
        .await;

    got.assert_detail(502);
    assert_eq!(mock.requests().len(), 1, "the request was sent again");
}

#[tokio::test]
async fn register_forwards_the_email_exactly_as_the_client_wrote_it() {
    // Contract v2: EmailStr only validates. Each of these is valid and Pydantic would have
    // changed it (domain case, display name, spaces, NFD, an upper-case Punycode label); the
    // central service gets the JSON string's value, so the user can log in with what they typed.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let cases = [
        (
            r#"{"email":"A.B+tag@Example.COM","password":"pw"}"#,
            r#"{"email":"A.B+tag@Example.COM","password":"pw"}"#,
        ),
        (
            r#"{"password":"pw","email":"Ada <ada@example.com>","role":"admin"}"#,
            r#"{"email":"Ada <ada@example.com>","password":"pw"}"#,
        ),
        (
            r#"{"email":" a@example.com\t","password":"pw"}"#,
            r#"{"email":" a@example.com\t","password":"pw"}"#,
        ),
        (
            r#"{"email":"u\u0308ser@exa\u0308mple.com","password":"pw"}"#,
            "{\"email\":\"u\u{308}ser@exa\u{308}mple.com\",\"password\":\"pw\"}",
        ),
        (
            r#"{"email":"a@XN--E1AFMKFD.xn--p1ai","password":"pw"}"#,
            r#"{"email":"a@XN--E1AFMKFD.xn--p1ai","password":"pw"}"#,
        ),
    ];

    for (n, (sent, forwarded)) in cases.into_iter().enumerate() {
        let got = client.send(post_json("/register", sent)).await;
        got.assert_json(200, r#"{"ok":true}"#);
        let seen = mock.requests();
        assert_eq!(seen.len(), n + 1, "{sent}");
        assert_eq!(
            std::str::from_utf8(&seen[n].body).unwrap(),
            forwarded,
            "{sent}"
        );
        assert_eq!(seen[n].header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn login_forwards_the_optional_oauth2_fields() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client
        .send(post_form(
            "/login",
            "grant_type=password&username=alice&password=pw&scope=read+write\
             &client_id=cid&client_secret=cs",
        ))
        .await;

    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    let mut fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&mock.only_request().body).unwrap();
    fields.sort();
    let expected = [
        ("client_id", "cid"),
        ("client_secret", "cs"),
        ("grant_type", "password"),
        ("password", "pw"),
        ("scope", "read write"),
        ("username", "alice"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(fields, expected);
}

/// A form that already is what the proxy would send goes upstream byte for byte (empty
/// optional fields included, as the contract allows); one that is not is re-encoded with the
/// six fields only, in FastAPI's order, absent optional ones left out.
#[tokio::test]
async fn login_forwards_a_canonical_form_as_sent_and_re_encodes_any_other() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let cases: [(&str, &str); 4] = [
        (
            "grant_type=password&username=user%40example.com&password=hunter2&scope=&client_id=&client_secret=",
            "grant_type=password&username=user%40example.com&password=hunter2&scope=&client_id=&client_secret=",
        ),
        ("username=a+b&password=p%2Aq", "username=a+b&password=p%2Aq"),
        // Out of order, a lower-case escape, an escaped unreserved byte, an unknown field.
        (
            "password=p%2aq&username=%61&extra=1",
            "username=a&password=p%2Aq&scope=",
        ),
        (
            "grant_type=&username=u@x&password=p&scope=a%20b",
            "username=u%40x&password=p&scope=a+b",
        ),
    ];
    for (n, (sent, forwarded)) in cases.into_iter().enumerate() {
        let got = client.send(post_form("/login", sent)).await;
        assert_eq!(got.status.as_u16(), 200, "{sent}: {:?}", got.text());
        let seen = mock.requests();
        assert_eq!(seen.len(), n + 1, "{sent}");
        let seen = &seen[n];
        assert_eq!(seen.body, forwarded.as_bytes(), "{sent}");
        assert_eq!(
            seen.headers[http::header::CONTENT_LENGTH],
            forwarded.len().to_string().as_str(),
            "{sent}"
        );
        assert_eq!(
            seen.headers[http::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
    }
}

#[tokio::test]
async fn login_accepts_multipart_form_data() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw\r\n--XyZ--\r\n";

    let got = client
        .send(support::request(
            "POST",
            "/login",
            Some("multipart/form-data; boundary=XyZ"),
            body,
        ))
        .await;

    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    let seen = mock.only_request();
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&seen.body).unwrap();
    assert!(fields.contains(&("username".to_owned(), "alice".to_owned())));
    assert!(fields.contains(&("password".to_owned(), "pw".to_owned())));
}

#[tokio::test]
async fn json_routes_accept_a_structured_json_content_type() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let got = client
        .send(support::request(
            "POST",
            "/refresh",
            Some("application/vnd.api+json"),
            r#"{"refresh_token":"r"}"#,
        ))
        .await;

    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    assert_eq!(
        mock.only_request().body_json(),
        json!({"refresh_token": "r"})
    );
}

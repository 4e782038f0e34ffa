//! Issue 4: the network edges — header policy, request ids, malformed HTTP, limits, HTTP/2, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use http::Version;
use http_body_util::BodyExt;
use support::{
    get, pattern, post_form, post_json, refused_port, spawn_proxy, within, MockUpstream, Reply,
    WithHeader, H1, WAIT,
};

/// An HTTP/1.1 request written byte for byte: `extra` header lines, then a JSON body.
fn raw_post(path: &str, extra: &[&str], body: &str) -> String {
    let mut text = format!(
        "POST {path} HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

const REFRESH: &str = r#"{"refresh_token":"r"}"#;

fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

// ---- Headers ----

#[tokio::test]
async fn hop_by_hop_and_connection_named_headers_are_not_forwarded_upstream() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;

    let hop = [
        "Connection: keep-alive, X-Hop-Named",
        "X-Hop-Named: secret",
        "Keep-Alive: timeout=5",
        "Proxy-Connection: keep-alive",
        "TE: trailers",
        "Trailer: X-Checksum",
        "Upgrade: websocket",
        "Proxy-Authorization: Basic cHJveHk6cHc=",
        "Proxy-Authenticate: Basic",
        "X-End-To-End: kept",
        "Cookie: session=s1",
        "User-Agent: edge-test",
    ];
    raw.send(raw_post("/refresh", &hop, REFRESH)).await.unwrap();
    let got = raw.response().await;

    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    let seen = mock.only_request();
    for name in [
        "connection",
        "x-hop-named",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
    ] {
        assert_eq!(seen.header(name), None, "{name} must not go upstream");
    }
    assert_eq!(seen.header("x-end-to-end"), Some("kept"));
    assert_eq!(seen.header("cookie"), Some("session=s1"));
    assert_eq!(seen.header("user-agent"), Some("edge-test"));
}

#[tokio::test]
async fn hop_by_hop_and_connection_named_headers_are_not_returned_to_the_client() {
    let reply = Reply::json(200, r#"{"ok":true}"#)
        .header("connection", "x-upstream-hop")
        .header("x-upstream-hop", "internal")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("proxy-authenticate", "Basic")
        .header("trailer", "x-checksum")
        .header("upgrade", "h2c")
        .header("x-end-to-end", "kept");
    let mock = MockUpstream::replying(reply).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;

    raw.send(raw_post("/refresh", &[], REFRESH)).await.unwrap();
    let got = raw.response().await;

    assert_eq!(got.status.as_u16(), 200);
    assert_eq!(got.text(), r#"{"ok":true}"#);
    for name in [
        "connection",
        "x-upstream-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "trailer",
        "upgrade",
    ] {
        assert_eq!(got.header(name), None, "{name} must not reach the client");
    }
    assert_eq!(got.header("x-end-to-end"), Some("kept"));
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_rebuilt() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.trusted_proxies = Vec::new()).await;
    let mut client = proxy.h1().await;

    client
        .send(
            post_json("/refresh", REFRESH)
                .with("host", "public.example")
                .with("x-forwarded-for", "203.0.113.9")
                .with("x-forwarded-proto", "https")
                .with("x-forwarded-host", "evil.example")
                .with("forwarded", "for=203.0.113.9;proto=https"),
        )
        .await;

    let seen = mock.only_request();
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("public.example"));
    assert_eq!(seen.header("forwarded"), None);
}

#[tokio::test]
async fn forwarded_headers_from_a_trusted_peer_are_kept_and_extended() {
    let mock = MockUpstream::start_default().await;
    let loopback = auth_proxy::config::parse_cidr("127.0.0.0/8").unwrap();
    let proxy = spawn_proxy(&mock.url(), |c| c.trusted_proxies = vec![loopback]).await;
    let mut client = proxy.h1().await;

    client
        .send(
            post_json("/refresh", REFRESH)
                .with("host", "internal:8000")
                .with("x-forwarded-for", "203.0.113.9, 198.51.100.7")
                .with("x-forwarded-proto", "https")
                .with("x-forwarded-host", "public.example"),
        )
        .await;
    // A trusted peer that sends none gets them built from the connection.
    client
        .send(post_json("/refresh", REFRESH).with("host", "internal:8000"))
        .await;

    let seen = mock.requests();
    assert_eq!(
        seen[0].header("x-forwarded-for"),
        Some("203.0.113.9, 198.51.100.7, 127.0.0.1")
    );
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen[0].header("x-forwarded-host"), Some("public.example"));
    assert_eq!(seen[1].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen[1].header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen[1].header("x-forwarded-host"), Some("internal:8000"));
}

// ---- X-Request-Id ----

#[tokio::test]
async fn valid_request_id_is_sent_upstream_and_returned() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let longest = "r".repeat(128);
    for id in ["abc-123_XYZ:/=+", longest.as_str()] {
        let got = client
            .send(post_json("/refresh", REFRESH).with("x-request-id", id))
            .await;
        assert_eq!(got.header("x-request-id"), Some(id));
    }
    let seen = mock.requests();
    assert_eq!(seen[0].header("x-request-id"), Some("abc-123_XYZ:/=+"));
    assert_eq!(seen[1].header("x-request-id"), Some(longest.as_str()));
}

#[tokio::test]
async fn invalid_request_id_is_replaced_by_a_generated_one() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;

    let too_long = format!("x-request-id: {}", "r".repeat(129));
    for line in [
        too_long.as_str(),
        "x-request-id: has space",
        "x-request-id:",
    ] {
        raw.send(raw_post("/refresh", &[line], REFRESH))
            .await
            .unwrap();
        let got = raw.response().await;
        let id = got.header("x-request-id").expect("an id on the response");
        assert!(is_valid_request_id(id), "generated id {id:?}");
        assert!(!line.ends_with(id), "{line:?} was kept");
        let seen = mock.requests();
        assert_eq!(seen.last().unwrap().header("x-request-id"), Some(id));
    }
    // Generated ids differ per request.
    let ids: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.header("x-request-id").unwrap().to_owned())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
}

#[tokio::test]
async fn request_id_is_returned_on_proxy_made_answers() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.max_body_bytes = 64).await;
    let down = spawn_proxy(&format!("http://127.0.0.1:{}", refused_port()), |_| {}).await;

    let cases = [
        (get("/nope"), 404),
        (get("/register"), 405),
        (get("/protected"), 401),
        (post_json("/refresh", &"x".repeat(100)), 413),
        (post_json("/refresh", "{}"), 422),
        (get("/healthz"), 200),
    ];
    for (i, (request, status)) in cases.into_iter().enumerate() {
        let id = format!("rid-{i}");
        let got = proxy
            .h1()
            .await
            .send(request.with("x-request-id", &id))
            .await;
        assert_eq!(got.status.as_u16(), status);
        assert_eq!(got.header("x-request-id"), Some(id.as_str()), "on {status}");
    }
    let got = down
        .h1()
        .await
        .send(post_json("/refresh", REFRESH).with("x-request-id", "rid-502"))
        .await;
    assert_eq!(got.status.as_u16(), 502);
    assert_eq!(got.header("x-request-id"), Some("rid-502"));
}

// ---- Malformed HTTP and limits ----

#[tokio::test]
async fn oversized_header_section_returns_431() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;

    let big = format!("X-Big: {}", "b".repeat(20 * 1024));
    raw.send(raw_post("/refresh", &[&big], REFRESH))
        .await
        .unwrap();
    let got = raw.response().await;

    assert_eq!(got.status.as_u16(), 431);
    assert!(raw.closed_within(WAIT).await, "connection closed after 431");
    assert!(mock.requests().is_empty());
}

/// Sends `request` raw, expects a 400 and a closed connection, and that nothing was forwarded.
/// `head_parsed`: the request head was valid, so the answer carries an `X-Request-Id` (§4).
async fn assert_malformed(request: &str, head_parsed: bool) {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut raw = proxy.raw().await;

    raw.send(request).await.unwrap();
    let got = raw.response().await;

    assert_eq!(got.status.as_u16(), 400, "{request:?} → {:?}", got.text());
    if head_parsed {
        assert!(
            got.header("x-request-id").is_some(),
            "X-Request-Id on the 400"
        );
        assert_eq!(got.header("content-type"), Some("application/json"));
    }
    assert!(raw.closed_within(WAIT).await, "connection closed after 400");
    assert!(mock.requests().is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn two_different_content_lengths_return_400_and_close() {
    assert_malformed(
        &raw_post("/refresh", &["Content-Length: 25"], REFRESH),
        false,
    )
    .await;
}

#[tokio::test]
async fn invalid_chunk_returns_400_and_closes() {
    assert_malformed(
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        true,
    )
    .await;
}

#[tokio::test]
async fn content_length_with_transfer_encoding_returns_400_and_closes() {
    // Request smuggling: a front end that honours Content-Length sees a different request.
    assert_malformed(
        &format!(
            "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
         Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{REFRESH}\r\n0\r\n\r\n",
            REFRESH.len()
        ),
        true,
    )
    .await;
}

#[tokio::test]
async fn client_header_timeout_closes_a_connection_sending_headers_too_slowly() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut slow = proxy.raw().await;

    let started = Instant::now();
    slow.send("GET /healthz HTTP/1.1\r\nHost: proxy.test\r\n")
        .await
        .unwrap();
    assert!(
        slow.closed_within(Duration::from_secs(3)).await,
        "the connection is closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A client that sends its head in time on another connection is served.
    let got = proxy.h1().await.send(get("/healthz")).await;
    assert_eq!(got.status.as_u16(), 200);
}

#[tokio::test]
async fn connections_over_max_connections_wait_until_one_closes() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.max_connections = 2).await;
    let mut first = proxy.h1().await;
    let mut second = proxy.h1().await;
    assert_eq!(first.send(get("/healthz")).await.status.as_u16(), 200);
    assert_eq!(second.send(get("/healthz")).await.status.as_u16(), 200);

    let mut third = proxy.raw().await;
    third
        .send("GET /healthz HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), third.next_response()).await;
    assert!(
        early.is_err(),
        "a third connection is not served at the cap"
    );
    // The open ones are unaffected.
    assert_eq!(first.send(get("/healthz")).await.status.as_u16(), 200);
    assert_eq!(
        second
            .send(post_json("/refresh", REFRESH))
            .await
            .status
            .as_u16(),
        200
    );

    drop(first);
    let got = third.response().await;
    assert_eq!(got.status.as_u16(), 200);
    assert_eq!(got.text(), r#"{"status":"ok"}"#);
}

// ---- HTTP/2 ----

#[tokio::test]
async fn http2_prior_knowledge_works_end_to_end() {
    let mock = MockUpstream::replying(
        Reply::json(200, r#"{"user":"alice"}"#)
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2"),
    )
    .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let client = proxy.h2().await;

    let (protected, login, missing) = tokio::join!(
        client.send(get("/protected").with("authorization", "Bearer tok")),
        client.send(post_form("/login", "username=alice&password=pw")),
        client.send(get("/nope")),
    );

    for got in [&protected, &login] {
        assert_eq!(got.version, Version::HTTP_2);
        assert_eq!(got.status.as_u16(), 200);
        assert_eq!(got.text(), r#"{"user":"alice"}"#);
        assert_eq!(got.header_all("set-cookie"), ["a=1", "b=2"]);
        assert!(got.header("x-request-id").is_some());
    }
    missing.assert_json(404, r#"{"detail":"Not Found"}"#);
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    let protected_seen = seen.iter().find(|r| r.path == "/protected").unwrap();
    assert_eq!(protected_seen.header("authorization"), Some("Bearer tok"));
    assert_eq!(
        protected_seen.header("x-forwarded-host"),
        Some(proxy.addr.to_string().as_str()),
        "HTTP/2 :authority becomes X-Forwarded-Host"
    );
    assert_eq!(
        protected_seen.header("host"),
        Some(mock.addr.to_string().as_str())
    );
}

#[tokio::test]
async fn http2_body_over_limit_returns_413_and_the_connection_keeps_serving() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.max_body_bytes = 64).await;
    let client = proxy.h2().await;

    let got = client.send(post_json("/refresh", &"x".repeat(100))).await;
    got.assert_json(413, r#"{"detail":"Request body too large"}"#);
    assert!(got.header("x-request-id").is_some());
    // HTTP/2 resets a stream, not the connection.
    let again = client.send(post_json("/refresh", REFRESH)).await;
    assert_eq!(again.status.as_u16(), 200);
    assert_eq!(mock.requests().len(), 1);
}

// ---- Health ----

#[tokio::test]
async fn healthz_returns_200_status_ok() {
    let proxy = spawn_proxy(&format!("http://127.0.0.1:{}", refused_port()), |_| {}).await;
    let got = proxy.h1().await.send(get("/healthz")).await;
    got.assert_json(200, r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn readyz_returns_200_when_the_upstream_answers() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let got = proxy.h1().await.send(get("/readyz")).await;
    assert_eq!(got.status.as_u16(), 200, "{:?}", got.text());
    assert_eq!(got.header("content-type"), Some("application/json"));
    // The probe: HEAD of AUTH_URL's base, addressed to AUTH_URL's host (not the pool key).
    let probes = mock.requests();
    assert_eq!(probes.len(), 1);
    assert_eq!(
        (probes[0].method.as_str(), probes[0].path.as_str()),
        ("HEAD", "/")
    );
    let authority = mock.url().trim_start_matches("http://").to_owned();
    assert_eq!(probes[0].header("host"), Some(authority.as_str()));
}

#[tokio::test]
async fn readyz_returns_503_json_when_the_upstream_is_down() {
    let proxy = spawn_proxy(&format!("http://127.0.0.1:{}", refused_port()), |_| {}).await;
    let got = proxy.h1().await.send(get("/readyz")).await;
    assert_eq!(got.status.as_u16(), 503, "{:?}", got.text());
    assert_eq!(got.header("content-type"), Some("application/json"));
    support::json(&got.body);
}

// ---- Graceful shutdown ----

/// Asks `/readyz` on `client` until it says 503, for at most 1 s.
async fn readyz_turns_503(client: &mut support::H1) -> support::Received {
    within(Duration::from_secs(1), "readyz turning 503", async {
        loop {
            let got = client.send(get("/readyz")).await;
            if got.status.as_u16() == 503 {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Waits until a connect to `addr` is refused (the listener is closed), for at most `limit`.
async fn listener_closes(addr: std::net::SocketAddr, limit: Duration) {
    within(limit, "listener closing", async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn shutdown_serves_during_the_delay_with_readyz_503_then_closes_the_listener() {
    let mock = MockUpstream::start_default().await;
    let mut proxy = spawn_proxy(&mock.url(), |c| {
        c.shutdown_delay = Duration::from_millis(800);
    })
    .await;
    let mut client = proxy.h1().await;
    assert_eq!(client.send(get("/readyz")).await.status.as_u16(), 200);

    let started = Instant::now();
    proxy.shutdown();
    let got = readyz_turns_503(&mut client).await;
    assert_eq!(got.header("content-type"), Some("application/json"));
    support::json(&got.body);
    // Still serving, on old and new connections, during the delay.
    assert_eq!(
        client
            .send(post_json("/refresh", REFRESH))
            .await
            .status
            .as_u16(),
        200
    );
    let mut late = proxy.h1().await;
    assert_eq!(late.send(get("/healthz")).await.status.as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "test too slow to see the delay"
    );

    listener_closes(proxy.addr, Duration::from_secs(2)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "listener closed before the delay"
    );
    proxy.stopped(Duration::from_secs(3)).await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish_and_closes_idle_connections() {
    const TOTAL: usize = 10 * 8 * 1024;
    let mock = MockUpstream::builder()
        .stream(TOTAL, 8 * 1024, Duration::from_millis(40))
        .start()
        .await;
    let mut proxy = spawn_proxy(&mock.url(), |c| {
        c.shutdown_grace = Duration::from_secs(3);
    })
    .await;
    let mut idle = proxy.h1().await;
    assert_eq!(idle.send(get("/healthz")).await.status.as_u16(), 200);
    let mut busy = proxy.h1().await;
    let response = busy.send_streaming(post_json("/refresh", REFRESH)).await;
    assert_eq!(response.status().as_u16(), 200);

    proxy.shutdown();
    listener_closes(proxy.addr, Duration::from_secs(1)).await;
    assert!(
        idle.closed_within(Duration::from_secs(1)).await,
        "idle keep-alive connection closed at once"
    );
    let body = within(WAIT, "in-flight body", response.into_body().collect())
        .await
        .expect("the in-flight response completes")
        .to_bytes();
    assert!(body == pattern(TOTAL), "whole body delivered");
    proxy.stopped(Duration::from_secs(3)).await.unwrap();
}

#[tokio::test]
async fn shutdown_cuts_what_is_left_after_the_grace_and_still_returns_ok() {
    let mock = MockUpstream::builder()
        .stream(64 * 1024, 1024, Duration::ZERO)
        .hold_after_first_chunk()
        .start()
        .await;
    let mut proxy = spawn_proxy(&mock.url(), |c| {
        c.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    let mut client = proxy.h1().await;
    let response = client.send_streaming(post_json("/refresh", REFRESH)).await;
    let mut body = response.into_body();
    within(WAIT, "first chunk", body.frame())
        .await
        .unwrap()
        .unwrap();

    let started = Instant::now();
    proxy.shutdown();
    proxy.stopped(Duration::from_secs(2)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "returned before the grace"
    );
    let rest = within(WAIT, "the cut body ending", body.collect()).await;
    assert!(rest.is_err(), "the unfinished body is cut, not completed");
}

// ---- The stale-pool race ----

/// Sends 300 requests on `client`, the `i`th made by `request(i)` and followed by a pause of
/// `(i % gaps) * 250` µs, and fails listing every one not answered 200.
async fn every_answer_is_200(
    client: &mut H1,
    gaps: u64,
    request: impl Fn(u64) -> http::Request<http_body_util::Full<bytes::Bytes>>,
) {
    let mut failures = Vec::new();
    for i in 0..300u64 {
        let got = client.send(request(i)).await;
        if got.status.as_u16() != 200 {
            failures.push((i, got.status, got.text()));
        }
        tokio::time::sleep(Duration::from_micros((i % gaps) * 250)).await;
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
}

#[tokio::test]
async fn upstream_closing_idle_connections_never_surfaces_as_502() {
    let mock = MockUpstream::builder().close_after_answer().start().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    // Tiny, varying gaps: sometimes before the close is seen, sometimes after.
    every_answer_is_200(&mut client, 4, |_| post_json("/refresh", REFRESH)).await;
    assert!(
        mock.connections() >= 299,
        "the mock closed every connection"
    );
}

#[tokio::test]
async fn upstream_keep_alive_timeout_racing_the_next_get_never_surfaces_as_502() {
    // The mock closes a connection idle for 1 ms; the gaps between requests straddle that.
    // `GET /protected` is idempotent: one written on a connection the service was closing is
    // sent once more on a fresh one.
    let mock = MockUpstream::builder()
        .close_when_idle_for(Duration::from_millis(1))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    every_answer_is_200(&mut client, 9, |_| {
        get("/protected").with("authorization", "Bearer t")
    })
    .await;
    assert_eq!(mock.requests().len(), 300);
}

#[tokio::test]
async fn upstream_keep_alive_timeout_racing_the_next_post_never_sends_it_twice() {
    // The same race for `POST /refresh`: a request the service may have read is never sent
    // again (a replayed /refresh looks like token reuse). Those that lost the race are 502s;
    // the rest pass; none reaches the service twice.
    let mock = MockUpstream::builder()
        .close_when_idle_for(Duration::from_millis(1))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    let mut answered = 0;
    for i in 0..300u64 {
        let body = format!(r#"{{"refresh_token":"t{i}"}}"#);
        let got = client.send(post_json("/refresh", &body)).await;
        match got.status.as_u16() {
            200 => answered += 1,
            502 => got.assert_json(
                502,
                r#"{"detail":"Central auth service sent an invalid response"}"#,
            ),
            other => panic!("request {i}: {other} {:?}", got.text()),
        }
        tokio::time::sleep(Duration::from_micros((i % 9) * 250)).await;
    }
    let mut tokens: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.body_json()["refresh_token"].clone())
        .collect();
    assert!(
        tokens.len() >= answered,
        "every answer came from the service"
    );
    let sent = tokens.len();
    tokens.sort_by_key(ToString::to_string);
    tokens.dedup();
    assert_eq!(tokens.len(), sent, "a request reached the service twice");
}

#[tokio::test]
async fn client_header_timeout_closes_an_idle_keep_alive_connection() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut idle = proxy.raw().await;
    idle.send("GET /healthz HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(idle.response().await.status.as_u16(), 200);
    assert!(
        idle.closed_within(Duration::from_secs(3)).await,
        "an idle keep-alive connection is closed"
    );
}

// ---- Regression tests for bugs this suite found (all fixed) ----

#[tokio::test]
async fn client_header_timeout_closes_a_connection_that_sends_nothing() {
    // hyper-util's auto builder sniffs for the HTTP/2 preface before hyper's HTTP/1
    // `header_read_timeout` starts, so a socket that never sends a byte would hold a
    // `--max-connections` slot for ever (slowloris).
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut silent = proxy.raw().await;
    assert!(
        silent.closed_within(Duration::from_secs(3)).await,
        "a connection that never sends a head is closed"
    );
}

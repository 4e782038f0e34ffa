//! The upstream connection pool as the central service sees it: how many TCP connections the
//! proxy opens, when it reuses them, when it closes them, and that no answer ever leaks into the
//! next one. These pin what clients and the central service can observe, so that the pool can be
//! rebuilt (hyper-util's legacy `Client` → hyper `client::conn` senders) without changing it.
//!
//! Reuse is already pinned for plain sequential HTTP/1 (`passthrough.rs`) and the stale-pool races
//! (`edge.rs`); this file covers HTTP/2 by ALPN, the idle timeout, bursts, abandoned bodies,
//! `Connection: close`, empty bodies and the `/readyz` probe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{StatusCode, Version};
use http_body_util::BodyExt;
use support::{
    get, pattern, post_form, post_json, protected, spawn_proxy, spawn_proxy_for, within,
    MockUpstream, Proxy, Received, Reply, TestCa, H1, WAIT,
};
use tokio::task::JoinSet;

const REFRESH: &str = r#"{"refresh_token":"r"}"#;

/// `status` with a JSON `body` and a header of the central service's own, to see passed on.
fn json_answer(status: u16, body: &'static str) -> Reply {
    Reply::json(status, body).header("x-upstream", "mock")
}

const USER: &str = r#"{"user":"alice","scopes":["read"]}"#;
const TOKENS: &str = r#"{"access_token":"at-1","token_type":"bearer"}"#;

fn auth_answers(path: &str) -> Reply {
    match path {
        "/api/protected" => json_answer(200, USER),
        "/api/login" => json_answer(200, TOKENS),
        _ => json_answer(404, r#"{"detail":"Not Found"}"#),
    }
}

/// The whole answer `auth_answers` gives, as the client must receive it.
fn assert_answer(got: &Received, body: &str) {
    assert_eq!(got.status, StatusCode::OK, "body {:?}", got.text());
    assert_eq!(got.text(), body);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-upstream"), Some("mock"));
    assert!(got.header("x-request-id").is_some());
}

/// `GET /protected` with `token`, on a fresh client connection of its own.
async fn protected_on_own_connection(addr: SocketAddr, token: String) -> (String, Received) {
    let mut client = H1::connect(addr).await;
    let got = client.send(protected(&token)).await;
    (token, got)
}

// ---- 1. HTTP/2 to the central service, chosen by ALPN ----

/// An HTTP/2-only https central service (ALPN offers `h2` alone), and the proxy in front of
/// `https://127.0.0.1:PORT/api` trusting its CA through `--upstream-ca`, with `tweak` applied.
async fn h2_upstream_and_proxy(
    tweak: impl FnOnce(&mut auth_proxy::Config),
) -> (MockUpstream, Proxy, String) {
    let upstream = MockUpstream::builder()
        .h2(&TestCa::new("central-h2"))
        .route(auth_answers)
        .start()
        .await;
    let authority = format!("127.0.0.1:{}", upstream.addr.port());
    let proxy = spawn_proxy_for(&upstream, "/api", tweak).await;
    (upstream, proxy, authority)
}

#[tokio::test]
async fn http2_upstream_chosen_by_alpn_multiplexes_every_request_over_one_connection() {
    let (upstream, proxy, authority) = h2_upstream_and_proxy(|_| {}).await;

    // Sequential, on one client connection.
    let mut client = proxy.h1().await;
    for i in 0..3 {
        let got = client.send(protected(&format!("seq-{i}"))).await;
        assert_answer(&got, USER);
    }
    // Concurrent, on eight client connections, all eight in flight upstream at once.
    upstream.hold_until_more_arrive(8);
    let mut burst = JoinSet::new();
    for i in 0..8 {
        burst.spawn(protected_on_own_connection(proxy.addr, format!("conc-{i}")));
    }
    let mut burst_tokens = Vec::new();
    while let Some(done) = within(WAIT, "the concurrent burst", burst.join_next()).await {
        let (token, got) = done.expect("client task");
        assert_answer(&got, USER);
        burst_tokens.push(format!("Bearer {token}"));
    }
    assert_eq!(burst_tokens.len(), 8);
    // A form body over HTTP/2 arrives byte for byte.
    let form = "grant_type=password&username=alice&password=s%26cret&scope=read+write\
                &client_id=cid&client_secret=cs";
    let got = client.send(post_form("/login", form)).await;
    assert_answer(&got, TOKENS);

    let seen = upstream.requests();
    assert_eq!(seen.len(), 3 + 8 + 1);
    for request in &seen {
        assert_eq!(request.alpn.as_deref(), Some(&b"h2"[..]), "ALPN chose h2");
        assert_eq!(request.version, Version::HTTP_2);
        assert_eq!(
            request.connection, 0,
            "one upstream connection: {request:?}"
        );
        assert_eq!(request.authority.as_deref(), Some(authority.as_str()));
        assert!(
            request.header("host").is_none_or(|h| h == authority),
            "Host, if sent besides :authority, is AUTH_URL's: {:?}",
            request.header("host")
        );
    }
    for (i, request) in seen[..3].iter().enumerate() {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/api/protected")
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer seq-{i}").as_str())
        );
        assert!(request.body.is_empty());
    }
    let mut arrived_tokens: Vec<String> = seen[3..11]
        .iter()
        .map(|r| {
            assert_eq!(
                (r.method.as_str(), r.path.as_str()),
                ("GET", "/api/protected")
            );
            r.header("authorization")
                .expect("Authorization forwarded")
                .to_owned()
        })
        .collect();
    arrived_tokens.sort();
    burst_tokens.sort();
    assert_eq!(
        arrived_tokens, burst_tokens,
        "each token arrived once, intact"
    );
    let login = &seen[11];
    assert_eq!(
        (login.method.as_str(), login.path.as_str()),
        ("POST", "/api/login")
    );
    assert_eq!(
        login.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(login.body, form.as_bytes(), "the form, byte for byte");
    assert_eq!(
        login.header("authorization"),
        None,
        "Authorization only on /protected"
    );
    assert_eq!(
        upstream.connections(),
        1,
        "one TCP connection to the central service"
    );
    assert_eq!(upstream.connections_ended(), 0, "and it stays open");
}

#[tokio::test]
async fn http2_cold_burst_is_multiplexed_onto_one_connection_and_spare_dials_are_closed() {
    let (upstream, proxy, _) = h2_upstream_and_proxy(|_| {}).await;

    // Eight requests at once with nothing pooled yet, all in flight upstream together.
    upstream.hold_until_more_arrive(8);
    let mut burst = JoinSet::new();
    for i in 0..8 {
        burst.spawn(protected_on_own_connection(proxy.addr, format!("cold-{i}")));
    }
    while let Some(done) = within(WAIT, "the cold burst", burst.join_next()).await {
        let (_, got) = done.expect("client task");
        assert_answer(&got, USER);
    }

    let seen = upstream.requests();
    assert_eq!(seen.len(), 8);
    let carrier = seen[0].connection;
    assert!(
        seen.iter().all(|s| s.connection == carrier),
        "all eight multiplexed on one connection: {:?}",
        seen.iter().map(|s| s.connection).collect::<Vec<_>>()
    );
    // Before ALPN says h2 each waiting request may dial (hyper-util does); every dial that
    // carries no request is closed, and the one that does stays pooled.
    upstream
        .wait_for_connections("spare connections closed", |accepted, ended| {
            ended + 1 == accepted
        })
        .await;
    let accepted = upstream.connections();
    assert!(
        (1..=8).contains(&accepted),
        "{accepted} dials for 8 requests"
    );
    let mut client = proxy.h1().await;
    let got = client.send(protected("after")).await;
    assert_answer(&got, USER);
    let after = upstream.requests().pop().unwrap();
    assert_eq!(after.header("authorization"), Some("Bearer after"));
    assert_eq!(
        after.connection, carrier,
        "the pooled h2 connection is reused"
    );
    assert_eq!(upstream.connections(), accepted);
}

// ---- 2. --pool-idle-timeout ----

#[tokio::test]
async fn idle_pooled_connection_is_closed_by_the_proxy_after_pool_idle_timeout() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.pool_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = proxy.h1().await;

    let sent = Instant::now();
    let got = client.send(post_json("/refresh", REFRESH)).await;
    got.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(mock.connections(), 1);

    // The mock never closes a connection itself: an ended one was closed by the proxy.
    mock.wait_for_connections_ended(1).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "closed before the idle timeout: {:?}",
        sent.elapsed()
    );
    assert_eq!(mock.connections(), 1);

    // The next request opens a new connection and is answered; nothing was sent on the closed one.
    let got = client.send(post_json("/refresh", REFRESH)).await;
    got.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(mock.connections(), 2);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn idle_http2_connection_is_closed_by_the_proxy_after_pool_idle_timeout() {
    let (upstream, proxy, _) = h2_upstream_and_proxy(|c| {
        c.pool_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = proxy.h1().await;

    let sent = Instant::now();
    let got = client.send(protected("one")).await;
    assert_answer(&got, USER);

    // hyper's server never closes an idle HTTP/2 connection itself: the proxy did.
    upstream
        .wait_for_connections("idle h2 connection closed", |_, ended| ended == 1)
        .await;
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "closed before the idle timeout: {:?}",
        sent.elapsed()
    );

    let got = client.send(protected("two")).await;
    assert_answer(&got, USER);
    assert_eq!(upstream.connections(), 2);
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].connection, 1, "sent on a new connection");
    assert_eq!(seen[1].header("authorization"), Some("Bearer two"));
}

// ---- 3. A burst opens connections; later requests reuse them ----

#[tokio::test]
async fn concurrent_requests_open_one_connection_each_and_later_requests_reuse_them() {
    const N: usize = 6;
    let upstream = MockUpstream::builder().route(auth_answers).start().await;
    let proxy = spawn_proxy_for(&upstream, "/api", |_| {}).await;

    // All N held upstream at once: HTTP/1 needs one connection each.
    upstream.hold_until_more_arrive(N);
    let mut burst = JoinSet::new();
    for i in 0..N {
        burst.spawn(protected_on_own_connection(
            proxy.addr,
            format!("burst-{i}"),
        ));
    }
    while let Some(done) = within(WAIT, "the concurrent burst", burst.join_next()).await {
        let (_, got) = done.expect("client task");
        assert_answer(&got, USER);
    }
    assert_eq!(upstream.connections(), N);

    // 2N sequential requests, from one client and from fresh clients: all on the pooled N.
    let mut client = proxy.h1().await;
    for i in 0..2 * N {
        let token = format!("seq-{i}");
        let got = if i % 2 == 0 {
            client.send(protected(&token)).await
        } else {
            protected_on_own_connection(proxy.addr, token).await.1
        };
        assert_answer(&got, USER);
    }
    assert_eq!(upstream.connections(), N, "no new upstream connection");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3 * N);
    let mut used: Vec<usize> = seen.iter().map(|s| s.connection).collect();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used, (0..N).collect::<Vec<_>>());
    for (i, request) in seen[N..].iter().enumerate() {
        assert_eq!(request.version, Version::HTTP_11);
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer seq-{i}").as_str())
        );
    }
}

// ---- 4. A client that goes away mid-body ----

#[tokio::test]
async fn client_dropping_mid_stream_does_not_leave_its_upstream_connection_in_the_pool() {
    const TOTAL: usize = 256 * 1024;
    let mock = MockUpstream::builder()
        .stream(TOTAL, 4 * 1024, Duration::from_millis(5))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;

    let mut leaving = proxy.h1().await;
    let response = leaving.send_streaming(post_json("/refresh", REFRESH)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = within(WAIT, "the first body bytes", body.frame())
        .await
        .expect("a frame")
        .expect("a body frame")
        .into_data()
        .expect("data");
    assert!(!first.is_empty() && first.len() < TOTAL);
    drop(body);
    drop(leaving);

    // At once, while the abandoned body may still be streaming upstream.
    let mut client = proxy.h1().await;
    let got = client.send(post_json("/refresh", REFRESH)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        got.header("content-length"),
        Some(TOTAL.to_string().as_str())
    );
    assert_eq!(got.body.len(), TOTAL);
    assert!(
        got.body == pattern(TOTAL),
        "exactly the body, no leftover bytes"
    );
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(
        mock.connections(),
        2,
        "not sent on the abandoned connection"
    );
    // The abandoned connection is closed, not kept.
    mock.wait_for_connections_ended(1).await;

    // The connection whose body was read to the end is reused.
    let got = client.send(post_json("/refresh", REFRESH)).await;
    assert!(got.status == StatusCode::OK && got.body == pattern(TOTAL));
    assert_eq!(mock.connections(), 2);
}

// ---- 5. Connection: close from the central service ----

#[tokio::test]
async fn upstream_connection_close_answers_are_each_served_on_a_fresh_connection() {
    let answer = r#"{"ok":"closing"}"#;
    let reply = Reply::json(200, answer).header("connection", "close");
    // The service announces the close and closes; or only announces it, and the proxy must close.
    let closes = MockUpstream::builder()
        .reply(reply.clone())
        .close_after_answer()
        .start()
        .await;
    let announces = MockUpstream::replying(reply).await;

    for mock in [&closes, &announces] {
        let proxy = spawn_proxy(&mock.url(), |_| {}).await;
        let mut client = proxy.h1().await;
        for i in 0..5 {
            // One client connection throughout: the upstream's close is not the client's.
            let got = client.send(post_json("/refresh", REFRESH)).await;
            got.assert_json(200, answer);
            assert_eq!(got.header("connection"), None, "request {i}");
        }
        assert_eq!(mock.requests().len(), 5, "each request sent once");
        assert_eq!(mock.connections(), 5, "a fresh connection for each request");
        mock.wait_for_connections_ended(5).await;
    }
}

// ---- 6. Empty bodies ----

fn empty_answers(path: &str) -> Reply {
    match path {
        // 204: no body and no Content-Length either.
        "/protected" => Reply::new(204).header("x-upstream", "mock"),
        // An empty body: `content-length: 0`.
        "/login" => Reply::new(200).header("x-upstream", "mock"),
        _ => json_answer(200, TOKENS),
    }
}

#[tokio::test]
async fn empty_body_answers_keep_the_upstream_connection_reusable() {
    let upstream = MockUpstream::builder().route(empty_answers).start().await;
    let proxy = spawn_proxy_for(&upstream, "", |_| {}).await;
    let mut client = proxy.h1().await;

    for round in 0..3 {
        let no_content = client.send(protected("t")).await;
        assert_eq!(no_content.status, StatusCode::NO_CONTENT, "round {round}");
        assert!(no_content.body.is_empty());
        assert_eq!(no_content.header("content-length"), None);
        assert_eq!(no_content.header("x-upstream"), Some("mock"));

        let empty = client
            .send(post_form("/login", "username=alice&password=pw"))
            .await;
        assert_eq!(empty.status, StatusCode::OK, "round {round}");
        assert!(empty.body.is_empty());
        assert_eq!(empty.header("content-length"), Some("0"));
        assert_eq!(empty.header("x-upstream"), Some("mock"));

        // A body after the empty ones: the connection is still in step.
        let full = client.send(post_json("/refresh", REFRESH)).await;
        assert_answer(&full, TOKENS);
    }
    assert_eq!(upstream.requests().len(), 9);
    assert_eq!(upstream.connections(), 1, "every answer on one connection");
}

#[tokio::test]
async fn content_length_zero_answers_from_the_mock_keep_the_connection_reusable() {
    let mock = MockUpstream::replying(Reply::new(200).header("x-empty", "yes")).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    for _ in 0..5 {
        let got = client.send(post_json("/refresh", REFRESH)).await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(got.body.is_empty());
        assert_eq!(got.header("content-length"), Some("0"));
        assert_eq!(got.header("x-empty"), Some("yes"));
    }
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(mock.connections(), 1);
}

// ---- 7. The /readyz probe shares the pool ----

#[tokio::test]
async fn readyz_head_probe_leaves_a_reusable_connection_in_the_pool() {
    // HEAD answers carry the Content-Length of the body they leave out (11 bytes here): a pool
    // that waited for those bytes would hang or hand them to the next answer.
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;

    // Nothing answered yet, so /readyz probes with HEAD.
    let ready = client.send(get("/readyz")).await;
    ready.assert_json(200, r#"{"status":"ready"}"#);
    for _ in 0..3 {
        client
            .send(post_json("/refresh", REFRESH))
            .await
            .assert_json(200, r#"{"ok":true}"#);
    }
    // Answered a moment ago: no second probe.
    client
        .send(get("/readyz"))
        .await
        .assert_json(200, r#"{"status":"ready"}"#);
    client
        .send(post_json("/refresh", REFRESH))
        .await
        .assert_json(200, r#"{"ok":true}"#);

    let seen: Vec<(String, String)> = mock
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let refresh = ("POST".to_owned(), "/refresh".to_owned());
    let mut expected = vec![("HEAD".to_owned(), "/".to_owned())];
    expected.extend(std::iter::repeat_n(refresh, 4));
    assert_eq!(seen, expected);
    // There is one pool for the one AUTH_URL, so the probe's connection is the one every later
    // request reuses.
    assert_eq!(mock.connections(), 1, "the probe's connection is reused");
}

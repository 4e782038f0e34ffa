//! How the upstream pool recovers: HTTP/2 GOAWAY, refused streams and dead shared connections, trailers, idle expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{
    protected, spawn_proxy, spawn_proxy_for, H2Conn, MockUpstream, Proxy, Reply, TestCa,
};

/// An https central service speaking HTTP/2 (ALPN `h2` only) through the `h2` crate directly,
/// so that it can send GOAWAY / RST_STREAM exactly. `serve(i, conn)` runs the i-th connection;
/// returns it and the proxy in front of it, with `tweak` applied.
async fn h2_upstream_and_proxy<F, Fut>(
    serve: F,
    tweak: impl FnOnce(&mut auth_proxy::Config),
) -> (MockUpstream, Proxy)
where
    F: Fn(usize, H2Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let upstream = MockUpstream::builder()
        .h2_script(&TestCa::new("review-h2"), serve)
        .start()
        .await;
    let proxy = spawn_proxy_for(&upstream, "", tweak).await;
    (upstream, proxy)
}

/// As [`h2_upstream_and_proxy`], but only the first connection runs `first`; every later one
/// answers each stream `200 {"ok":1}` ([`serve_ok`]).
async fn h2_first_connection_and_proxy<F, Fut>(
    first: F,
    tweak: impl FnOnce(&mut auth_proxy::Config),
) -> (MockUpstream, Proxy)
where
    F: Fn(H2Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    h2_upstream_and_proxy(
        move |i, conn| -> Pin<Box<dyn Future<Output = ()> + Send>> {
            if i == 0 {
                Box::pin(first(conn))
            } else {
                Box::pin(serve_ok(conn))
            }
        },
        tweak,
    )
    .await
}

fn ok_head() -> http::Response<()> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
}

/// Answers every stream `200 {"ok":1}` until the client goes away.
async fn serve_ok(mut conn: H2Conn) {
    while let Some(Ok((_request, mut respond))) = conn.accept().await {
        let mut body = respond.send_response(ok_head(), false).unwrap();
        body.send_data(Bytes::from_static(br#"{"ok":1}"#), true)
            .unwrap();
    }
}

/// Answers the first stream `200 {"ok":1}` and drives `conn` long enough to flush it.
async fn answer_first(conn: &mut H2Conn) {
    let (_request, mut respond) = conn.accept().await.unwrap().unwrap();
    let mut body = respond.send_response(ok_head(), false).unwrap();
    body.send_data(Bytes::from_static(br#"{"ok":1}"#), true)
        .unwrap();
    drive_for(conn, Duration::from_millis(50)).await;
}

/// Drives `conn` (sending what is queued, reading what arrives) for `d`.
async fn drive_for(conn: &mut H2Conn, d: Duration) {
    let _ = tokio::time::timeout(d, poll_fn(|cx| conn.poll_closed(cx))).await;
}

// ---- 1. HTTP/2: a GOAWAY racing a request on the idle shared connection → 502 ----

/// What an HTTP/2 server's idle timeout does (Go's `IdleTimeout`, nginx, Envoy, CDNs): GOAWAY
/// with the last stream it processed, then close. A request the proxy wrote just before the
/// GOAWAY arrived has a higher stream id: by RFC 9113 §6.8 it was *not* processed and may be
/// retried. The contract: "A pooled connection that the central service closed while idle never
/// surfaces as a 502".
#[tokio::test]
async fn h2_goaway_from_an_idle_timeout_racing_a_request_is_not_a_502() {
    let (upstream, proxy) = h2_first_connection_and_proxy(
        |mut conn| async move {
            answer_first(&mut conn).await;
            // Not reading for a moment: the next request sits unread in the socket when the idle
            // timer fires.
            tokio::time::sleep(Duration::from_millis(300)).await;
            conn.abrupt_shutdown(h2::Reason::NO_ERROR); // GOAWAY(last_stream_id = 1)
            let _ = poll_fn(|cx| conn.poll_closed(cx)).await;
        },
        |_| {},
    )
    .await;
    let mut client = proxy.h1().await;

    let first = client.send(protected("one")).await;
    assert_eq!(first.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = client.send(protected("two")).await;
    assert_eq!(
        second.status,
        200,
        "GOAWAY-refused stream surfaced as {} {:?} (connections: {})",
        second.status,
        second.text(),
        upstream.connections()
    );
}

/// RST_STREAM(REFUSED_STREAM): "the stream was not processed" (RFC 9113 §8.7), safe to retry.
#[tokio::test]
async fn h2_refused_stream_is_retried_not_a_502() {
    let (_upstream, proxy) = h2_first_connection_and_proxy(
        |mut conn| async move {
            let (_request, mut respond) = conn.accept().await.unwrap().unwrap();
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            serve_ok(conn).await;
        },
        |_| {},
    )
    .await;
    let mut client = proxy.h1().await;
    let got = client.send(protected("one")).await;
    assert_eq!(got.status, 200, "{:?}", got.text());
}

// ---- 2. HTTP/2: a shared connection that stopped answering is never given up ----

/// The first connection answers once and then hangs (peer wedged, or a middlebox that silently
/// dropped the flow). Each request on it times out (504), but the timed-out request only resets
/// its own stream, and each checkout refreshes the idle clock, so the pool keeps handing the
/// dead connection out for as long as traffic continues — though a new connection would answer.
/// (HTTP/1 recovers at once: a timed-out request closes its connection.)
#[tokio::test]
async fn h2_dead_shared_connection_is_eventually_replaced() {
    let (upstream, proxy) = h2_first_connection_and_proxy(
        |mut conn| async move {
            answer_first(&mut conn).await;
            std::future::pending::<()>().await; // wedged: holds the socket, reads nothing
        },
        |c| c.upstream_timeout = Duration::from_millis(300),
    )
    .await;
    let mut client = proxy.h1().await;
    let first = client.send(protected("one")).await;
    assert_eq!(first.status, 200);

    let start = Instant::now();
    let mut statuses = Vec::new();
    while start.elapsed() < Duration::from_secs(4) {
        let got = client.send(protected("again")).await;
        statuses.push(got.status.as_u16());
        if got.status == 200 {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&200),
        "never recovered in 4 s: {statuses:?}, connections dialled: {}",
        upstream.connections()
    );
}

// ---- 3. HTTP/2: idle expiry while a stream is still streaming (expected to pass) ----

#[tokio::test]
async fn h2_reaper_dropping_the_pools_sender_does_not_cut_an_in_flight_stream() {
    let (_upstream, proxy) = h2_upstream_and_proxy(
        |_, mut conn| async move {
            while let Some(Ok((_request, mut respond))) = conn.accept().await {
                tokio::spawn(async move {
                    let mut body = respond.send_response(ok_head(), false).unwrap();
                    for i in 0..8 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let last = i == 7;
                        body.send_data(Bytes::from(format!("chunk{i};")), last)
                            .unwrap();
                    }
                });
            }
        },
        |c| c.pool_idle_timeout = Duration::from_millis(150),
    )
    .await;
    let mut client = proxy.h1().await;
    let got = client.send(protected("slow")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.text(),
        "chunk0;chunk1;chunk2;chunk3;chunk4;chunk5;chunk6;chunk7;"
    );
}

// ---- 4. HTTP/1: an answer that ends with trailers costs its connection ----

/// A chunked answer with a trailer section. hyper's server stops polling a body once it yields
/// trailers and drops it, so `UpstreamBody` never sees its `None` and the lease drops the
/// sender: the connection is closed although hyper had read the answer to its end.
#[tokio::test]
async fn h1_answer_with_trailers_keeps_its_connection() {
    let upstream = MockUpstream::replying(
        Reply::new(200)
            .header("content-type", "application/json")
            .body(r#"{"ok":1}"#)
            .trailer("x-checksum", "1"),
    )
    .await;
    let proxy = spawn_proxy(&upstream.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    for _ in 0..3 {
        let got = client.send(protected("t")).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), r#"{"ok":1}"#);
    }
    assert_eq!(
        upstream.connections(),
        1,
        "a connection per answer that ended with trailers"
    );
}

// ---- 5. The reaper closes an idle connection up to twice --pool-idle-timeout after its last use ----

#[tokio::test]
async fn idle_connection_is_closed_about_pool_idle_timeout_after_its_last_use() {
    let mock = MockUpstream::start_default().await;
    let idle = Duration::from_millis(400);
    let proxy = spawn_proxy(&mock.url(), |c| c.pool_idle_timeout = idle).await;
    let mut client = proxy.h1().await;
    let refresh = || support::post_json("/refresh", r#"{"refresh_token":"r"}"#);
    client
        .send(refresh())
        .await
        .assert_json(200, r#"{"ok":true}"#);
    tokio::time::sleep(Duration::from_millis(250)).await;
    client
        .send(refresh())
        .await
        .assert_json(200, r#"{"ok":true}"#);
    let last_use = Instant::now();
    assert_eq!(mock.connections(), 1);
    mock.wait_for_connections("idle connection closed", |_, ended| ended >= 1)
        .await;
    let idle_for = last_use.elapsed();
    assert!(
        idle_for < idle + Duration::from_millis(100),
        "open {idle_for:?} after its last use with --pool-idle-timeout {idle:?}"
    );
}

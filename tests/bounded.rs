//! Every phase a client paces is bounded (issue "Every phase bounded"): request bodies, response
//! writes, HTTP/2 connections before, between and during streams, the drain; a client that
//! leaves cancels its upstream exchange and still gets an access line; reset floods are cut;
//! upstream concurrency is capped; a POST is never sent to the central service twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use auth_proxy::config::Toggle;
use bytes::Bytes;
use http::Request;
use support::{
    get, logs, pattern, post_json, spawn_proxy, within, MockUpstream, Reply, WithHeader, WAIT,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

const BODY_TIMEOUT_DETAIL: &str = r#"{"detail":"Request body not received in time"}"#;
const BUSY_DETAIL: &str =
    r#"{"detail":"Too many requests to the central auth service; retry shortly"}"#;

// ---- The access log, captured in-process (support::logs) ----

async fn access_line(request_id: &str) -> serde_json::Value {
    logs::one_line("the access line", |l| {
        l["target"] == "access" && l["request_id"] == request_id
    })
    .await
}

// ---- 1. HTTP/1 bodies and response writes ----

#[tokio::test]
async fn a_body_shorter_than_its_content_length_gets_408_and_the_connection_closes() {
    logs::capture();
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_body_timeout = Duration::from_millis(300);
    })
    .await;
    let mut conn = proxy.raw().await;
    let started = Instant::now();
    conn.send(
        "POST /login HTTP/1.1\r\nHost: proxy.test\r\nX-Request-Id: body-timeout-1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n\
         username=a",
    )
    .await
    .unwrap();
    let got = conn.response().await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    got.assert_json(408, BODY_TIMEOUT_DETAIL);
    assert_eq!(got.header("connection"), Some("close"));
    assert_eq!(got.header("x-request-id"), Some("body-timeout-1"));
    assert!(conn.closed_within(WAIT).await, "the connection is closed");
    assert!(mock.requests().is_empty(), "nothing was forwarded");
    let line = access_line("body-timeout-1").await;
    assert_eq!(line["status"], 408);
    assert_eq!(line["error"], "client_body_timeout");
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_is_cut_at_the_body_timeout() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_body_timeout = Duration::from_millis(400);
    })
    .await;
    let mut conn = proxy.raw().await;
    let body = r#"{"refresh_token":"a-token-long-enough-to-trickle"}"#;
    conn.send(format!(
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    ))
    .await
    .unwrap();
    let started = Instant::now();
    for byte in body.bytes() {
        // Each byte comes well within any per-read timeout; the whole body does not.
        if conn.send([byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let got = conn.response().await;
    got.assert_json(408, BODY_TIMEOUT_DETAIL);
    assert!(conn.closed_within(WAIT).await);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_body_that_comes_in_time_after_a_pause_is_forwarded() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_body_timeout = Duration::from_millis(800);
    })
    .await;
    let mut conn = proxy.raw().await;
    let body = r#"{"refresh_token":"t"}"#;
    conn.send(format!(
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..5]
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.send(&body[5..]).await.unwrap();
    let got = conn.response().await;
    got.assert_json(200, r#"{"ok":true}"#);
    assert_eq!(mock.only_request().body_json()["refresh_token"], "t");
}

#[tokio::test]
async fn a_client_that_stops_reading_a_large_answer_is_cut_and_frees_the_upstream_connection() {
    // 64 MiB: more than the kernel buffers on both sockets between the mock and the client.
    let mock = MockUpstream::builder()
        .stream(64 << 20, 256 << 10, Duration::ZERO)
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_send_timeout = Duration::from_millis(300);
    })
    .await;
    let mut conn = proxy.raw().await;
    conn.send("GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer t\r\n\r\n")
        .await
        .unwrap();
    // Read nothing: the proxy's writes block, then time out; the upstream exchange is dropped.
    within(
        WAIT,
        "the upstream connection closing",
        mock.wait_for_connections_ended(1),
    )
    .await;
    assert!(
        conn.closed_within(WAIT).await,
        "the client connection is closed (what was buffered arrives first)"
    );
    assert!(conn.unread().len() < 64 << 20, "the answer was cut");
}

#[tokio::test]
async fn a_slow_reader_that_keeps_reading_gets_the_whole_answer() {
    let total = 4 << 20;
    let mock = MockUpstream::builder()
        .stream(total, 64 << 10, Duration::ZERO)
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_send_timeout = Duration::from_millis(500);
    })
    .await;
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    conn.write_all(
        b"GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer t\r\n\r\n",
    )
    .await
    .unwrap();
    // 64 KiB reads with pauses shorter than the send timeout: never cut.
    let received = within(Duration::from_secs(30), "the whole answer", async {
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "cut after {} bytes", received.len());
            received.extend_from_slice(&chunk[..n]);
            if let Some(head) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                if received.len() >= head + 4 + total {
                    return received.split_off(head + 4);
                }
            }
        }
    })
    .await;
    assert_eq!(received.len(), total);
    assert_eq!(received, pattern(total));
}

#[tokio::test]
async fn an_upstream_body_that_stalls_past_the_upstream_timeout_is_cut_not_waited_for() {
    // Head and a first chunk, then nothing for longer than --upstream-timeout: the client sees
    // the cut (connection closed short of Content-Length) instead of waiting for the rest.
    let mock = MockUpstream::builder()
        .stream(3000, 1000, Duration::from_secs(3))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(300);
        // The streamed path: coalescing holds a small /protected body whole before answering
        // (a stall there is a 504, tests/coalesce.rs).
        c.shield.protected_coalesce = Toggle::Off;
    })
    .await;
    let mut conn = proxy.raw().await;
    conn.send("GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer t\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        conn.closed_within(Duration::from_secs(2)).await,
        "the stalled answer was waited for"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let got = String::from_utf8_lossy(conn.unread()).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.contains("content-length: 3000\r\n"), "{got:?}");
    let body = &got[got.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        body.as_bytes(),
        &pattern(1000)[..],
        "only the first chunk came"
    );
}

#[tokio::test]
async fn an_upstream_body_with_pauses_shorter_than_the_upstream_timeout_is_passed_whole() {
    let mock = MockUpstream::builder()
        .stream(3000, 1000, Duration::from_millis(150))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(400);
    })
    .await;
    let mut client = proxy.h1().await;
    let got = client
        .send(get("/protected").with("authorization", "Bearer t"))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body[..], &pattern(3000)[..]);
}

// ---- 3. A client that leaves cancels its upstream exchange, and is logged ----

/// Logs captured, a central service that answers after 3 s, and a proxy that would wait 10 s
/// for it: a client has time to leave while its request is upstream.
async fn slow_upstream_and_proxy() -> (MockUpstream, support::Proxy) {
    logs::capture();
    let mock = MockUpstream::builder()
        .delay_head(Duration::from_secs(3))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    (mock, proxy)
}

#[tokio::test]
async fn an_http1_client_that_hangs_up_cancels_the_upstream_request_and_is_logged_499() {
    let (mock, proxy) = slow_upstream_and_proxy().await;
    let mut conn = proxy.raw().await;
    conn.send(
        "GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer t\r\n\
         X-Request-Id: hang-up-1\r\n\r\n",
    )
    .await
    .unwrap();
    mock.wait_for_requests(1).await;
    drop(conn);
    let started = Instant::now();
    within(
        Duration::from_secs(2),
        "the upstream connection closing with the client",
        mock.wait_for_connections_ended(1),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let line = access_line("hang-up-1").await;
    assert_eq!(line["status"], 499);
    assert_eq!(line["error"], "client_closed");
    assert_eq!(line["route"], "/protected");
}

#[tokio::test]
async fn an_h2_stream_reset_cancels_its_upstream_request_and_is_logged_499() {
    let (mock, proxy) = slow_upstream_and_proxy().await;
    let (mut client, _conn) = h2_client(TcpStream::connect(proxy.addr).await.unwrap()).await;
    let request = h2_request(&proxy, "/protected", "h2-reset-1");
    let (response, stream) = client.send_request(request, true).unwrap();
    mock.wait_for_requests(1).await;
    drop((response, stream)); // RST_STREAM(CANCEL)
    within(
        Duration::from_secs(2),
        "the upstream connection closing with the stream",
        mock.wait_for_connections_ended(1),
    )
    .await;
    let line = access_line("h2-reset-1").await;
    assert_eq!(line["status"], 499);
    assert_eq!(line["error"], "client_closed");
}

// ---- 2. HTTP/2 connections ----

async fn h2_client(
    tcp: TcpStream,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    h2_client_with(tcp, &h2::client::Builder::new()).await
}

async fn h2_client_with<T>(
    io: T,
    builder: &h2::client::Builder,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, conn) = within(WAIT, "h2 handshake", builder.handshake(io))
        .await
        .expect("h2 handshake");
    (client, tokio::spawn(conn))
}

fn h2_request(proxy: &support::Proxy, path: &str, id: &str) -> Request<()> {
    Request::get(format!("http://{}{path}", proxy.addr))
        .header("authorization", "Bearer t")
        .header("x-request-id", id)
        .body(())
        .unwrap()
}

/// Whether the h2 client connection driven by `conn` ends within `limit`.
async fn ends_within(
    conn: tokio::task::JoinHandle<Result<(), h2::Error>>,
    limit: Duration,
) -> bool {
    tokio::time::timeout(limit, conn).await.is_ok()
}

#[tokio::test]
async fn an_h2_connection_that_sends_only_the_preface_is_closed_at_the_header_timeout() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut conn = proxy.raw().await;
    // The preface and an empty SETTINGS frame: a valid HTTP/2 start, then nothing.
    conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        conn.closed_within(WAIT).await,
        "a preface-only connection is closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_at_the_header_timeout_after_its_last_stream() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_header_timeout = Duration::from_millis(400);
    })
    .await;
    let (mut client, conn) = h2_client(TcpStream::connect(proxy.addr).await.unwrap()).await;
    // Keep the connection busy past the timeout with back-to-back streams: not idle.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(800) {
        let (response, _) = client
            .send_request(h2_request(&proxy, "/protected", "h2-busy"), true)
            .unwrap();
        let response = within(WAIT, "h2 answer", response).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!conn.is_finished(), "a busy connection stays open");
    assert!(
        ends_within(conn, Duration::from_secs(3)).await,
        "an idle h2 connection is closed"
    );
}

#[tokio::test]
async fn an_h2_stream_whose_body_never_comes_gets_408() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_body_timeout = Duration::from_millis(300);
    })
    .await;
    let (mut client, _conn) = h2_client(TcpStream::connect(proxy.addr).await.unwrap()).await;
    let request = Request::post(format!("http://{}/refresh", proxy.addr))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    // The stream stays open: no DATA, no END_STREAM.
    let (response, _stream) = client.send_request(request, false).unwrap();
    let response = within(WAIT, "the 408", response).await.unwrap();
    assert_eq!(response.status(), 408);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, BODY_TIMEOUT_DETAIL.as_bytes());
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn an_h2_stream_held_at_a_zero_window_is_cut_at_the_send_timeout() {
    let mock = MockUpstream::replying(Reply::json(200, r#"{"message":"a body to send"}"#)).await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.client_send_timeout = Duration::from_millis(300);
        c.client_header_timeout = Duration::from_secs(10);
    })
    .await;
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(0);
    let (mut client, conn) =
        h2_client_with(TcpStream::connect(proxy.addr).await.unwrap(), &builder).await;
    let (response, _) = client
        .send_request(h2_request(&proxy, "/protected", "h2-zero-window"), true)
        .unwrap();
    // The head arrives; the body never can: the client grants no window.
    let response = within(WAIT, "the head", response).await.unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    assert!(
        ends_within(conn, Duration::from_secs(3)).await,
        "a connection whose answer cannot move is closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(response);
}

/// A socket that can be frozen: from then on it neither reads nor writes (a peer that ignores
/// everything, PING included, without closing).
struct Freezable {
    inner: TcpStream,
    frozen: Arc<AtomicBool>,
}

impl AsyncRead for Freezable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Freezable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn an_idle_h2_client_that_ignores_ping_does_not_hold_the_drain() {
    let mock = MockUpstream::start_default().await;
    let mut proxy = spawn_proxy(&mock.url(), |c| {
        c.shutdown_grace = Duration::from_secs(20);
        c.client_header_timeout = Duration::from_secs(20);
    })
    .await;
    let frozen = Arc::new(AtomicBool::new(false));
    let io = Freezable {
        inner: TcpStream::connect(proxy.addr).await.unwrap(),
        frozen: frozen.clone(),
    };
    let (mut client, _conn) = h2_client_with(io, &h2::client::Builder::new()).await;
    let (response, _) = client
        .send_request(h2_request(&proxy, "/protected", "h2-drain"), true)
        .unwrap();
    let response = within(WAIT, "h2 answer", response).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        chunk.unwrap();
    }
    frozen.store(true, Ordering::SeqCst);
    let started = Instant::now();
    proxy.shutdown();
    proxy.stopped(Duration::from_secs(5)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the drain waited {:?} on a connection with no open stream",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_paced_rapid_reset_closes_the_connection_and_bounds_upstream_requests() {
    let mock = MockUpstream::builder()
        .delay_head(Duration::from_secs(2))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    let (mut client, conn) = h2_client(TcpStream::connect(proxy.addr).await.unwrap()).await;
    let mut sent = 0;
    let started = Instant::now();
    'attack: while sent < 600 && started.elapsed() < Duration::from_secs(10) {
        let mut batch = Vec::new();
        for _ in 0..10 {
            if poll_fn(|cx| client.poll_ready(cx)).await.is_err() {
                break 'attack;
            }
            match client.send_request(h2_request(&proxy, "/protected", "flood"), true) {
                Ok(stream) => batch.push(stream),
                Err(_) => break 'attack,
            }
            sent += 1;
        }
        // Paced: each stream has reached the central service before it is reset, so hyper's
        // own rapid-reset guard (streams reset before they are accepted) never trips.
        let reached = tokio::time::timeout(Duration::from_secs(1), mock.wait_for_requests(sent));
        if reached.await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        drop(batch); // RST_STREAM(CANCEL) for each
    }
    assert!(
        ends_within(conn, WAIT).await,
        "the connection was not closed after {sent} resets"
    );
    assert!(sent < 600, "all {sent} streams were accepted");
    let reached = mock.requests().len();
    assert!(
        reached <= 150,
        "{reached} of {sent} reset streams reached the central service"
    );
}

// ---- 3. Upstream concurrency cap ----

#[tokio::test]
async fn upstream_requests_are_capped_and_the_queue_overflow_gets_503() {
    let mock = MockUpstream::builder()
        .delay_head(Duration::from_millis(400))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_max_connections = 2;
        c.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    // 2 in flight + 8 queued (4 per permit) are served; 10 more are turned away at once.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(proxy.h1().await);
    }
    // Distinct tokens: identical ones would be coalesced into one upstream call.
    let answers = futures_util::future::join_all(clients.iter_mut().enumerate().map(
        |(i, client)| async move {
            let started = Instant::now();
            let bearer = format!("Bearer t{i}");
            let got = client
                .send(get("/protected").with("authorization", &bearer))
                .await;
            (got, started.elapsed())
        },
    ))
    .await;
    let (ok, busy): (Vec<_>, Vec<_>) = answers.into_iter().partition(|(g, _)| g.status == 200);
    assert_eq!(ok.len(), 10, "2 in flight and 8 queued are served");
    assert_eq!(busy.len(), 10);
    for (got, took) in &busy {
        got.assert_json(503, BUSY_DETAIL);
        assert_eq!(got.header("retry-after"), Some("1"));
        assert!(
            *took < Duration::from_millis(300),
            "503 at once, not after {took:?}"
        );
    }
    assert_eq!(mock.requests().len(), 10);
    assert!(
        mock.connections() <= 2,
        "{} upstream connections for a cap of 2",
        mock.connections()
    );
}

// ---- 4. Only what provably was not processed is sent again ----

#[tokio::test]
async fn a_post_the_central_service_read_on_a_reused_connection_is_never_sent_again() {
    let mock = MockUpstream::builder()
        .reset_reused_connections()
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        let body = format!(r#"{{"email":"user{i}@example.com","password":"pw"}}"#);
        let got = client.send(post_json("/register", &body)).await;
        if got.status == 502 {
            got.assert_json(
                502,
                r#"{"detail":"Central auth service sent an invalid response"}"#,
            );
        }
        statuses.push(got.status.as_u16());
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), 100, "100 client requests, 100 upstream");
    for (i, request) in requests.iter().enumerate() {
        assert_eq!(
            request.body_json()["email"],
            format!("user{i}@example.com"),
            "each request reaches the service once, in order"
        );
    }
    // A fresh connection answers; the reused one after it resets; the next is fresh again.
    assert!(statuses.iter().all(|s| *s == 200 || *s == 502));
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 50);
}

#[tokio::test]
async fn a_get_lost_on_a_reused_connection_is_sent_once_more_on_a_fresh_one() {
    let mock = MockUpstream::builder()
        .reset_reused_connections()
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    for _ in 0..20 {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        got.assert_json(200, r#"{"ok":true}"#);
    }
    // The first on a fresh connection; each later one lost once on the reused connection,
    // then answered on a fresh one.
    assert_eq!(mock.requests().len(), 1 + 19 * 2);
}

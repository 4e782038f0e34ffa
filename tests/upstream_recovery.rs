//! How the upstream pool recovers: HTTP/2 GOAWAY, refused streams and dead shared connections, trailers, idle expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use support::{get, spawn_proxy, within, TestCa, WithHeader, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Tls = tokio_rustls::server::TlsStream<TcpStream>;
type H2Conn = h2::server::Connection<Tls, Bytes>;

/// An https central service speaking HTTP/2 (ALPN `h2` only) through the `h2` crate directly,
/// so that it can send GOAWAY / RST_STREAM exactly. `serve(i, conn)` runs the i-th connection.
struct H2Upstream {
    addr: SocketAddr,
    ca: TestCa,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for H2Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl H2Upstream {
    async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(usize, H2Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ca = TestCa::new("review-h2");
        let mut tls = (*ca.server).clone();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let serve = Arc::new(serve);
        let task = tokio::spawn(async move {
            let mut all = tokio::task::JoinSet::new();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let i = counter.fetch_add(1, Ordering::SeqCst);
                let (acceptor, serve) = (acceptor.clone(), serve.clone());
                all.spawn(async move {
                    let tls = acceptor.accept(tcp).await.unwrap();
                    let conn = h2::server::handshake(tls).await.unwrap();
                    serve(i, conn).await;
                });
            }
        });
        H2Upstream {
            addr,
            ca,
            connections,
            task,
        }
    }

    async fn proxy(&self, tweak: impl FnOnce(&mut auth_proxy::Config)) -> support::Proxy {
        let ca = self.ca.ca_der.clone();
        spawn_proxy(&format!("https://127.0.0.1:{}", self.addr.port()), |c| {
            c.upstream_ca = vec![ca];
            tweak(c);
        })
        .await
    }
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
    let upstream = H2Upstream::start(|i, mut conn| async move {
        if i > 0 {
            return serve_ok(conn).await;
        }
        answer_first(&mut conn).await;
        // Not reading for a moment: the next request sits unread in the socket when the idle
        // timer fires.
        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.abrupt_shutdown(h2::Reason::NO_ERROR); // GOAWAY(last_stream_id = 1)
        let _ = poll_fn(|cx| conn.poll_closed(cx)).await;
    })
    .await;
    let proxy = upstream.proxy(|_| {}).await;
    let mut client = proxy.h1().await;

    let first = client
        .send(get("/protected").with("authorization", "Bearer one"))
        .await;
    assert_eq!(first.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = client
        .send(get("/protected").with("authorization", "Bearer two"))
        .await;
    assert_eq!(
        second.status,
        200,
        "GOAWAY-refused stream surfaced as {} {:?} (connections: {})",
        second.status,
        second.text(),
        upstream.connections.load(Ordering::SeqCst)
    );
}

/// RST_STREAM(REFUSED_STREAM): "the stream was not processed" (RFC 9113 §8.7), safe to retry.
#[tokio::test]
async fn h2_refused_stream_is_retried_not_a_502() {
    let upstream = H2Upstream::start(|i, mut conn| async move {
        if i > 0 {
            return serve_ok(conn).await;
        }
        let (_request, mut respond) = conn.accept().await.unwrap().unwrap();
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        serve_ok(conn).await;
    })
    .await;
    let proxy = upstream.proxy(|_| {}).await;
    let mut client = proxy.h1().await;
    let got = client
        .send(get("/protected").with("authorization", "Bearer one"))
        .await;
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
    let upstream = H2Upstream::start(|i, mut conn| async move {
        if i > 0 {
            return serve_ok(conn).await;
        }
        answer_first(&mut conn).await;
        std::future::pending::<()>().await; // wedged: holds the socket, reads nothing
    })
    .await;
    let proxy = upstream
        .proxy(|c| c.upstream_timeout = Duration::from_millis(300))
        .await;
    let mut client = proxy.h1().await;
    let first = client
        .send(get("/protected").with("authorization", "Bearer one"))
        .await;
    assert_eq!(first.status, 200);

    let start = Instant::now();
    let mut statuses = Vec::new();
    while start.elapsed() < Duration::from_secs(4) {
        let got = client
            .send(get("/protected").with("authorization", "Bearer again"))
            .await;
        statuses.push(got.status.as_u16());
        if got.status == 200 {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&200),
        "never recovered in 4 s: {statuses:?}, connections dialled: {}",
        upstream.connections.load(Ordering::SeqCst)
    );
}

// ---- 3. HTTP/2: idle expiry while a stream is still streaming (expected to pass) ----

#[tokio::test]
async fn h2_reaper_dropping_the_pools_sender_does_not_cut_an_in_flight_stream() {
    let upstream = H2Upstream::start(|_, mut conn| async move {
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
    })
    .await;
    let proxy = upstream
        .proxy(|c| c.pool_idle_timeout = Duration::from_millis(150))
        .await;
    let mut client = proxy.h1().await;
    let got = client
        .send(get("/protected").with("authorization", "Bearer slow"))
        .await;
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let server = tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // GET requests: a head and no body.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut chunk = [0u8; 4096];
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\n\r\n8\r\n{\"ok\":1}\r\n0\r\nx-checksum: 1\r\n\r\n";
                    if tcp.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let proxy = spawn_proxy(&format!("http://{addr}"), |_| {}).await;
    let mut client = proxy.h1().await;
    for _ in 0..3 {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), r#"{"ok":1}"#);
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "a connection per answer that ended with trailers"
    );
    server.abort();
}

// ---- 5. The reaper closes an idle connection up to twice --pool-idle-timeout after its last use ----

#[tokio::test]
async fn idle_connection_is_closed_about_pool_idle_timeout_after_its_last_use() {
    let mock = support::MockUpstream::start_default().await;
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
    within(WAIT, "idle connection closed", async {
        while mock.connections_ended() < 1 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    let idle_for = last_use.elapsed();
    assert!(
        idle_for < idle + Duration::from_millis(100),
        "open {idle_for:?} after its last use with --pool-idle-timeout {idle:?}"
    );
}

#[allow(dead_code)]
async fn collect(body: hyper::body::Incoming) -> Bytes {
    body.collect().await.unwrap().to_bytes()
}

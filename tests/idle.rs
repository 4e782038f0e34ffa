//! Parked idle HTTP/1 connections (`src/conn/park.rs`): what the client sees must not change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use auth_proxy::conn::park::PARK_AFTER;
use support::{get, spawn_proxy, within, MockUpstream, Proxy, RawConn, Reply, WithHeader, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: proxy.test\r\nX-Request-Id: rid-1\r\n\r\n";

fn protected(id: &str) -> String {
    format!(
        "GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer tok\r\n\
         X-Request-Id: {id}\r\n\r\n"
    )
}

/// A proxy with `header_timeout`, and a connection it parked after answering one request; also
/// when that answer arrived. The mock and proxy are returned to keep them running.
async fn parked_after_one_answer(
    header_timeout: Duration,
) -> (MockUpstream, Proxy, RawConn, Instant) {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |c| c.client_header_timeout = header_timeout).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(HEALTHZ).await.unwrap();
    assert_eq!(conn.response().await.status.as_u16(), 200);
    let answered = Instant::now();
    proxy.parked(1).await;
    (mock, proxy, conn, answered)
}

/// Long enough that an idle connection would have been parked several times over.
async fn idle_well_past_park() {
    tokio::time::sleep(PARK_AFTER * 5).await;
}

/// A client socket read as exact bytes, one `Content-Length` response at a time.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    async fn connect(proxy: &Proxy) -> Self {
        Wire {
            stream: TcpStream::connect(proxy.addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// One whole response, byte for byte, with the `date` line blanked (it ticks each second).
    async fn response(&mut self) -> String {
        within(WAIT, "response bytes", async {
            loop {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8(self.buf[..end + 4].to_vec()).unwrap();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .expect("content-length")
                        .parse()
                        .unwrap();
                    if self.buf.len() >= end + 4 + length {
                        let whole: Vec<u8> = self.buf.drain(..end + 4 + length).collect();
                        let text = String::from_utf8(whole).unwrap();
                        return text
                            .split("\r\n")
                            .map(|l| {
                                if l.starts_with("date: ") {
                                    "date: -"
                                } else {
                                    l
                                }
                            })
                            .collect::<Vec<_>>()
                            .join("\r\n");
                    }
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed before a whole response");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
    }

    /// Whether anything more arrives (or the connection closes) within `limit`.
    async fn quiet_for(&mut self, limit: Duration) -> bool {
        let mut chunk = [0u8; 1];
        self.buf.is_empty()
            && tokio::time::timeout(limit, self.stream.read(&mut chunk))
                .await
                .is_err()
    }
}

#[tokio::test]
async fn a_parked_connection_answers_the_next_request_byte_for_byte_as_an_unparked_one() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;

    // Unparked: two requests back to back.
    let mut busy = Wire::connect(&proxy).await;
    busy.send(HEALTHZ).await;
    let first = busy.response().await;
    busy.send(&protected("rid-p")).await;
    let unparked = (busy.response().await, first.clone());
    drop(busy);

    let mut idle = Wire::connect(&proxy).await;
    idle.send(HEALTHZ).await;
    assert_eq!(idle.response().await, first);
    proxy.parked(1).await;
    idle.send(&protected("rid-p")).await;
    let resumed = idle.response().await;
    assert_eq!(resumed, unparked.0, "same bytes after parking");
    assert!(!resumed.to_ascii_lowercase().contains("connection:"));
    assert_eq!(proxy.state.conns.resumed(), 1);

    // Parked again, then the same request once more on the same socket.
    proxy.parked(2).await;
    idle.send(HEALTHZ).await;
    assert_eq!(idle.response().await, unparked.1);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn pipelined_requests_across_park_boundaries_are_answered_in_order() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = Wire::connect(&proxy).await;

    conn.send(&format!("{}{}", protected("rid-1"), protected("rid-2")))
        .await;
    for id in ["rid-1", "rid-2"] {
        assert!(conn
            .response()
            .await
            .contains(&format!("x-request-id: {id}\r\n")));
    }
    proxy.parked(1).await;
    // Three at once into a parked connection, the last one with its head split in two writes.
    let third = protected("rid-5");
    let (head, tail) = third.split_at(20);
    conn.send(&format!(
        "{}{HEALTHZ}{}{head}",
        protected("rid-3"),
        protected("rid-4")
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.send(tail).await;
    for id in ["rid-3", "rid-1", "rid-4", "rid-5"] {
        let got = conn.response().await;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(
            got.contains(&format!("x-request-id: {id}\r\n")),
            "{id}: {got}"
        );
    }
    proxy.parked(2).await;
    let seen: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.header("x-request-id").unwrap().to_owned())
        .collect();
    assert_eq!(seen, ["rid-1", "rid-2", "rid-3", "rid-4", "rid-5"]);
}

/// A request body that is itself a request: if it were ever parsed as one, the mock would see it.
const SMUGGLED: &str =
    "GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer smuggled\r\n\r\n";

#[tokio::test]
async fn an_unread_body_is_never_parsed_as_a_request_after_idle_time() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = Wire::connect(&proxy).await;

    // 401 without reading the body; the whole body has arrived, so hyper discards it.
    conn.send(&format!(
        "GET /protected HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    ))
    .await;
    assert!(conn.response().await.starts_with("HTTP/1.1 401 "));
    // 405 on a POST, body unread.
    conn.send(&format!(
        "POST /protected HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    ))
    .await;
    assert!(conn.response().await.starts_with("HTTP/1.1 405 "));
    proxy.parked(1).await;
    assert!(
        conn.quiet_for(PARK_AFTER * 3).await,
        "no answer to the body"
    );

    conn.send(&protected("rid-after")).await;
    assert!(conn
        .response()
        .await
        .contains("x-request-id: rid-after\r\n"));
    assert!(conn.quiet_for(PARK_AFTER * 3).await, "exactly one answer");
    let tokens: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert_eq!(
        tokens,
        ["Bearer tok"],
        "the body never reached the upstream as a request"
    );
}

#[tokio::test]
async fn a_body_still_arriving_when_the_answer_is_sent_closes_as_before_and_is_never_parked() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = RawConn::connect(proxy.addr).await;

    let (first, rest) = SMUGGLED.split_at(10);
    conn.send(format!(
        "GET /protected HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: {}\r\n\r\n{first}",
        SMUGGLED.len()
    ))
    .await
    .unwrap();
    let got = conn.response().await;
    assert_eq!(got.status.as_u16(), 401);
    idle_well_past_park().await;
    // The rest of the body (a whole request) arrives late; it must not be served.
    let _ = conn.send(rest).await;
    assert!(
        conn.closed_within(WAIT).await,
        "hyper closes: body not drainable"
    );
    assert!(conn.unread().is_empty(), "nothing answered after the 401");
    assert_eq!(proxy.state.conns.parked(), 0);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_partial_next_head_keeps_the_connection_unparked_until_it_completes() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = Wire::connect(&proxy).await;

    let second = protected("rid-2");
    let (head, tail) = second.split_at(30);
    conn.send(&format!("{}{head}", protected("rid-1"))).await;
    assert!(conn.response().await.contains("x-request-id: rid-1\r\n"));
    idle_well_past_park().await;
    assert_eq!(
        proxy.state.conns.parked(),
        0,
        "bytes of a head are buffered"
    );
    conn.send(tail).await;
    assert!(conn.response().await.contains("x-request-id: rid-2\r\n"));
    proxy.parked(1).await;
}

/// hyper is not waiting for a head while a response is still being written. (Unsent bytes held
/// in hyper's buffer — a body larger than the kernel takes — are covered in `park::tests` with a
/// 16 MiB body; no answer of this proxy is that large.)
#[tokio::test]
async fn a_response_still_being_written_keeps_the_connection_unparked() {
    const TOTAL: usize = 16 * 1024 * 1024;
    let mock = MockUpstream::builder()
        .stream(TOTAL, 64 * 1024, Duration::ZERO)
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = RawConn::connect(proxy.addr).await;

    conn.send(protected("rid-big")).await.unwrap();
    mock.wait_for_requests(1).await;
    idle_well_past_park().await;
    assert_eq!(
        proxy.state.conns.parked(),
        0,
        "not parked while the response waits for the client"
    );
    let got = conn.response().await;
    assert_eq!(got.body.len(), TOTAL);
    assert!(got.body == support::pattern(TOTAL), "whole body, intact");
    proxy.parked(1).await;
    conn.send(HEALTHZ).await.unwrap();
    assert_eq!(conn.response().await.status.as_u16(), 200);
}

#[tokio::test]
async fn requests_that_close_the_connection_still_close_it() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;

    let closing = [
        "GET /healthz HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.0\r\nHost: proxy.test\r\n\r\n",
        // Both framing headers: our 400 adds `Connection: close`.
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for request in closing {
        let mut conn = RawConn::connect(proxy.addr).await;
        // After a parked exchange, so that the closing request is served by a resumed connection.
        conn.send(HEALTHZ).await.unwrap();
        assert_eq!(conn.response().await.status.as_u16(), 200);
        let before = proxy.state.conns.parked();
        proxy.parked(before + 1).await;
        conn.send(request).await.unwrap();
        let got = conn.response().await;
        assert!(conn.closed_within(WAIT).await, "{request:?} closes");
        if got.version == http::Version::HTTP_11 && got.status.as_u16() != 200 {
            assert_eq!(got.header("connection"), Some("close"), "{request:?}");
        }
        assert_eq!(proxy.state.conns.parked(), before + 1, "not parked again");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_parked_connection_is_closed_when_its_header_deadline_passes() {
    let (_mock, _proxy, mut conn, answered) = parked_after_one_answer(Duration::from_secs(1)).await;
    assert!(conn.closed_within(Duration::from_secs(4)).await, "closed");
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(800), "closed early: {idle:?}");
    assert!(
        conn.unread().is_empty(),
        "closed without a word, as hyper does"
    );
}

#[tokio::test]
async fn a_resumed_connection_keeps_the_header_deadline_armed_before_it_was_parked() {
    let (_mock, _proxy, mut conn, answered) = parked_after_one_answer(Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(answered.elapsed())).await;
    // A head that never completes: the deadline is the one armed after the answer (2 s), not
    // 2 s from now.
    conn.send("GET /healthz HTTP/1.1\r\nHost: proxy.test\r\n")
        .await
        .unwrap();
    assert!(conn.closed_within(Duration::from_secs(5)).await, "closed");
    let idle = answered.elapsed();
    assert!(
        idle < Duration::from_millis(2900),
        "the deadline restarted: closed {idle:?} after the answer"
    );
    assert!(
        idle >= Duration::from_millis(1800),
        "closed early: {idle:?}"
    );
}

#[tokio::test]
async fn verdicts_and_request_ids_line_up_across_incarnations() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    for (i, id) in ["rid-a", "rid-b"].iter().enumerate() {
        conn.send(protected(id)).await.unwrap();
        assert_eq!(conn.response().await.header("x-request-id"), Some(*id));
        proxy.parked(i as u64 + 1).await;
    }
    // The third request on this socket, the first of its incarnation: still caught.
    conn.send(
        "POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nX-Request-Id: rid-c\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let got = conn.response().await;
    assert_eq!(got.status.as_u16(), 400);
    assert_eq!(got.header("x-request-id"), Some("rid-c"));
    assert!(conn.closed_within(WAIT).await);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn graceful_shutdown_closes_parked_connections_at_once() {
    let mock = MockUpstream::start_default().await;
    let mut proxy = spawn_proxy(&mock.url(), |c| {
        c.shutdown_grace = Duration::from_secs(5);
    })
    .await;
    let mut parked_conn = RawConn::connect(proxy.addr).await;
    parked_conn.send(HEALTHZ).await.unwrap();
    assert_eq!(parked_conn.response().await.status.as_u16(), 200);
    // A second one resumed by the first bytes of a head that never completes.
    let mut half = RawConn::connect(proxy.addr).await;
    half.send(HEALTHZ).await.unwrap();
    assert_eq!(half.response().await.status.as_u16(), 200);
    proxy.parked(2).await;
    half.send("GET /healthz HTTP/1.1\r\n").await.unwrap();
    within(WAIT, "resumed", async {
        while proxy.state.conns.resumed() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let started = Instant::now();
    proxy.shutdown();
    assert!(parked_conn.closed_within(Duration::from_secs(1)).await);
    assert!(half.closed_within(Duration::from_secs(1)).await);
    assert!(parked_conn.unread().is_empty() && half.unread().is_empty());
    proxy.stopped(Duration::from_secs(2)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for the grace"
    );
}

#[tokio::test]
async fn http2_connections_are_served_as_before_and_never_parked() {
    let mock = MockUpstream::replying(Reply::json(200, r#"{"user":"alice"}"#)).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let client = proxy.h2().await;
    for _ in 0..2 {
        let got = client
            .send(get("/protected").with("authorization", "Bearer t"))
            .await;
        assert_eq!(got.version, http::Version::HTTP_2);
        assert_eq!(got.text(), r#"{"user":"alice"}"#);
        idle_well_past_park().await;
    }
    assert_eq!(proxy.state.conns.parked(), 0);
}

#[tokio::test]
async fn http1_that_opens_like_the_http2_preface_goes_through_the_auto_builder() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    // "P" alone could begin "PRI * HTTP/2.0": left to hyper-util, as before.
    conn.send("P").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.send("OST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"refresh_token\":\"r\"}")
        .await
        .unwrap();
    assert_eq!(conn.response().await.status.as_u16(), 200);
    idle_well_past_park().await;
    conn.send(HEALTHZ).await.unwrap();
    assert_eq!(conn.response().await.status.as_u16(), 200);
    assert_eq!(proxy.state.conns.parked(), 0);
}

#[tokio::test]
async fn a_connection_sending_back_to_back_is_not_parked_between_requests() {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let started = Instant::now();
    let mut sent = 0u32;
    while started.elapsed() < PARK_AFTER * 5 {
        let got = client.send(get("/healthz")).await;
        assert_eq!(got.status.as_u16(), 200);
        sent += 1;
    }
    // Only a scheduler stall of a whole PARK_AFTER between two requests could park it.
    assert!(sent > 20);
    assert!(
        proxy.state.conns.parked() <= 1,
        "parked between busy requests"
    );
}

/// If hyper ever kept its header timer alive while a request is in flight, parking would drop
/// that request: these exchanges last many `PARK_AFTER`s and must complete.
#[tokio::test]
async fn requests_and_responses_in_flight_for_several_park_periods_complete() {
    const TOTAL: usize = 6 * 1024;
    let slow_head = MockUpstream::builder()
        .delay_head(PARK_AFTER * 4)
        .start()
        .await;
    let proxy = spawn_proxy(&slow_head.url(), |_| {}).await;
    let mut conn = Wire::connect(&proxy).await;
    conn.send(&protected("rid-slow")).await;
    assert!(conn.response().await.contains("x-request-id: rid-slow\r\n"));
    assert_eq!(proxy.state.conns.parked(), 0);

    let slow_body = MockUpstream::builder()
        .stream(TOTAL, 1024, PARK_AFTER * 2 / 3)
        .start()
        .await;
    let proxy = spawn_proxy(&slow_body.url(), |_| {}).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.send(protected("rid-stream")).await.unwrap();
    let got = conn.response().await;
    assert!(got.body == support::pattern(TOTAL), "whole body, intact");
    assert_eq!(proxy.state.conns.parked(), 0);
    proxy.parked(1).await;
    conn.send(HEALTHZ).await.unwrap();
    assert_eq!(conn.response().await.status.as_u16(), 200);
}

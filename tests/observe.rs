//! What an operator sees (issue 15): each proxy-made 5xx explained in one warn line with its
//! step and cause chain, a fine-grained `error` on the access line, a body cut after its head
//! logged as such, requests cut by the drain logged, and W3C trace context kept or started.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use auth_proxy::config::Toggle;
use support::{
    get, logs, refused_port, spawn_proxy, within, MockUpstream, Reply, TestCa, WithHeader, WAIT,
};

// ---- The log, captured in-process ----

/// Every captured line whose `field` is `value`.
fn lines_with(field: &str, value: &str) -> Vec<serde_json::Value> {
    logs::lines()
        .into_iter()
        .filter(|v| v[field] == value)
        .collect()
}

/// Waits until exactly `n` lines carry `request_id`; returns them in order.
async fn lines_of(request_id: &str, n: usize) -> Vec<serde_json::Value> {
    within(WAIT, "the log lines", async {
        loop {
            let lines = lines_with("request_id", request_id);
            if lines.len() >= n {
                assert_eq!(lines.len(), n, "{lines:#?}");
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Sends `GET /protected` with `request_id` through a proxy in front of `url`; the status.
async fn protected(url: &str, request_id: &str) -> u16 {
    let proxy = spawn_proxy(url, |_| {}).await;
    let mut client = proxy.h1().await;
    let got = client
        .send(
            get("/protected")
                .with("authorization", "Bearer t0ken-Secret-1")
                .with("x-request-id", request_id),
        )
        .await;
    got.status.as_u16()
}

/// The access line and the warn line of a proxy-made 5xx, checked for their shared facts.
async fn explained(request_id: &str, status: u16, error: &str, step: &str) -> String {
    let lines = lines_of(request_id, 2).await;
    let warn = lines
        .iter()
        .find(|l| l["level"] == "WARN")
        .expect("a warn line");
    let access = lines
        .iter()
        .find(|l| l["target"] == "access")
        .expect("an access line");
    assert_eq!(access["status"], status);
    assert_eq!(access["error"], error, "{access}");
    assert_eq!(warn["status"], status);
    assert_eq!(warn["error"], error);
    assert_eq!(warn["step"], step, "{warn}");
    assert_eq!(warn["route"], "/protected");
    let cause = warn["cause"].as_str().unwrap().to_owned();
    for line in &lines {
        assert!(!line.to_string().contains("t0ken-Secret"), "{line}");
    }
    cause
}

#[tokio::test]
async fn a_refused_connection_is_502_connect_refused_with_the_os_error_in_the_warn_line() {
    logs::capture();
    let url = format!("http://127.0.0.1:{}", refused_port());
    assert_eq!(protected(&url, "obs-refused").await, 502);
    let cause = explained("obs-refused", 502, "connect_refused", "dial").await;
    assert!(
        cause.starts_with("central auth service failed: dial: "),
        "{cause}"
    );
    assert!(cause.contains("Connection refused"), "{cause}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_502_tls_naming_the_certificate_problem() {
    logs::capture();
    let served = TestCa::new("central");
    let mock = MockUpstream::builder().tls(&served).start().await;
    assert_eq!(protected(&mock.url(), "obs-tls").await, 502);
    let cause = explained("obs-tls", 502, "tls", "tls").await;
    assert!(
        cause.contains("invalid peer certificate: UnknownIssuer"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_reset_after_the_request_is_502_reset_at_read_head() {
    logs::capture();
    let mock = MockUpstream::builder().reset().start().await;
    assert_eq!(protected(&mock.url(), "obs-reset").await, 502);
    let cause = explained("obs-reset", 502, "reset", "read head").await;
    assert!(cause.contains("reset"), "{cause}");
}

#[tokio::test]
async fn a_malformed_head_is_502_bad_response() {
    logs::capture();
    let mock = MockUpstream::builder()
        .raw_answer(b"HTTP/1.1 2x0 OK\r\n\r\n")
        .start()
        .await;
    assert_eq!(protected(&mock.url(), "obs-malformed").await, 502);
    let cause = explained("obs-malformed", 502, "bad_response", "read head").await;
    assert!(cause.contains("invalid HTTP status-code"), "{cause}");
}

#[tokio::test]
async fn no_head_within_the_upstream_timeout_is_504_timeout() {
    logs::capture();
    let mock = MockUpstream::builder().silent().start().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(200);
    })
    .await;
    let got = proxy
        .h1()
        .await
        .send(
            get("/protected")
                .with("authorization", "Bearer t0ken-Secret-1")
                .with("x-request-id", "obs-timeout"),
        )
        .await;
    assert_eq!(got.status, 504);
    let cause = explained("obs-timeout", 504, "timeout", "timeout").await;
    assert_eq!(
        cause,
        "central auth service failed: timeout: no response head within 200ms"
    );
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_gets_a_second_access_line() {
    logs::capture();
    let mock = MockUpstream::builder()
        .raw_answer(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n\
              {\"partial\":\"twenty\"}",
        )
        .start()
        .await;
    // The streamed path: coalescing holds a small /protected body whole before answering, so
    // a short one is a 502 there, never a cut (tests/coalesce.rs).
    let proxy = spawn_proxy(&mock.url(), |c| c.shield.protected_coalesce = Toggle::Off).await;
    let mut conn = proxy.raw().await;
    conn.send(
        "GET /protected HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer t\r\nX-Request-Id: obs-cut\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(conn.closed_within(WAIT).await, "the client sees the cut");
    let lines = lines_of("obs-cut", 2).await;
    let (head, cut) = (&lines[0], &lines[1]);
    assert_eq!(head["target"], "access");
    assert_eq!(head["status"], 200);
    assert_eq!(head["bytes"], 1000, "what the head announced");
    assert_eq!(cut["target"], "access");
    assert_eq!(cut["level"], "WARN");
    assert_eq!(cut["status"], 200);
    assert_eq!(cut["bytes_sent"], 20);
    assert_eq!(cut["error"], "closed");
    assert_eq!(cut["step"], "read body");
    assert_eq!(cut["route"], "/protected");
}

#[tokio::test]
async fn requests_cut_at_the_end_of_the_grace_are_logged_and_counted_in_the_warning() {
    logs::capture();
    let mock = MockUpstream::builder()
        .delay_head(Duration::from_secs(5))
        .start()
        .await;
    let mut proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_secs(10);
        c.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    // An idle keep-alive connection: closed at the start of the drain, so not cut.
    let mut idle = proxy.raw().await;
    idle.send("GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(idle.response().await.status, 200);
    let mut busy = proxy.raw().await;
    busy.send(
        "GET /protected HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer t\r\nX-Request-Id: obs-grace\r\n\r\n",
    )
    .await
    .unwrap();
    mock.wait_for_requests(1).await;
    proxy.shutdown();
    proxy.stopped(WAIT).await.unwrap();
    let line = &lines_of("obs-grace", 1).await[0];
    assert_eq!(line["status"], 503);
    assert_eq!(line["error"], "shutdown_cut");
    let warnings: Vec<_> = lines_with("level", "WARN")
        .into_iter()
        .filter(|l| l["message"] == "shutdown grace ran out; cutting the connections still open")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(
        warnings[0]["cut"], 1,
        "the idle connection had already closed"
    );
    assert!(busy.closed_within(WAIT).await);
}

// ---- Trace context ----

const CLIENT_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn trace_context_is_kept_when_valid_and_started_when_absent_or_invalid() {
    logs::capture();
    let mock = MockUpstream::replying(Reply::json(200, "{}")).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut client = proxy.h1().await;
    let send = |id: &str| {
        get("/protected")
            .with("authorization", "Bearer t")
            .with("x-request-id", id)
    };
    client
        .send(
            send("obs-trace-kept")
                .with("traceparent", CLIENT_TRACE)
                .with("tracestate", "k=v"),
        )
        .await;
    client.send(send("obs-trace-new")).await;
    client
        .send(
            send("obs-trace-bad")
                .with("traceparent", "00-xyz-01")
                .with("tracestate", "k=v"),
        )
        .await;
    let upstream = mock.requests();
    assert_eq!(upstream[0].header("traceparent"), Some(CLIENT_TRACE));
    assert_eq!(upstream[0].header("tracestate"), Some("k=v"));
    let line = &lines_of("obs-trace-kept", 1).await[0];
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    let mut started = Vec::new();
    for (recorded, id) in upstream[1..].iter().zip(["obs-trace-new", "obs-trace-bad"]) {
        let traceparent = recorded.header("traceparent").expect("a trace was started");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("00", 32, 16, "00")
        );
        assert!(parts[1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            recorded.header("tracestate"),
            None,
            "no state for a new trace"
        );
        let line = &lines_of(id, 1).await[0];
        assert_eq!(
            line["trace_id"], parts[1],
            "the access line names the trace sent upstream"
        );
        started.push(parts[1].to_owned());
    }
    assert_ne!(started[0], started[1]);
}

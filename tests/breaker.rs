//! Fast-fail while the central service is down, over real sockets: opens, answers at once, probes, closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use auth_proxy::upstream::BreakerState;
use support::{
    get, refused_port, spawn_proxy, within, MockUpstream, Proxy, Received, Reply, WithHeader, H1,
    WAIT,
};

const UNAVAILABLE: &str = r#"{"detail":"Central auth service unavailable"}"#;
const GRANTED: &str = r#"{"message":"Access granted to ada@example.com"}"#;

/// `GET /protected`, each with its own token (no coalescing), and how long it took.
async fn ask(proxy: &Proxy, n: usize) -> (Received, Duration) {
    let started = Instant::now();
    let request = get("/protected").with("authorization", &format!("Bearer t{n}"));
    let got = H1::connect(proxy.addr).await.send(request).await;
    (got, started.elapsed())
}

async fn readyz(proxy: &Proxy) -> Received {
    H1::connect(proxy.addr).await.send(get("/readyz")).await
}

fn fast_503(got: &Received, took: Duration, retry_after: &str) {
    got.assert_json(503, UNAVAILABLE);
    assert_eq!(got.header("retry-after"), Some(retry_after));
    assert!(
        took < Duration::from_millis(100),
        "failed fast, not after {took:?}"
    );
}

#[tokio::test]
async fn refused_connections_open_it_a_probe_closes_it_when_the_service_is_back() {
    let port = refused_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = spawn_proxy(&format!("http://{addr}"), |c| c.shield.breaker_failures = 3).await;
    for n in 0..3 {
        ask(&proxy, n).await.0.assert_detail(502);
    }
    let (got, took) = ask(&proxy, 3).await;
    fast_503(&got, took, "1");
    assert_eq!(proxy.state.upstream.breaker().state, BreakerState::Open);
    let ready = readyz(&proxy).await;
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("breaker open"), "{}", ready.text());

    // The service comes back, slow enough that a probe is still in flight when more arrive.
    let mock = MockUpstream::builder()
        .reply(Reply::json(200, GRANTED))
        .delay_head(Duration::from_millis(300))
        .start_on(addr)
        .await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(proxy.state.upstream.breaker().state, BreakerState::HalfOpen);
    let probe = {
        let addr = proxy.addr;
        let request = get("/protected").with("authorization", "Bearer probe");
        tokio::spawn(async move { H1::connect(addr).await.send(request).await })
    };
    mock.wait_for_requests(1).await;
    let (got, took) = ask(&proxy, 4).await;
    fast_503(&got, took, "1");
    within(WAIT, "the probe", probe)
        .await
        .unwrap()
        .assert_json(200, GRANTED);
    assert_eq!(proxy.state.upstream.breaker().state, BreakerState::Closed);
    ask(&proxy, 5).await.0.assert_json(200, GRANTED);
    assert_eq!(mock.requests().len(), 2, "the probe and the one after it");
    let stats = proxy.state.upstream.breaker();
    assert_eq!((stats.opened, stats.closed, stats.rejected), (1, 1, 2));
    assert_eq!(readyz(&proxy).await.status, 200);
}

#[tokio::test]
async fn a_failed_probe_doubles_the_cool_down() {
    let proxy = spawn_proxy(&format!("http://127.0.0.1:{}", refused_port()), |c| {
        c.shield.breaker_failures = 1;
    })
    .await;
    ask(&proxy, 0).await.0.assert_detail(502);
    let (got, took) = ask(&proxy, 1).await;
    fast_503(&got, took, "1");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    ask(&proxy, 2).await.0.assert_detail(502); // the probe, refused
    let (got, took) = ask(&proxy, 3).await;
    fast_503(&got, took, "2");
}

#[tokio::test]
async fn timeouts_open_it_too() {
    let mock = MockUpstream::builder()
        .delay_head(Duration::from_secs(2))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(150);
        c.shield.breaker_failures = 2;
    })
    .await;
    for n in 0..2 {
        ask(&proxy, n).await.0.assert_detail(504);
    }
    let (got, took) = ask(&proxy, 2).await;
    fast_503(&got, took, "1");
    assert_eq!(mock.requests().len(), 2, "nothing sent while open");
}

#[tokio::test]
async fn answers_of_any_status_never_open_it() {
    let mock = MockUpstream::replying(Reply::json(500, r#"{"detail":"boom"}"#)).await;
    let proxy = spawn_proxy(&mock.url(), |c| c.shield.breaker_failures = 1).await;
    for n in 0..5 {
        ask(&proxy, n)
            .await
            .0
            .assert_json(500, r#"{"detail":"boom"}"#);
    }
    assert_eq!(proxy.state.upstream.breaker().state, BreakerState::Closed);
}

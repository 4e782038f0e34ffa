//! Coalescing over real sockets: concurrent identical /protected and /refresh requests are one upstream call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use auth_proxy::config::Toggle;
use support::{
    get, pattern, post_json, spawn_proxy, within, MockUpstream, RawConn, Received, Reply,
    WithHeader, H1, WAIT,
};
use tokio::task::JoinHandle;

const GRANTED: &str = r#"{"message":"Access granted to ada@example.com"}"#;

/// The central service, answering /protected after `delay` so that requests overlap.
async fn slow_central(delay: Duration) -> MockUpstream {
    let reply = Reply::json(200, GRANTED).header("x-request-id", "the-central-services-id");
    MockUpstream::builder()
        .reply(reply)
        .delay_head(delay)
        .start()
        .await
}

/// `GET /protected` with `token` and request id `id`, on its own connection, in its own task.
fn protected(addr: SocketAddr, token: &str, id: &str) -> JoinHandle<Received> {
    let request = get("/protected")
        .with("authorization", &format!("Bearer {token}"))
        .with("x-request-id", id);
    tokio::spawn(async move { H1::connect(addr).await.send(request).await })
}

fn refresh(addr: SocketAddr, token: &str) -> JoinHandle<Received> {
    let request = post_json("/refresh", &format!(r#"{{"refresh_token":"{token}"}}"#));
    tokio::spawn(async move { H1::connect(addr).await.send(request).await })
}

async fn all(tasks: Vec<JoinHandle<Received>>) -> Vec<Received> {
    let joined = within(WAIT, "every answer", futures_util::future::join_all(tasks)).await;
    joined
        .into_iter()
        .map(|r| r.expect("client task"))
        .collect()
}

/// A leader on `token`, then `more` requests sent once it has reached the central service.
async fn leader_then(
    mock: &MockUpstream,
    addr: SocketAddr,
    token: &str,
    more: usize,
) -> Vec<Received> {
    let mut tasks = vec![protected(addr, token, "id-0")];
    mock.wait_for_requests(1).await;
    for i in 1..=more {
        tasks.push(protected(addr, token, &format!("id-{i}")));
    }
    all(tasks).await
}

#[tokio::test]
async fn concurrent_identical_protected_requests_are_one_upstream_call() {
    let mock = slow_central(Duration::from_millis(300)).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let answers = leader_then(&mock, proxy.addr, "tok-a", 7).await;
    assert_eq!(mock.requests().len(), 1, "one upstream call");
    let mut ids = HashSet::new();
    for got in &answers {
        got.assert_json(200, GRANTED);
        ids.insert(got.header("x-request-id").unwrap().to_owned());
    }
    let expected: HashSet<String> = (0..8).map(|i| format!("id-{i}")).collect();
    assert_eq!(ids, expected, "each caller gets its own X-Request-Id");
    assert_eq!(proxy.state.shield.stats().protected_coalesced, 7);
    // Done: the next request goes up again (coalescing is not a cache).
    all(vec![protected(proxy.addr, "tok-a", "later")]).await;
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn different_tokens_are_not_shared() {
    let mock = slow_central(Duration::from_millis(200)).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let tasks = (0..4)
        .map(|i| protected(proxy.addr, &format!("tok-{i}"), &format!("id-{i}")))
        .collect();
    for got in all(tasks).await {
        got.assert_json(200, GRANTED);
    }
    let sent: HashSet<String> = mock
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = (0..4).map(|i| format!("Bearer tok-{i}")).collect();
    assert_eq!(sent, expected, "each token went up once, as itself");
    assert_eq!(proxy.state.shield.stats().protected_coalesced, 0);
}

#[tokio::test]
async fn large_answers_stream_to_their_caller_and_the_waiters_go_up_themselves() {
    const LARGE: usize = 64 * 1024;
    let mock = MockUpstream::builder()
        .stream(LARGE, 16 * 1024, Duration::ZERO)
        .delay_head(Duration::from_millis(300))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let answers = leader_then(&mock, proxy.addr, "tok-big", 3).await;
    for got in &answers {
        assert_eq!(got.status, 200);
        assert!(got.body == pattern(LARGE), "the whole body, each");
    }
    assert_eq!(
        mock.requests().len(),
        4,
        "the leader's call, then one per waiter"
    );
}

#[tokio::test]
async fn coalescing_off_sends_every_request() {
    let mock = slow_central(Duration::from_millis(300)).await;
    let proxy = spawn_proxy(&mock.url(), |c| c.shield.protected_coalesce = Toggle::Off).await;
    let answers = leader_then(&mock, proxy.addr, "tok-a", 3).await;
    assert!(answers.iter().all(|got| got.status == 200));
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn a_waiter_whose_leader_leaves_takes_over_and_is_answered() {
    let mock = slow_central(Duration::from_millis(400)).await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut leader = RawConn::connect(proxy.addr).await;
    leader
        .send("GET /protected HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer tok-a\r\n\r\n")
        .await
        .unwrap();
    mock.wait_for_requests(1).await;
    let waiter = protected(proxy.addr, "tok-a", "the-waiter");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(leader); // the leader's client hangs up: its upstream call is cancelled
    let got = all(vec![waiter]).await.remove(0);
    got.assert_json(200, GRANTED);
    assert_eq!(got.header("x-request-id"), Some("the-waiter"));
    assert_eq!(mock.requests().len(), 2, "the waiter went up itself");
}

#[tokio::test]
async fn a_leaders_failure_is_every_waiters_and_nothing_hangs() {
    let mock = MockUpstream::builder().silent().start().await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(300);
    })
    .await;
    let started = std::time::Instant::now();
    let answers = leader_then(&mock, proxy.addr, "tok-a", 3).await;
    for got in &answers {
        got.assert_json(
            504,
            r#"{"detail":"Central auth service did not answer in time"}"#,
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "one timeout, shared"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_are_one_call_and_nothing_is_cached() {
    let tokens = r#"{"access_token":"new","token_type":"bearer","refresh_token":"r1"}"#;
    let mock = MockUpstream::builder()
        .reply(Reply::json(200, tokens))
        .delay_head(Duration::from_millis(300))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let mut tasks = vec![refresh(proxy.addr, "r1")];
    mock.wait_for_requests(1).await;
    tasks.extend((0..4).map(|_| refresh(proxy.addr, "r1")));
    tasks.push(refresh(proxy.addr, "r2"));
    for got in all(tasks).await {
        got.assert_json(200, tokens);
    }
    assert_eq!(mock.requests().len(), 2, "one call for r1, one for r2");
    assert_eq!(proxy.state.shield.stats().refresh_coalesced, 4);
    all(vec![refresh(proxy.addr, "r1")]).await;
    assert_eq!(mock.requests().len(), 3, "the answer was not kept");
}

#[tokio::test]
async fn refresh_coalescing_off_sends_every_request() {
    let mock = slow_central(Duration::from_millis(300)).await;
    let proxy = spawn_proxy(&mock.url(), |c| c.shield.refresh_coalesce = Toggle::Off).await;
    let mut tasks = vec![refresh(proxy.addr, "r1")];
    mock.wait_for_requests(1).await;
    tasks.extend((0..3).map(|_| refresh(proxy.addr, "r1")));
    assert!(all(tasks).await.iter().all(|got| got.status == 200));
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn a_shared_answer_whose_body_stalls_is_a_504_not_a_cut_200() {
    // Held whole before anything is answered (to copy it to waiters): a body that stops coming
    // for --upstream-timeout fails the request cleanly, where the streamed path cuts it.
    let mock = MockUpstream::builder()
        .stream(3000, 1000, Duration::from_secs(3))
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.upstream_timeout = Duration::from_millis(300);
    })
    .await;
    let got = within(
        Duration::from_secs(2),
        "the stalled answer",
        protected(proxy.addr, "tok-stall", "id-stall"),
    )
    .await
    .expect("client task");
    assert_eq!(got.status, 504);
    assert_eq!(
        got.body,
        r#"{"detail":"Central auth service did not answer in time"}"#
    );
}

#[tokio::test]
async fn a_shared_answer_shorter_than_its_length_is_a_502() {
    let mock = MockUpstream::builder()
        .raw_answer(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n\
              {\"partial\":\"twenty\"}",
        )
        .start()
        .await;
    let proxy = spawn_proxy(&mock.url(), |_| {}).await;
    let got = protected(proxy.addr, "tok-short", "id-short")
        .await
        .unwrap();
    assert_eq!(got.status, 502);
    assert_eq!(
        got.body,
        r#"{"detail":"Central auth service sent an invalid response"}"#
    );
}

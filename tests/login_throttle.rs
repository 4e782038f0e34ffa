//! Login throttling in memory, over real sockets: exact limits, Retry-After, nothing forwarded
//! past a limit, per-IP limits, X-Forwarded-For behind trusted proxies, 422s free, memory bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use auth_proxy::ratelimit::{parse_rate, Settings};
use auth_proxy::Config;
use support::{logs, post_form, spawn_proxy, MockUpstream, Proxy, WithHeader, H1};

const TOO_MANY: &str = r#"{"detail":"Too Many Requests"}"#;

fn limits(per_user: Option<&str>, per_ip: Option<&str>) -> impl FnOnce(&mut Config) {
    let rate = |r: Option<&str>| r.map(|r| parse_rate(r).unwrap());
    let settings = Settings::memory(rate(per_user), rate(per_ip));
    move |config| config.login_limit = Some(settings)
}

fn login(username: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    post_form("/login", &format!("username={username}&password=pw"))
}

/// Sends `n` logins for `username` and asserts each is the mock's 200.
async fn allowed(client: &mut H1, username: &str, n: usize) {
    for i in 0..n {
        let got = client.send(login(username)).await;
        assert_eq!(
            got.status,
            200,
            "attempt {} of {n} for {username}: {}",
            i + 1,
            got.text()
        );
    }
}

async fn refused(client: &mut H1, username: &str, retry_after: &str) {
    let got = client.send(login(username)).await;
    got.assert_json(429, TOO_MANY);
    assert_eq!(got.header("retry-after"), Some(retry_after));
}

async fn setup(tweak: impl FnOnce(&mut Config)) -> (MockUpstream, Proxy, H1) {
    let mock = MockUpstream::start_default().await;
    let proxy = spawn_proxy(&mock.url(), tweak).await;
    let client = proxy.h1().await;
    (mock, proxy, client)
}

#[tokio::test]
async fn off_by_default_every_login_goes_upstream() {
    let (mock, proxy, mut client) = setup(|_| {}).await;
    assert!(proxy.state.login_limiter.is_none());
    allowed(&mut client, "ada", 30).await;
    assert_eq!(mock.requests().len(), 30);
}

#[tokio::test]
async fn the_burst_passes_then_429_with_retry_after_and_nothing_forwarded() {
    logs::capture();
    let (mock, proxy, mut client) = setup(limits(Some("5/m"), None)).await;
    allowed(&mut client, "ada%40example.com", 5).await;
    let got = client
        .send(login("ada%40example.com").with("x-request-id", "throttled-1"))
        .await;
    got.assert_json(429, TOO_MANY);
    // One attempt comes back every 12 s; a few milliseconds have passed.
    assert_eq!(got.header("retry-after"), Some("12"));
    assert_eq!(mock.requests().len(), 5, "the 6th was not forwarded");
    let line = logs::access_line("throttled-1").await;
    assert_eq!(line["status"], 429);
    assert_eq!(line["error"], "login_rate_limited");
    assert!(line.get("upstream_status").is_none(), "{line}");
    // The same username spelled another way is the same username; another one is not.
    refused(&mut client, "ada@example.com", "12").await;
    allowed(&mut client, "Ada%40example.com", 1).await;
    assert_eq!(mock.requests().len(), 6);
    let limiter = proxy.state.login_limiter.as_ref().unwrap();
    assert_eq!((limiter.throttled_user(), limiter.throttled_ip()), (2, 0));
}

#[tokio::test]
async fn after_the_period_the_burst_is_back() {
    let (mock, _proxy, mut client) = setup(limits(Some("2/s"), None)).await;
    allowed(&mut client, "ada", 2).await;
    refused(&mut client, "ada", "1").await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    allowed(&mut client, "ada", 2).await;
    refused(&mut client, "ada", "1").await;
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn the_ip_limit_spans_usernames() {
    logs::capture();
    let (mock, _proxy, mut client) = setup(limits(Some("5/m"), Some("3/m"))).await;
    for user in ["u1", "u2", "u3"] {
        allowed(&mut client, user, 1).await;
    }
    let got = client
        .send(login("u4").with("x-request-id", "ip-throttled"))
        .await;
    got.assert_json(429, TOO_MANY);
    // The per-IP limit refills one every 20 s.
    assert_eq!(got.header("retry-after"), Some("20"));
    assert_eq!(mock.requests().len(), 3);
    let line = logs::access_line("ip-throttled").await;
    assert_eq!(line["error"], "login_ip_rate_limited");
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let trusting = |config: &mut Config| {
        limits(Some("2/m"), None)(config);
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    };
    let (mock, _proxy, mut client) = setup(trusting).await;
    let from = |xff: &str| login("ada").with("x-forwarded-for", xff);
    for _ in 0..2 {
        assert_eq!(client.send(from("198.51.100.1")).await.status, 200);
    }
    // The same client, whatever it wrote left of the entry our proxy appended.
    let got = client.send(from("203.0.113.9, 198.51.100.1")).await;
    got.assert_json(429, TOO_MANY);
    // A trusted hop in between is skipped; another client has its own budget.
    let got = client.send(from("198.51.100.1, 127.0.0.1")).await;
    got.assert_json(429, TOO_MANY);
    assert_eq!(client.send(from("198.51.100.2")).await.status, 200);
    assert_eq!(mock.requests().len(), 3);

    // From an untrusted peer, X-Forwarded-For changes nothing: the peer is the client.
    let (mock, _proxy, mut client) = setup(limits(Some("2/m"), None)).await;
    for xff in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(client.send(from(xff)).await.status, 200);
    }
    client
        .send(from("198.51.100.3"))
        .await
        .assert_json(429, TOO_MANY);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn an_invalid_login_is_a_422_and_costs_no_attempt() {
    let (mock, _proxy, mut client) = setup(limits(Some("2/m"), Some("2/m"))).await;
    for _ in 0..5 {
        let got = client.send(post_form("/login", "username=ada")).await;
        assert_eq!(got.status, 422, "{}", got.text());
    }
    assert_eq!(mock.requests().len(), 0);
    allowed(&mut client, "ada", 2).await;
    refused(&mut client, "ada", "30").await;
}

#[tokio::test]
async fn a_flood_of_usernames_stays_within_the_key_bound() {
    let bounded = |config: &mut Config| {
        let mut settings = Settings::memory(Some(parse_rate("5/m").unwrap()), None);
        settings.max_keys = 64;
        config.login_limit = Some(settings);
    };
    let (mock, proxy, mut client) = setup(bounded).await;
    for n in 0..1000 {
        allowed(&mut client, &format!("flood{n}"), 1).await;
    }
    assert_eq!(mock.requests().len(), 1000);
    let limiter = proxy.state.login_limiter.as_ref().unwrap();
    let (keys, _) = limiter.memory_keys();
    // 16 shards of 4: every shard is full after a thousand new keys, and none holds more.
    assert_eq!(keys, 64);
    assert_eq!(limiter.memory_evictions(), 1000 - keys as u64);
    // Still limiting: a fresh user is counted as before.
    allowed(&mut client, "ada", 5).await;
    refused(&mut client, "ada", "12").await;
}

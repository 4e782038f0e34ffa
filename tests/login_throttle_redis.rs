//! Login throttling in Redis, against a real redis-server: replicas share one limit, a dead or
//! stopped Redis fails open with a warning, a restarted one limits again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use auth_proxy::ratelimit::{args::RateLimitArgs, Settings};
use auth_proxy::Config;
use clap::Parser;
use support::redis::RedisServer;
use support::{logs, post_form, spawn_proxy, within, MockUpstream, Proxy, WithHeader, H1, WAIT};

const TOO_MANY: &str = r#"{"detail":"Too Many Requests"}"#;

/// Settings as the flags make them, so the test goes through the same parsing as the binary.
fn settings(args: &[&str]) -> Settings {
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        limit: RateLimitArgs,
    }
    let args = std::iter::once("t").chain(args.iter().copied());
    Flags::try_parse_from(args)
        .unwrap()
        .limit
        .settings()
        .unwrap()
        .unwrap()
}

async fn proxy(mock: &MockUpstream, args: &[&str]) -> Proxy {
    let settings = settings(args);
    let proxy = spawn_proxy(&mock.url(), move |config: &mut Config| {
        config.login_limit = Some(settings);
    })
    .await;
    connected(&proxy).await;
    proxy
}

/// Waits until the proxy's limiter holds a Redis connection.
async fn connected(proxy: &Proxy) {
    let limiter = proxy.state.login_limiter.as_ref().unwrap();
    within(WAIT, "the proxy connecting to Redis", async {
        while !limiter.redis_connected() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

fn login(username: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    post_form("/login", &format!("username={username}&password=pw"))
}

async fn status(client: &mut H1, username: &str) -> u16 {
    client.send(login(username)).await.status.as_u16()
}

#[tokio::test]
async fn two_proxies_sharing_one_redis_enforce_one_limit() {
    let redis = RedisServer::start();
    let mock = MockUpstream::start_default().await;
    let url = redis.url();
    let args = [
        "--login-rate-limit",
        "4/m",
        "--login-rate-limit-ip",
        "6/m",
        "--rate-limit-redis",
        &url,
        "--rate-limit-key",
        "a shared secret key",
    ];
    let (a, b) = (proxy(&mock, &args).await, proxy(&mock, &args).await);
    let (mut to_a, mut to_b) = (a.h1().await, b.h1().await);
    for _ in 0..2 {
        assert_eq!(status(&mut to_a, "ada%40example.com").await, 200);
        assert_eq!(status(&mut to_b, "ada%40example.com").await, 200);
    }
    for client in [&mut to_a, &mut to_b] {
        let got = client.send(login("ada%40example.com")).await;
        got.assert_json(429, TOO_MANY);
        // One attempt comes back every 15 s.
        assert_eq!(got.header("retry-after"), Some("15"));
    }
    assert_eq!(mock.requests().len(), 4);
    // The per-IP limit is shared too: 4 counted (the refused ones stopped at the user limit).
    assert_eq!(status(&mut to_a, "bob").await, 200);
    assert_eq!(status(&mut to_b, "eve").await, 200);
    let got = to_a.send(login("mallory")).await;
    got.assert_json(429, TOO_MANY);
    assert_eq!(got.header("retry-after"), Some("10"));
    assert_eq!(mock.requests().len(), 6);
    // Redis holds hashes, never a username or an address.
    let keys = redis.command(&["KEYS", "*"]);
    assert!(
        keys.starts_with("*5\r\n"),
        "4 user keys and 1 ip key: {keys:?}"
    );
    assert_eq!(keys.matches("auth-proxy:login:u:").count(), 4, "{keys:?}");
    assert_eq!(keys.matches("auth-proxy:login:ip:").count(), 1, "{keys:?}");
    for secret in ["ada", "bob", "127.0.0.1"] {
        assert!(!keys.contains(secret), "{secret} in {keys:?}");
    }
    let limiter = a.state.login_limiter.as_ref().unwrap();
    assert_eq!((limiter.throttled_user(), limiter.throttled_ip()), (1, 1));
    assert_eq!(limiter.redis_failures(), 0);
}

/// The warning a proxy writes when the Redis on `port` fails it.
fn warnings_for(port: u16) -> usize {
    let redis = format!("127.0.0.1:{port}");
    logs::lines()
        .iter()
        .filter(|l| l["target"] == "ratelimit" && l["level"] == "WARN" && l["redis"] == redis)
        .count()
}

#[tokio::test]
async fn a_killed_redis_fails_open_and_a_restarted_one_limits_again() {
    logs::capture();
    let mut redis = RedisServer::start();
    let mock = MockUpstream::start_default().await;
    let url = redis.url();
    let proxy = proxy(
        &mock,
        &["--login-rate-limit", "2/m", "--rate-limit-redis", &url],
    )
    .await;
    let mut client = proxy.h1().await;
    assert_eq!(status(&mut client, "ada").await, 200);
    assert_eq!(status(&mut client, "ada").await, 200);
    client.send(login("ada")).await.assert_json(429, TOO_MANY);
    assert_eq!(mock.requests().len(), 2);

    redis.kill();
    for _ in 0..3 {
        assert_eq!(status(&mut client, "ada").await, 200, "fail open");
    }
    assert_eq!(mock.requests().len(), 5);
    let limiter = proxy.state.login_limiter.as_ref().unwrap();
    assert_eq!(limiter.redis_failures(), 3);
    // One warning for the three failures (at most one per 10 s).
    assert_eq!(warnings_for(redis.port), 1);
    let warning = logs::lines()
        .into_iter()
        .find(|l| l["level"] == "WARN" && l["redis"] == format!("127.0.0.1:{}", redis.port))
        .unwrap();
    assert!(
        warning["message"].as_str().unwrap().contains("fail open"),
        "{warning}"
    );
    assert!(!warning.to_string().contains("ada"), "{warning}");

    redis.restart();
    connected(&proxy).await;
    // A fresh Redis: a fresh count.
    assert_eq!(status(&mut client, "ada").await, 200);
    assert_eq!(status(&mut client, "ada").await, 200);
    client.send(login("ada")).await.assert_json(429, TOO_MANY);
    assert_eq!(mock.requests().len(), 7);
    assert_eq!(limiter.redis_failures(), 3);
}

#[tokio::test]
async fn a_redis_that_does_not_answer_fails_open_after_the_timeout() {
    let redis = RedisServer::start();
    let mock = MockUpstream::start_default().await;
    let url = redis.url();
    let args = [
        "--login-rate-limit",
        "1/m",
        "--rate-limit-redis",
        &url,
        "--rate-limit-redis-timeout",
        "100ms",
    ];
    let proxy = proxy(&mock, &args).await;
    let mut client = proxy.h1().await;
    assert_eq!(status(&mut client, "ada").await, 200);
    client.send(login("ada")).await.assert_json(429, TOO_MANY);

    redis.signal("-STOP");
    let started = Instant::now();
    let got = client
        .send(login("ada").with("x-request-id", "slow-redis"))
        .await;
    let took = started.elapsed();
    redis.signal("-CONT");
    assert_eq!(got.status, 200, "fail open: {}", got.text());
    assert!(
        took >= Duration::from_millis(100),
        "waited for Redis: {took:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "but not much longer: {took:?}"
    );
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(
        proxy.state.login_limiter.as_ref().unwrap().redis_failures(),
        1
    );
    // Redis answers again on the same connection: limiting resumes.
    client.send(login("ada")).await.assert_json(429, TOO_MANY);
}

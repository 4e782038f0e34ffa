//! The opt-in /protected micro-cache over real sockets: TTLs, the JWT's exp, 401s, keys per token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use support::{get, spawn_proxy, MockUpstream, Proxy, Received, Reply, WithHeader, H1};

const GRANTED: &str = r#"{"message":"Access granted to ada@example.com"}"#;
const INVALID: &str = r#"{"detail":"Invalid token"}"#;

async fn ask(proxy: &Proxy, token: &str, id: &str) -> Received {
    let request = get("/protected")
        .with("authorization", &format!("Bearer {token}"))
        .with("x-request-id", id);
    H1::connect(proxy.addr).await.send(request).await
}

/// An unsigned JWT-shaped token whose payload says `exp`.
fn jwt_expiring_at(exp: u64) -> String {
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"ada@example.com","exp":{exp}}}"#));
    format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.c2lnbmF0dXJl")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_cached_answer_is_served_until_its_ttl_with_its_own_request_id() {
    let mock = MockUpstream::replying(Reply::json(200, GRANTED)).await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.shield.protected_cache_ttl = Duration::from_millis(600);
    })
    .await;
    ask(&proxy, "tok-a", "first")
        .await
        .assert_json(200, GRANTED);
    let hit = ask(&proxy, "tok-a", "second").await;
    hit.assert_json(200, GRANTED);
    assert_eq!(hit.header("x-request-id"), Some("second"));
    assert_eq!(mock.requests().len(), 1, "the second was a hit");
    ask(&proxy, "tok-b", "other")
        .await
        .assert_json(200, GRANTED);
    assert_eq!(mock.requests().len(), 2, "another token is another entry");
    let stats = proxy.state.shield.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (1, 2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    ask(&proxy, "tok-a", "third")
        .await
        .assert_json(200, GRANTED);
    assert_eq!(mock.requests().len(), 3, "expired: asked again");
}

#[tokio::test]
async fn a_jwt_exp_shortens_the_ttl_and_an_expired_one_is_never_cached() {
    let mock = MockUpstream::replying(Reply::json(200, GRANTED)).await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.shield.protected_cache_ttl = Duration::from_secs(60);
    })
    .await;
    // exp is whole seconds: this one is at most 2 s away.
    let soon = jwt_expiring_at(now_secs() + 2);
    ask(&proxy, &soon, "a").await.assert_json(200, GRANTED);
    ask(&proxy, &soon, "b").await.assert_json(200, GRANTED);
    assert_eq!(mock.requests().len(), 1, "cached while exp is ahead");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    ask(&proxy, &soon, "c").await.assert_json(200, GRANTED);
    assert_eq!(
        mock.requests().len(),
        2,
        "not served past exp, though the TTL is 60s"
    );

    let past = jwt_expiring_at(now_secs() - 1);
    ask(&proxy, &past, "d").await;
    ask(&proxy, &past, "e").await;
    assert_eq!(
        mock.requests().len(),
        4,
        "an expired token's answer is not kept"
    );
}

#[tokio::test]
async fn a_401_is_cached_for_the_negative_ttl_only() {
    let mock = MockUpstream::replying(Reply::json(401, INVALID)).await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.shield.protected_cache_ttl = Duration::from_secs(60);
        c.shield.protected_cache_negative_ttl = Duration::from_millis(300);
    })
    .await;
    ask(&proxy, "bad", "a").await.assert_json(401, INVALID);
    ask(&proxy, "bad", "b").await.assert_json(401, INVALID);
    assert_eq!(mock.requests().len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    ask(&proxy, "bad", "c").await.assert_json(401, INVALID);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn other_statuses_and_cookies_are_never_cached() {
    let mock = MockUpstream::replying(
        Reply::json(200, GRANTED).header("set-cookie", "session=abc; HttpOnly"),
    )
    .await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.shield.protected_cache_ttl = Duration::from_secs(60);
    })
    .await;
    ask(&proxy, "tok", "a").await;
    ask(&proxy, "tok", "b").await;
    assert_eq!(
        mock.requests().len(),
        2,
        "an answer that sets a cookie is not kept"
    );

    let mock = MockUpstream::replying(Reply::json(500, r#"{"detail":"boom"}"#)).await;
    let proxy = spawn_proxy(&mock.url(), |c| {
        c.shield.protected_cache_ttl = Duration::from_secs(60);
    })
    .await;
    ask(&proxy, "tok", "a").await;
    ask(&proxy, "tok", "b").await;
    assert_eq!(mock.requests().len(), 2, "a 500 is not kept");
}

//! Unit tests of rate syntax, flag validation, Retry-After rounding and the in-memory limiter.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use clap::Parser;

use super::memory::MemoryLimiter;
use super::*;

fn rate(count: u32, period: Duration) -> Rate {
    Rate {
        count: NonZeroU32::new(count).unwrap(),
        period,
    }
}

#[test]
fn rates_parse_with_a_unit_or_a_duration() {
    assert_eq!(parse_rate("10/m"), Ok(rate(10, Duration::from_secs(60))));
    assert_eq!(parse_rate("5/s"), Ok(rate(5, Duration::from_secs(1))));
    assert_eq!(
        parse_rate("100/h"),
        Ok(rate(100, Duration::from_secs(3600)))
    );
    assert_eq!(parse_rate("20/15m"), Ok(rate(20, Duration::from_secs(900))));
    assert_eq!(
        parse_rate("3/500ms"),
        Ok(rate(3, Duration::from_millis(500)))
    );
    for bad in [
        "10", "0/m", "-1/m", "x/m", "10/", "10/d", "10/5", "2000/1ms", "1.5/s",
    ] {
        assert!(parse_rate(bad).is_err(), "{bad} should be rejected");
    }
    assert_eq!(
        rate(10, Duration::from_secs(60)).interval(),
        Duration::from_secs(6)
    );
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    limit: RateLimitArgs,
}

fn settings(args: &[&str]) -> Result<Option<Settings>, String> {
    let flags = Flags::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    flags.limit.settings()
}

#[test]
fn off_by_default_and_redis_needs_a_rate() {
    assert!(settings(&[]).unwrap().is_none());
    let err = settings(&["--rate-limit-redis", "redis://127.0.0.1:6379/0"]).unwrap_err();
    assert!(err.contains("--login-rate-limit"), "{err}");
}

#[test]
fn flags_make_settings() {
    let s = settings(&[
        "--login-rate-limit",
        "10/m",
        "--login-rate-limit-ip",
        "100/m",
        "--rate-limit-redis",
        "redis://127.0.0.1:6379/2",
        "--rate-limit-key",
        "0123456789abcdef",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(s.per_user, Some(rate(10, Duration::from_secs(60))));
    assert_eq!(s.per_ip, Some(rate(100, Duration::from_secs(60))));
    assert_eq!(s.max_keys, args::DEFAULT_MAX_KEYS);
    let redis = s.redis.unwrap();
    assert_eq!(redis.timeout, Duration::from_millis(50));
    assert_eq!(redis.key.0, b"0123456789abcdef");
    assert_eq!(format!("{:?}", redis.key), "<redacted>");
}

#[test]
fn bad_redis_flags_are_refused() {
    let with = |extra: &[&str]| {
        let mut args = vec!["--login-rate-limit", "1/s"];
        args.extend_from_slice(extra);
        settings(&args)
    };
    assert!(with(&["--rate-limit-redis", "http://127.0.0.1:6379"]).is_err());
    assert!(with(&[
        "--rate-limit-redis",
        "redis://127.0.0.1:6379/0",
        "--rate-limit-key",
        "short"
    ])
    .is_err());
    assert!(with(&["--login-rate-limit-max-keys", "0"]).is_err());
}

#[test]
fn redis_url_debug_hides_the_password() {
    let url = args::parse_redis_url("redis://:hunter2hunter2@127.0.0.1:6379/0").unwrap();
    assert_eq!(format!("{url:?}"), "redis://<credentials>@127.0.0.1:6379/0");
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    let t = |d| Throttled {
        retry_after: d,
        limit: Limit::User,
    };
    assert_eq!(t(Duration::ZERO).retry_after_secs(), 1);
    assert_eq!(t(Duration::from_millis(200)).retry_after_secs(), 1);
    assert_eq!(t(Duration::from_secs(6)).retry_after_secs(), 6);
    assert_eq!(t(Duration::from_millis(6001)).retry_after_secs(), 7);
}

fn ip(text: &str) -> ClientKey {
    ClientKey::new(text.parse::<IpAddr>().unwrap())
}

#[test]
fn memory_allows_the_burst_then_refuses_with_the_wait() {
    let limiter = MemoryLimiter::new(Some(rate(3, Duration::from_secs(60))), None, 1000);
    for _ in 0..3 {
        assert_eq!(limiter.check(ip("192.0.2.1"), b"ada"), Ok(()));
    }
    let refused = limiter.check(ip("192.0.2.1"), b"ada").unwrap_err();
    assert_eq!(refused.limit, Limit::User);
    // One attempt comes back every 20 s.
    assert!(
        refused.retry_after <= Duration::from_secs(20),
        "{refused:?}"
    );
    assert!(refused.retry_after > Duration::from_secs(19), "{refused:?}");
    assert_eq!(refused.retry_after_secs(), 20);
    // Another username, another client: their own budgets.
    assert_eq!(limiter.check(ip("192.0.2.1"), b"bob"), Ok(()));
    assert_eq!(limiter.check(ip("192.0.2.2"), b"ada"), Ok(()));
    assert_eq!(limiter.keys(), (3, 0));
}

#[test]
fn memory_per_ip_limit_spans_usernames() {
    let limiter = MemoryLimiter::new(
        Some(rate(2, Duration::from_secs(60))),
        Some(rate(3, Duration::from_secs(60))),
        1000,
    );
    for user in ["a", "b", "c"] {
        assert_eq!(limiter.check(ip("192.0.2.1"), user.as_bytes()), Ok(()));
    }
    let refused = limiter.check(ip("192.0.2.1"), b"d").unwrap_err();
    assert_eq!(refused.limit, Limit::Ip);
    assert_eq!(limiter.check(ip("192.0.2.9"), b"d"), Ok(()));
}

#[test]
fn memory_store_stays_bounded_under_a_username_flood() {
    let limiter = MemoryLimiter::new(Some(rate(5, Duration::from_secs(60))), None, 500);
    for n in 0..20_000u32 {
        let _ = limiter.check(ip("192.0.2.1"), n.to_string().as_bytes());
    }
    let (user_keys, _) = limiter.keys();
    assert!(user_keys <= 500, "{user_keys} keys");
    assert_eq!(limiter.evicted(), 20_000 - user_keys as u64);
}

//! A JWT's `exp`, read without verifying it: it may only shorten how long an answer is cached.
//!
//! The proxy holds no key and trusts nothing here: a forged `exp` can only make the cache keep
//! an answer for less time than `--protected-cache-ttl`, never longer, and grants nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Payloads past this are not decoded (a token is at most a header's 16 KiB anyway).
const MAX_PAYLOAD: usize = 8 * 1024;

#[derive(serde::Deserialize)]
struct Claims {
    exp: Option<f64>,
}

/// How long `token` has left by its `exp` claim: `Some(ZERO)` once past it, `None` when it is
/// not a JWT or says nothing about expiry.
pub fn remaining(token: &str, now: SystemTime) -> Option<Duration> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > MAX_PAYLOAD {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<Claims>(&json).ok()?.exp?;
    if !exp.is_finite() {
        return None;
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    Some(Duration::try_from_secs_f64((exp - now).max(0.0)).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn exp_gives_the_time_left() {
        let t = token(r#"{"sub":"ada@example.com","exp":1000}"#);
        assert_eq!(remaining(&t, at(990)), Some(Duration::from_secs(10)));
        assert_eq!(remaining(&t, at(1000)), Some(Duration::ZERO));
        assert_eq!(remaining(&t, at(5000)), Some(Duration::ZERO));
        let fractional = token(r#"{"exp":1000.5}"#);
        assert_eq!(
            remaining(&fractional, at(1000)),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn anything_else_says_nothing() {
        for t in [
            "opaque-token".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            token(r#"{"sub":"x"}"#),
            token(r#"{"exp":"tomorrow"}"#),
            token("not json"),
            "e30.!!!.sig".to_owned(),
        ] {
            assert_eq!(remaining(&t, at(0)), None, "{t}");
        }
    }
}

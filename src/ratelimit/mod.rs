//! Login throttling: counts `POST /login` attempts per (client, username) and per client, in
//! memory or in Redis, and says when a client may try again.
//!
//! The route asks [`LoginLimiter::check`] after validation (a 422 costs nothing) and before
//! forwarding; a refusal becomes a 429 with `Retry-After`. Off unless a rate is configured:
//! `AppState` then holds no limiter and `/login` does no work for it.

pub mod args;
mod keys;
mod memory;
mod redis;
mod store;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use args::{parse_rate, Rate, RateLimitArgs, Settings};
pub use keys::ClientKey;

use memory::MemoryLimiter;
use redis::RedisLimiter;

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--login-rate-limit`: this client and this username.
    User,
    /// `--login-rate-limit-ip`: this client, whatever the username.
    Ip,
}

/// An attempt over a limit, and how long until the next one conforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub limit: Limit,
}

impl Throttled {
    /// `Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3 has no fractions), at
    /// least 1: a client that retries at once is refused again.
    pub fn retry_after_secs(&self) -> u64 {
        let nanos = self.retry_after.as_nanos().div_ceil(1_000_000_000);
        u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
    }
}

enum Store {
    Memory(MemoryLimiter),
    Redis(Box<RedisLimiter>),
}

/// The login limiter of one proxy, and its counters (plain atomics for a metrics exporter).
pub struct LoginLimiter {
    store: Store,
    throttled_user: AtomicU64,
    throttled_ip: AtomicU64,
}

impl LoginLimiter {
    /// In memory, or in Redis with `settings.redis` (no connection is awaited here).
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let store = match &settings.redis {
            Some(redis) => {
                if redis.key.0 == keys::BUILT_IN_KEY {
                    tracing::warn!(
                        target: "ratelimit",
                        "login rate limit: Redis key names use the built-in hash key; set \
                         --rate-limit-key/RATE_LIMIT_KEY (the same on every replica) so that they \
                         cannot be matched against guessed usernames"
                    );
                }
                Store::Redis(Box::new(RedisLimiter::new(
                    settings.per_user,
                    settings.per_ip,
                    redis,
                )?))
            }
            None => Store::Memory(MemoryLimiter::new(
                settings.per_user,
                settings.per_ip,
                settings.max_keys,
            )),
        };
        Ok(LoginLimiter {
            store,
            throttled_user: AtomicU64::new(0),
            throttled_ip: AtomicU64::new(0),
        })
    }

    /// Counts one login attempt by `client` for `username` (the form's bytes as sent upstream).
    pub async fn check(&self, client: IpAddr, username: &[u8]) -> Result<(), Throttled> {
        let client = ClientKey::new(client);
        let verdict = match &self.store {
            Store::Memory(memory) => memory.check(client, username),
            Store::Redis(redis) => redis.check(client, username).await,
        };
        if let Err(throttled) = &verdict {
            let counter = match throttled.limit {
                Limit::User => &self.throttled_user,
                Limit::Ip => &self.throttled_ip,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    /// Attempts refused by `--login-rate-limit` since start.
    pub fn throttled_user(&self) -> u64 {
        self.throttled_user.load(Ordering::Relaxed)
    }

    /// Attempts refused by `--login-rate-limit-ip` since start.
    pub fn throttled_ip(&self) -> u64 {
        self.throttled_ip.load(Ordering::Relaxed)
    }

    /// Attempts let through unchecked because Redis failed or was slow (0 in memory).
    pub fn redis_failures(&self) -> u64 {
        match &self.store {
            Store::Memory(_) => 0,
            Store::Redis(redis) => redis.failures(),
        }
    }

    /// Whether the Redis store has a connection (`false` in memory).
    pub fn redis_connected(&self) -> bool {
        match &self.store {
            Store::Memory(_) => false,
            Store::Redis(redis) => redis.connected(),
        }
    }

    /// Keys held in memory, per-user and per-ip ((0, 0) with Redis).
    pub fn memory_keys(&self) -> (usize, usize) {
        match &self.store {
            Store::Memory(memory) => memory.keys(),
            Store::Redis(_) => (0, 0),
        }
    }

    /// Keys the in-memory stores forgot to stay within `--login-rate-limit-max-keys`.
    pub fn memory_evictions(&self) -> u64 {
        match &self.store {
            Store::Memory(memory) => memory.evicted(),
            Store::Redis(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests;

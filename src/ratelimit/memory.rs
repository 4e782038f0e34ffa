//! The in-memory login limiter: two governor GCRA limiters, per (client, username) and per
//! client, over [`BoundedStore`]s, swept of idle keys every few seconds.

use std::hash::{Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::{Quota, RateLimiter};

use super::args::Rate;
use super::keys::{self, ClientKey};
use super::store::{BoundedStore, Evictions};
use super::{Limit, Throttled};

type Keyed<K> = RateLimiter<K, BoundedStore<K>, MonotonicClock, NoOpMiddleware<Instant>>;

/// How often idle keys (a TAT in the past: the same as no key) are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

pub struct MemoryLimiter {
    per_user: Option<Keyed<u64>>,
    per_ip: Option<Keyed<ClientKey>>,
    hasher: RandomState,
    clock: MonotonicClock,
    born: Instant,
    evicted: Evictions,
    /// Milliseconds after `born` when the next sweep is due.
    next_sweep_ms: AtomicU64,
}

fn keyed<K: Hash + Eq + Clone>(rate: Rate, max_keys: usize, evicted: &Evictions) -> Keyed<K> {
    // `parse_rate` keeps the interval at a microsecond or more: never zero.
    let quota = Quota::with_period(rate.interval())
        .unwrap_or_else(|| Quota::per_second(rate.count))
        .allow_burst(rate.count);
    RateLimiter::new(
        quota,
        BoundedStore::new(max_keys, evicted.clone()),
        MonotonicClock,
    )
}

impl MemoryLimiter {
    pub fn new(per_user: Option<Rate>, per_ip: Option<Rate>, max_keys: usize) -> Self {
        let evicted = Evictions::default();
        MemoryLimiter {
            per_user: per_user.map(|rate| keyed(rate, max_keys, &evicted)),
            per_ip: per_ip.map(|rate| keyed(rate, max_keys, &evicted)),
            evicted,
            hasher: RandomState::new(),
            clock: MonotonicClock,
            born: Instant::now(),
            next_sweep_ms: AtomicU64::new(millis(SWEEP_EVERY)),
        }
    }

    /// Counts one attempt: the (client, username) limit first, then the client's. An attempt
    /// the client's limit refuses has still used its (client, username) allowance.
    pub fn check(&self, client: ClientKey, username: &[u8]) -> Result<(), Throttled> {
        self.sweep_if_due();
        if let Some(limiter) = &self.per_user {
            let key = keys::memory_key(&self.hasher, client, username);
            limiter.check_key(&key).map_err(|not_until| Throttled {
                retry_after: not_until.wait_time_from(self.clock.now()),
                limit: Limit::User,
            })?;
        }
        if let Some(limiter) = &self.per_ip {
            limiter.check_key(&client).map_err(|not_until| Throttled {
                retry_after: not_until.wait_time_from(self.clock.now()),
                limit: Limit::Ip,
            })?;
        }
        Ok(())
    }

    /// Keys held: (per user, per ip).
    pub fn keys(&self) -> (usize, usize) {
        (
            self.per_user.as_ref().map_or(0, RateLimiter::len),
            self.per_ip.as_ref().map_or(0, RateLimiter::len),
        )
    }

    /// Keys forgotten to stay within the bound (idle ones swept out not counted).
    pub fn evicted(&self) -> u64 {
        self.evicted.count()
    }

    /// One caller in `SWEEP_EVERY` drops the idle keys (a lock per shard, in turn).
    fn sweep_if_due(&self) {
        let now = millis(self.born.elapsed());
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .next_sweep_ms
                .compare_exchange(
                    due,
                    now + millis(SWEEP_EVERY),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        if let Some(limiter) = &self.per_user {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

//! The counters of what guards the central service — coalescing, the micro-cache, the breaker, login throttling — read at scrape time from the layers that keep them.
//!
//! Always exported, zero for a feature that is off, so that a dashboard or an alert finds its
//! series whatever the flags; only the store-specific login series (memory keys, Redis health)
//! appear just for the store in use, so an in-memory limiter never looks like a Redis that is down.

use super::live::Now;
use crate::ratelimit::LoginLimiter;
use crate::state::AppState;
use crate::upstream::BreakerState;

pub fn encode(now: &mut Now, state: &AppState) {
    shield(now, state);
    breaker(now, state);
    login(now, state);
}

fn shield(now: &mut Now, state: &AppState) {
    let shielded = state.shield.stats();
    now.counters(
        "auth_proxy_coalesced",
        "Requests answered by another request's upstream call (its answer or its failure), by route",
        "route",
        &[
            ("/protected", shielded.protected_coalesced),
            ("/refresh", shielded.refresh_coalesced),
        ],
    );
    now.counter(
        "auth_proxy_cache_hits",
        "GET /protected answered from the micro-cache (--protected-cache-ttl)",
        shielded.cache_hits,
    );
    now.counter(
        "auth_proxy_cache_misses",
        "GET /protected looked up in the micro-cache and not found",
        shielded.cache_misses,
    );
    now.gauge(
        "auth_proxy_cache_entries",
        "Answers held by the micro-cache (moka's count, updated as its housekeeping runs)",
        super::live::signed(shielded.cache_entries),
    );
    now.gauge(
        "auth_proxy_cache_bytes",
        "Weighed bytes held by the micro-cache: bodies and headers plus 512 per entry (bounded by --protected-cache-max-bytes)",
        super::live::signed(shielded.cache_bytes),
    );
}

fn breaker(now: &mut Now, state: &AppState) {
    let breaker = state.upstream.breaker();
    // A state set (one series per state, 1 for the current one), as OpenMetrics' StateSet.
    let current = |s| u64::from(breaker.state == s);
    now.gauges(
        "auth_proxy_breaker_state",
        "The breaker in front of the central service: 1 for its current state (closed, open, half_open)",
        "state",
        &[
            ("closed", current(BreakerState::Closed)),
            ("open", current(BreakerState::Open)),
            ("half_open", current(BreakerState::HalfOpen)),
        ],
    );
    now.counter(
        "auth_proxy_breaker_opened",
        "Times the breaker opened (--breaker-failures consecutive failures, or a failed probe)",
        breaker.opened,
    );
    now.counter(
        "auth_proxy_breaker_closed",
        "Times a probe's answer closed the breaker",
        breaker.closed,
    );
    now.counter(
        "auth_proxy_breaker_rejected",
        "Requests answered 503 at once, without being sent, while the breaker was open",
        breaker.rejected,
    );
}

fn login(now: &mut Now, state: &AppState) {
    let limiter = state.login_limiter.as_deref();
    now.counters(
        "auth_proxy_login_throttled",
        "POST /login answered 429 and not forwarded, by the limit hit: user (--login-rate-limit) or ip (--login-rate-limit-ip)",
        "scope",
        &[
            ("user", limiter.map_or(0, LoginLimiter::throttled_user)),
            ("ip", limiter.map_or(0, LoginLimiter::throttled_ip)),
        ],
    );
    let Some(limiter) = limiter else {
        return;
    };
    let in_redis = state
        .config
        .login_limit
        .as_ref()
        .is_some_and(|settings| settings.redis.is_some());
    if in_redis {
        now.counter(
            "auth_proxy_rate_limit_redis_failures",
            "Logins let through unchecked because Redis failed or answered after --rate-limit-redis-timeout (fail open)",
            limiter.redis_failures(),
        );
        now.gauge(
            "auth_proxy_rate_limit_redis_connected",
            "1 while the login limiter has a connection to Redis",
            i64::from(limiter.redis_connected()),
        );
    } else {
        let (user, ip) = limiter.memory_keys();
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        now.gauges(
            "auth_proxy_rate_limit_memory_keys",
            "Keys the in-memory login limiters hold, by scope (each at most --login-rate-limit-max-keys)",
            "scope",
            &[("user", as_u64(user)), ("ip", as_u64(ip))],
        );
        now.counter(
            "auth_proxy_rate_limit_memory_evictions",
            "Keys the in-memory login limiters forgot to stay within --login-rate-limit-max-keys",
            limiter.memory_evictions(),
        );
    }
}

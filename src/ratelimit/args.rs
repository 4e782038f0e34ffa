//! The login-throttling flags (`--login-rate-limit*`, `--rate-limit-*`) and the settings they make.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::config::parse_duration;

/// Most keys each in-memory limiter holds by default (a key is ~40 bytes with the map's own
/// overhead: a few MiB at most, whatever a flood of usernames sends).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Login throttling (off unless a rate is given).
#[derive(clap::Args, Debug, Clone)]
pub struct RateLimitArgs {
    /// Most POST /login attempts per (client IP, username as sent), burst included: N/s, N/m,
    /// N/h or N/DURATION (10/m, 20/15m). Default off: behind a load balancer every client has
    /// its address unless --trusted-proxies names it.
    #[arg(long, env = "LOGIN_RATE_LIMIT", value_parser = parse_rate)]
    pub login_rate_limit: Option<Rate>,

    /// Most POST /login attempts per client IP, whatever the username (same syntax; set it
    /// looser than --login-rate-limit). Default off.
    #[arg(long, env = "LOGIN_RATE_LIMIT_IP", value_parser = parse_rate)]
    pub login_rate_limit_ip: Option<Rate>,

    /// Most keys each in-memory login limiter holds; past it the least recently throttled
    /// quarter of a shard is forgotten.
    #[arg(long, env = "LOGIN_RATE_LIMIT_MAX_KEYS", default_value_t = DEFAULT_MAX_KEYS, value_parser = parse_max_keys)]
    pub login_rate_limit_max_keys: usize,

    /// Keep the login counters in this Redis (redis://[:PASSWORD@]HOST:PORT/N) so that every
    /// replica enforces one shared limit; default: in this process's memory.
    #[arg(long, env = "RATE_LIMIT_REDIS", value_parser = parse_redis_url)]
    pub rate_limit_redis: Option<RedisUrl>,

    /// Longest one Redis check may take; past it, or on any Redis error, the login goes through
    /// unchecked (fail open) with a warning.
    #[arg(long, env = "RATE_LIMIT_REDIS_TIMEOUT", default_value = "50ms", value_parser = parse_duration)]
    pub rate_limit_redis_timeout: Duration,

    /// Secret (16+ bytes, the same on every replica) keying the hash that names the Redis keys;
    /// default: a built-in key (names are then not plain usernames, but can be guessed).
    #[arg(long, env = "RATE_LIMIT_KEY", hide_env_values = true)]
    pub rate_limit_key: Option<String>,
}

/// `count` attempts per `period`, all of them available at once (burst = count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    /// The GCRA emission interval: one attempt comes back every `period / count`.
    pub fn interval(&self) -> Duration {
        self.period / self.count.get()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.count, self.period)
    }
}

/// Parses `N/s`, `N/m`, `N/h` or `N/DURATION` (`20/15m`).
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let text = text.trim();
    let (count, per) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not a rate (write e.g. 10/m, 5/s, 20/15m)"))?;
    let count: NonZeroU32 = count
        .parse()
        .map_err(|_| format!("`{text}`: the count must be a whole number from 1"))?;
    let period = match per {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => parse_duration(other).map_err(|e| format!("`{text}`: {e}"))?,
    };
    // The emission interval must be at least a microsecond (the Redis script's unit).
    if period.as_micros() < u128::from(count.get()) {
        return Err(format!(
            "`{text}` is faster than one attempt per microsecond"
        ));
    }
    Ok(Rate { count, period })
}

fn parse_max_keys(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number from 1")),
    }
}

/// A `redis://` URL; its `Debug` hides a password.
#[derive(Clone)]
pub struct RedisUrl(pub String);

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('@') {
            Some((_, host)) => write!(f, "redis://<credentials>@{host}"),
            None => f.write_str(&self.0),
        }
    }
}

/// Parses `--rate-limit-redis`: `redis://` only (no TLS build of the client here).
pub fn parse_redis_url(text: &str) -> Result<RedisUrl, String> {
    let text = text.trim();
    if !text.starts_with("redis://") {
        return Err("must be a redis://HOST:PORT/N URL".to_owned());
    }
    redis::Client::open(text).map_err(|e| format!("not a usable Redis URL: {e}"))?;
    Ok(RedisUrl(text.to_owned()))
}

/// Where the counters live and how Redis is used.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: RedisUrl,
    pub timeout: Duration,
    /// HMAC key naming the Redis keys (see `keys`).
    pub key: HashKey,
}

/// A secret key; never printed.
#[derive(Clone)]
pub struct HashKey(pub Vec<u8>);

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the proxy throttles logins with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub per_user: Option<Rate>,
    pub per_ip: Option<Rate>,
    pub max_keys: usize,
    /// `None`: counters in this process's memory.
    pub redis: Option<RedisSettings>,
}

impl Settings {
    /// In-memory throttling at these rates, with the default key bound.
    pub fn memory(per_user: Option<Rate>, per_ip: Option<Rate>) -> Self {
        Settings {
            per_user,
            per_ip,
            max_keys: DEFAULT_MAX_KEYS,
            redis: None,
        }
    }
}

/// Shortest `--rate-limit-key` accepted, in bytes.
const MIN_KEY_LEN: usize = 16;

impl RateLimitArgs {
    /// The settings, or `None` when no rate is given (throttling off).
    pub fn settings(&self) -> Result<Option<Settings>, String> {
        if self.login_rate_limit.is_none() && self.login_rate_limit_ip.is_none() {
            if self.rate_limit_redis.is_some() {
                return Err("--rate-limit-redis/RATE_LIMIT_REDIS needs --login-rate-limit or --login-rate-limit-ip".to_owned());
            }
            return Ok(None);
        }
        let key = match &self.rate_limit_key {
            Some(key) if key.len() < MIN_KEY_LEN => {
                return Err(format!(
                    "--rate-limit-key/RATE_LIMIT_KEY must be at least {MIN_KEY_LEN} bytes"
                ))
            }
            Some(key) => HashKey(key.as_bytes().to_vec()),
            None => HashKey(super::keys::BUILT_IN_KEY.to_vec()),
        };
        let redis = self.rate_limit_redis.clone().map(|url| RedisSettings {
            url,
            timeout: self.rate_limit_redis_timeout,
            key,
        });
        Ok(Some(Settings {
            per_user: self.login_rate_limit,
            per_ip: self.login_rate_limit_ip,
            max_keys: self.login_rate_limit_max_keys,
            redis,
        }))
    }
}

//! The Redis login limiter: one atomic GCRA script per attempt over a multiplexed connection,
//! failing open (login allowed, a rate-limited warning, a counter) when Redis is down or slow.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};

use super::args::{Rate, RedisSettings};
use super::keys::{ClientKey, Namer};
use super::{Limit, Throttled};

/// Consecutive timeouts after which the connection is presumed dead (a host that vanished
/// answers nothing: no error ever comes) and dialled again.
const TIMEOUTS_BEFORE_RECONNECT: u32 = 3;
/// Reconnection back-off, first and longest.
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// How long one connection attempt may take (in the background: no request waits for it).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// At most one warning line per this long, however many checks fail.
const WARN_EVERY: Duration = Duration::from_secs(10);

pub struct RedisLimiter {
    client: Client,
    /// `HOST:PORT` for log lines (the URL may hold a password).
    addr: String,
    script: Script,
    namer: Namer,
    /// The script's ARGV: interval (µs) and burst of each limit; interval 0 = off.
    argv: [u64; 4],
    timeout: Duration,
    link: Arc<Link>,
    failures: AtomicU64,
    warn: WarnGate,
}

/// The shared connection, and whether someone is dialling a new one.
#[derive(Default)]
struct Link {
    conn: Mutex<Option<MultiplexedConnection>>,
    reconnecting: AtomicBool,
    timeouts: AtomicU32,
}

impl Link {
    fn get(&self) -> Option<MultiplexedConnection> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, conn: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = conn;
    }
}

fn script_args(rate: Option<Rate>) -> [u64; 2] {
    rate.map_or([0, 0], |rate| {
        let micros = u64::try_from(rate.interval().as_micros()).unwrap_or(u64::MAX);
        [micros.max(1), u64::from(rate.count.get())]
    })
}

impl RedisLimiter {
    /// Opens no connection yet: the first one is dialled in the background at once (inside a
    /// runtime), so start-up never waits for Redis nor fails because it is down.
    pub fn new(
        per_user: Option<Rate>,
        per_ip: Option<Rate>,
        settings: &RedisSettings,
    ) -> Result<Self, String> {
        let client = Client::open(settings.url.0.as_str())
            .map_err(|e| format!("--rate-limit-redis/RATE_LIMIT_REDIS: {e}"))?;
        let [user_interval, user_burst] = script_args(per_user);
        let [ip_interval, ip_burst] = script_args(per_ip);
        let limiter = RedisLimiter {
            addr: client.get_connection_info().addr().to_string(),
            client,
            script: Script::new(include_str!("gcra.lua")),
            namer: Namer::new(&settings.key.0)?,
            argv: [user_interval, user_burst, ip_interval, ip_burst],
            timeout: settings.timeout,
            link: Arc::new(Link::default()),
            failures: AtomicU64::new(0),
            warn: WarnGate::new(),
        };
        limiter.reconnect();
        Ok(limiter)
    }

    /// Counts one attempt in Redis; any failure to get an answer in time allows it.
    pub async fn check(&self, client: ClientKey, username: &[u8]) -> Result<(), Throttled> {
        let Some(mut conn) = self.link.get() else {
            self.reconnect();
            self.fail_open(&"not connected");
            return Ok(());
        };
        let (user_key, ip_key) = self.namer.names(client, username);
        let mut call = self.script.prepare_invoke();
        call.key(user_key).key(ip_key).arg(&self.argv[..]);
        let answer = tokio::time::timeout(self.timeout, call.invoke_async::<(u8, u64)>(&mut conn));
        match answer.await {
            Ok(Ok((refused, wait_micros))) => {
                self.link.timeouts.store(0, Ordering::Relaxed);
                let limit = match refused {
                    0 => return Ok(()),
                    1 => Limit::User,
                    _ => Limit::Ip,
                };
                Err(Throttled {
                    retry_after: Duration::from_micros(wait_micros),
                    limit,
                })
            }
            Ok(Err(e)) => {
                if e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_io_error() {
                    self.link.set(None);
                    self.reconnect();
                }
                self.fail_open(&e);
                Ok(())
            }
            Err(_elapsed) => {
                let timeouts = self.link.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if timeouts >= TIMEOUTS_BEFORE_RECONNECT {
                    self.link.timeouts.store(0, Ordering::Relaxed);
                    self.link.set(None);
                    self.reconnect();
                }
                self.fail_open(&format_args!("no answer within {:?}", self.timeout));
                Ok(())
            }
        }
    }

    /// Checks that went through unchecked because Redis failed (fail open).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether a connection to Redis is established (it may still fail on its next use).
    pub fn connected(&self) -> bool {
        self.link.get().is_some()
    }

    fn fail_open(&self, cause: &dyn std::fmt::Display) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.warn.warn(&self.addr, cause);
    }

    /// Dials Redis in the background until it answers, unless that is already under way.
    fn reconnect(&self) {
        if self.link.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.link.reconnecting.store(false, Ordering::Release);
            return;
        };
        let client = self.client.clone();
        let link = Arc::downgrade(&self.link);
        runtime.spawn(dial(client, link));
    }
}

/// Connects, backing off while Redis refuses; stops once connected or once the limiter is gone.
async fn dial(client: Client, link: Weak<Link>) {
    let _dialling = Dialling(link.clone());
    let config = AsyncConnectionConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT));
    let mut backoff = RECONNECT_MIN;
    loop {
        let attempt = client
            .get_multiplexed_async_connection_with_config(&config)
            .await;
        let Some(shared) = link.upgrade() else { return };
        if let Ok(conn) = attempt {
            shared.set(Some(conn));
            shared.timeouts.store(0, Ordering::Relaxed);
            tracing::info!(target: "ratelimit", "login rate limit: connected to Redis");
            return;
        }
        drop(shared);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Clears `reconnecting` however [`dial`] ends: connected, the limiter gone, or the task
/// dropped with its runtime (with several workers, one that drained first), so that the
/// next failed check dials again instead of finding a dial that will never finish.
struct Dialling(Weak<Link>);

impl Drop for Dialling {
    fn drop(&mut self) {
        if let Some(link) = self.0.upgrade() {
            link.reconnecting.store(false, Ordering::Release);
        }
    }
}

/// Lets one warning through per [`WARN_EVERY`] and counts the ones it held back, so a dead
/// Redis costs a line every few seconds, not one per login.
struct WarnGate {
    born: Instant,
    next_ms: AtomicU64,
    held_back: AtomicU64,
}

impl WarnGate {
    fn new() -> Self {
        WarnGate {
            born: Instant::now(),
            next_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// The cause is a Redis error or a timeout: never a key, a username or the URL.
    fn warn(&self, redis: &str, cause: &dyn std::fmt::Display) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_ms.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        let mine = now >= due
            && self
                .next_ms
                .compare_exchange(due, now + every, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !mine {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let held_back = self.held_back.swap(0, Ordering::Relaxed);
        tracing::warn!(
            target: "ratelimit",
            redis,
            held_back,
            "login rate limit: Redis check failed ({cause}); the login goes through unchecked (fail open)"
        );
    }
}

//! The one pooled, rustls-secured HTTP client to the central service, and how its failures are sorted.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::config::Config;

mod breaker;
mod error;
mod limit;
mod pool;
mod stats;

pub use error::{body_error_kind, find, Chain, Step, UpstreamError, KINDS};
use error::{dial_step, io_kind};
pub use stats::Snapshot;
use stats::{Counters, Retry};

use breaker::{Breaker, Outcome};
pub use breaker::{BreakerStats, State as BreakerState};
use limit::Limit;
pub use pool::{BodyError, BodyStalled, UpstreamBody};
use pool::{ConnectError, Pool, SendError, Sender, Sockets};

/// How long a central-service answer keeps `/readyz` green without a fresh probe.
const ANSWERED_RECENTLY: Duration = Duration::from_secs(5);

impl From<ConnectError> for UpstreamError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Dial(e) if io_kind(&*e) == Some(io::ErrorKind::TimedOut) => {
                UpstreamError::ConnectTimeout(e)
            }
            ConnectError::Dial(e) => UpstreamError::Connect(dial_step(&*e), e),
            ConnectError::Handshake(e) => UpstreamError::Connect(Step::Handshake, Box::new(e)),
        }
    }
}

/// Whether a request written on a *reused* connection failed the way one does when the central
/// service closed that connection while it was idle, racing our write: reset, broken pipe, or
/// EOF before a complete answer. Such a request is sent again once, on a fresh connection.
/// (hyper cannot tell EOF before any answer byte from EOF inside a head; the first is the race
/// this is for, the second a broken service.) A fresh connection that fails is never retried:
/// the service may have acted on the request (registered a user twice).
fn is_stale(e: &hyper::Error) -> bool {
    e.is_incomplete_message()
        || e.is_canceled()
        || matches!(
            io_kind(e),
            Some(
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            )
        )
}

/// HTTP/2 says the service never processed the stream: RST_STREAM(REFUSED_STREAM), or a
/// GOAWAY whose last stream id is below ours (RFC 9113 §6.8, §8.7). Safe to send again.
fn is_unprocessed(e: &hyper::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<h2::Error>())
        .is_some_and(|h| {
            h.reason() == Some(h2::Reason::REFUSED_STREAM) || (h.is_go_away() && h.is_remote())
        })
}

/// Handle to the central service; clone it freely. Clones share the pool; [`Upstream::for_worker`]
/// gives a runtime its own pool and shares everything else.
#[derive(Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
    /// Every worker's pool, for the metrics (read at a scrape, written when a worker starts).
    pools: Arc<std::sync::Mutex<Vec<Arc<Pool>>>>,
    /// `AUTH_URL`'s scheme and authority: what HTTP/2 requests carry.
    target: http::Uri,
    /// `AUTH_URL`'s `Host`, for the readiness probe.
    host: http::HeaderValue,
    timeout: Duration,
    /// `--upstream-max-connections`: requests in flight to the central service.
    limit: Arc<Limit>,
    health: Arc<Health>,
    /// Fast-fail while the central service is down (`--breaker-failures`).
    breaker: Arc<Breaker>,
    counters: Arc<Counters>,
}

/// When the central service last answered, for `/readyz`.
struct Health {
    epoch: Instant,
    last_answer_ms: AtomicU64,
}

impl Upstream {
    /// Builds the process's one pool: bundled web roots plus `--upstream-ca`, ALPN h2 and http/1.1.
    pub fn new(config: &Config) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in &config.upstream_ca {
            roots
                .add(cert.clone())
                .map_err(|e| format!("--upstream-ca/AUTH_CA_FILE: unusable certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(30)));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);

        let target = config.auth_url.origin();
        let max = usize::try_from(config.upstream_max_connections).unwrap_or(usize::MAX);
        let pool = Pool::new(
            connector,
            target.clone(),
            config.pool_idle_timeout,
            Sockets::new(max),
        );
        Ok(Upstream {
            pools: Arc::new(std::sync::Mutex::new(vec![pool.clone()])),
            pool,
            target,
            host: config.auth_url.host.clone(),
            timeout: config.upstream_timeout,
            limit: Limit::new(max),
            health: Arc::new(Health {
                epoch: Instant::now(),
                last_answer_ms: AtomicU64::new(0),
            }),
            breaker: Arc::new(Breaker::new(config.shield.breaker_failures)),
            counters: Arc::default(),
        })
    }

    /// The same central service for another runtime (`--worker-threads`): its own pool of
    /// connections, whose I/O tasks run on that runtime, so a request never waits on another
    /// thread's; the cap, breaker, health and counters stay shared.
    #[must_use]
    pub fn for_worker(&self) -> Upstream {
        let pool = self.pool.empty_like();
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(pool.clone());
        Upstream {
            pool,
            ..self.clone()
        }
    }

    /// Sends the request `build` makes and waits for the response head, within `--upstream-timeout`.
    ///
    /// `build` runs a second time only for the one retry after a stale pooled connection, so the
    /// common path builds the request once and clones nothing. The request's place among those
    /// in flight ([`Limit`]) is held until its answer's body ends. While the [`Breaker`] is
    /// open, nothing is sent: 503 at once.
    pub async fn send(
        &self,
        build: impl Fn() -> Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let pass = self.breaker.pass().map_err(UpstreamError::Unavailable)?;
        let result = self.send_within_limits(build).await;
        let outcome = match &result {
            Ok(_) => Outcome::Answered,
            Err(e) => e.outcome(),
        };
        self.breaker.record(pass, outcome);
        result
    }

    /// The breaker's state and counters.
    pub fn breaker(&self) -> BreakerStats {
        self.breaker.stats()
    }

    async fn send_within_limits(
        &self,
        build: impl Fn() -> Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let permit = self
            .limit
            .acquire(self.timeout)
            .await
            .map_err(|_| UpstreamError::Busy)?;
        let Ok(answered) = tokio::time::timeout(self.timeout, self.exchange(build)).await else {
            // A shared HTTP/2 connection that let a request time out may be dead: the request's
            // own stream reset does not close it, so stop handing it out.
            self.pool.forget_http2();
            return Err(UpstreamError::Timeout(self.timeout));
        };
        let response = answered?;
        self.health.answered();
        Ok(response.map(|body| body.holding(permit, self.timeout)))
    }

    /// The retry policy around one request, which only ever sends again what provably was not
    /// acted on: a request hyper did not write on a *reused* connection goes to the next one
    /// (a fresh connection that takes nothing is a 502); one that HTTP/2 says was never
    /// processed ([`is_unprocessed`]) is rebuilt and sent once more on a fresh connection. A
    /// written request that a stale reused connection lost ([`is_stale`]) may have reached the
    /// central service: only an idempotent one (`GET /protected`, the readiness probe) is sent
    /// again; a `POST` is a 502, as nginx's `proxy_next_upstream` does by default. A replayed
    /// `/refresh` would look like refresh-token reuse, a replayed `/register` race a second client.
    async fn exchange(
        &self,
        build: impl Fn() -> Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut request = build();
        let replayable = request.method().is_idempotent();
        let mut stale_retried = false;
        loop {
            let pooled = if stale_retried {
                None
            } else {
                self.pool.checkout()
            };
            let reused = pooled.is_some();
            let mut sender = if let Some(sender) = pooled {
                sender
            } else {
                let connected = Box::pin(self.pool.connect()).await;
                self.counters.connected(connected.is_ok());
                connected?
            };
            match sender.send(request, &self.target).await {
                Ok(response) => {
                    let lease = self.pool.release(sender, &response);
                    let (head, body) = response.into_parts();
                    return Ok(Response::from_parts(head, UpstreamBody::new(body, lease)));
                }
                Err(SendError::Unsent(unsent, _)) if reused => {
                    if let Sender::Http2(_) = sender {
                        // A shared connection that turns requests away is going away.
                        self.pool.forget_http2();
                    }
                    self.counters.retried(Retry::Unsent);
                    request = unsent;
                }
                Err(SendError::Sent(e))
                    if !stale_retried
                        && (is_unprocessed(&e) || reused && replayable && is_stale(&e)) =>
                {
                    if let Sender::Http2(_) = sender {
                        self.pool.forget_http2();
                    }
                    tracing::debug!("pooled upstream connection was closed; retrying once");
                    let why = if is_unprocessed(&e) {
                        Retry::Refused
                    } else {
                        Retry::Stale
                    };
                    self.counters.retried(why);
                    stale_retried = true;
                    request = build();
                }
                Err(SendError::Unsent(_, e)) => {
                    return Err(UpstreamError::Exchange(Step::WriteRequest, e))
                }
                Err(SendError::Sent(e)) => return Err(UpstreamError::Exchange(Step::ReadHead, e)),
            }
        }
    }

    /// Connections, retries, requests in flight and idle connections, as of now.
    pub fn snapshot(&self) -> Snapshot {
        let (in_flight, waiting) = self.limit.load();
        let (idle_http1, http2) = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|pool| pool.idle_counts())
            .fold((0, false), |(n, h2), (m, more)| (n + m, h2 || more));
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Snapshot {
            in_flight: as_u64(in_flight),
            waiting: as_u64(waiting),
            idle_http1: as_u64(idle_http1),
            http2,
            ..self.counters.snapshot()
        }
    }

    /// Whether the central service answered recently, or answers a `HEAD` of its base URL now.
    pub async fn is_ready(&self, base: &http::Uri, probe_timeout: Duration) -> bool {
        if self.health.answered_within(ANSWERED_RECENTLY) {
            return true;
        }
        let probe = || {
            let mut probe = Request::new(Full::new(Bytes::new()));
            *probe.method_mut() = Method::HEAD;
            *probe.uri_mut() = base.clone();
            probe
                .headers_mut()
                .insert(http::header::HOST, self.host.clone());
            probe
        };
        // A probe takes a place among the requests in flight like any other, so that a flood
        // of /readyz cannot dial the central service past the cap; with none free, requests
        // are in flight and none has been answered for a while: not ready.
        let Some(_permit) = self.limit.try_acquire() else {
            return false;
        };
        let answered = tokio::time::timeout(probe_timeout, self.exchange(probe)).await;
        let ok = matches!(answered, Ok(Ok(_)));
        if ok {
            self.health.answered();
        }
        ok
    }
}

impl Health {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn answered(&self) {
        self.last_answer_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn answered_within(&self, window: Duration) -> bool {
        let last = self.last_answer_ms.load(Ordering::Relaxed);
        let window = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        last != 0 && self.now_ms().saturating_sub(last) <= window
    }
}

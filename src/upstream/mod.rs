//! The one pooled, rustls-secured HTTP client to the central service, and how its failures are sorted.

use std::error::Error as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Config;

mod pool_key;
mod reuse;

pub use pool_key::request_uri;
use pool_key::Dial;
use reuse::{Counting, Uses};

type HttpsClient = Client<Counting<Dial<HttpsConnector<HttpConnector>>>, Full<Bytes>>;

/// How long a central-service answer keeps `/readyz` green without a fresh probe.
const ANSWERED_RECENTLY: Duration = Duration::from_secs(5);

/// Why the central service did not give us a response head.
#[derive(Debug)]
pub enum UpstreamError {
    /// TCP connect did not finish within `--connect-timeout`.
    ConnectTimeout,
    /// No response head within `--upstream-timeout`.
    Timeout,
    /// Refused, unreachable, TLS failure: no connection was made.
    Connect(hyper_util::client::legacy::Error),
    /// A connection was made but the exchange broke (reset, malformed HTTP).
    Exchange(hyper_util::client::legacy::Error),
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::ConnectTimeout | UpstreamError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Connect(_) | UpstreamError::Exchange(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn detail(&self) -> &'static [u8] {
        match self {
            UpstreamError::ConnectTimeout => {
                br#"{"detail":"Central auth service did not accept a connection in time"}"#
            }
            UpstreamError::Timeout => {
                br#"{"detail":"Central auth service did not answer in time"}"#
            }
            UpstreamError::Connect(_) => br#"{"detail":"Central auth service is unreachable"}"#,
            UpstreamError::Exchange(_) => {
                br#"{"detail":"Central auth service sent an invalid response"}"#
            }
        }
    }

    fn from_client(e: hyper_util::client::legacy::Error) -> Self {
        if e.is_connect() {
            if io_kind(&e) == Some(io::ErrorKind::TimedOut) {
                UpstreamError::ConnectTimeout
            } else {
                UpstreamError::Connect(e)
            }
        } else {
            UpstreamError::Exchange(e)
        }
    }

    /// A *reused* connection died before any byte of a response: the central service closed it
    /// while idle, racing our write. Such a request is sent again once, on a fresh connection.
    /// (Requests hyper had not yet written are retried by hyper-util itself.) A fresh
    /// connection that dies is never retried: the service may have acted on the request.
    fn is_stale_connection(&self) -> bool {
        let UpstreamError::Exchange(e) = self else {
            return false;
        };
        if !Uses::was_reused(e.connect_info()) {
            return false;
        }
        let hyper_error = e.source().and_then(|s| s.downcast_ref::<hyper::Error>());
        if hyper_error.is_some_and(|h| h.is_incomplete_message() || h.is_canceled()) {
            return true;
        }
        matches!(
            io_kind(e),
            Some(
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            )
        )
    }
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// Shared handle to the central service; clone it freely (the pool is shared).
#[derive(Clone)]
pub struct Upstream {
    client: HttpsClient,
    /// `AUTH_URL`'s `Host`, for the readiness probe.
    host: http::HeaderValue,
    timeout: Duration,
    health: Arc<Health>,
}

/// When the central service last answered, for `/readyz`.
struct Health {
    epoch: Instant,
    last_answer_ms: AtomicU64,
}

impl Upstream {
    /// Builds the process's one client: bundled web roots plus `--upstream-ca`, ALPN h2 and http/1.1.
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

        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .set_host(false)
            // Auth requests and answers are small: one copy into hyper's buffer and one
            // `write` beat a two-slice `writev` (as on the client side, see server.rs).
            .http1_writev(false)
            .build(Counting(Dial {
                inner: connector,
                target: config.auth_url.join("/"),
            }));
        Ok(Upstream {
            client,
            host: config.auth_url.host.clone(),
            timeout: config.upstream_timeout,
            health: Arc::new(Health {
                epoch: Instant::now(),
                last_answer_ms: AtomicU64::new(0),
            }),
        })
    }

    /// Sends the request `build` makes and waits for the response head, within `--upstream-timeout`.
    ///
    /// `build` runs a second time only for the one retry after a stale pooled connection, so the
    /// common path builds the request once and clones nothing.
    pub async fn send(
        &self,
        build: impl Fn() -> Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let attempt = async {
            match self
                .client
                .request(build())
                .await
                .map_err(UpstreamError::from_client)
            {
                Err(e) if e.is_stale_connection() => {
                    tracing::debug!("pooled upstream connection was closed; retrying once");
                    self.client
                        .request(build())
                        .await
                        .map_err(UpstreamError::from_client)
                }
                other => other,
            }
        };
        let response = tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        Uses::record(response.extensions());
        self.health.answered();
        Ok(response)
    }

    /// Whether the central service answered recently, or answers a `HEAD` of its base URL now.
    pub async fn is_ready(&self, base: &http::Uri, probe_timeout: Duration) -> bool {
        if self.health.answered_within(ANSWERED_RECENTLY) {
            return true;
        }
        let mut probe = Request::new(Full::new(Bytes::new()));
        *probe.method_mut() = Method::HEAD;
        *probe.uri_mut() = base.clone();
        probe
            .headers_mut()
            .insert(http::header::HOST, self.host.clone());
        let answered = tokio::time::timeout(probe_timeout, self.client.request(probe)).await;
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

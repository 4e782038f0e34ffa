//! What every request shares (configuration, the upstream client, the shield, the shutdown) and what a request did upstream.

use std::sync::Arc;
use std::time::Duration;

use http::{StatusCode, Uri};

use crate::config::Config;
use crate::conn::ConnStats;
use crate::metrics::Metrics;
use crate::router::Route;
use crate::shutdown::Shutdown;
use crate::upstream::Upstream;

/// Upstream request targets (origin form, `AUTH_URL`'s path prefix included), built once at start-up.
#[derive(Clone)]
pub struct RouteUris {
    pub base: Uri,
    pub register: Uri,
    pub login: Uri,
    pub refresh: Uri,
    pub protected: Uri,
}

/// Everything requests share: configuration, the upstream client, the shutdown.
///
/// With several workers (`--worker-threads`) each runtime has its own, made by
/// [`AppState::for_worker`]: its own upstream connection pool, everything else shared.
pub struct AppState {
    pub config: Config,
    pub upstream: Upstream,
    pub uris: RouteUris,
    /// SIGTERM/SIGINT and the drain that follows: `/readyz` answers 503 from the request on,
    /// and requests dropped once the grace ran out were cut by us.
    pub shutdown: Shutdown,
    /// Coalescing and the micro-cache (`crate::shield`), one for all workers: identical
    /// requests coalesce, and a cached answer serves, whichever thread took the client.
    pub shield: Arc<crate::shield::Shield>,
    /// `--login-rate-limit*`: `None` when off, so `/login` pays one branch for it.
    pub login_limiter: Option<Arc<crate::ratelimit::LoginLimiter>>,
    /// Client connections accepted, open, at the cap, parked; the cap itself.
    pub conns: Arc<ConnStats>,
    /// The request series, when `--metrics-listen` is set.
    pub metrics: Option<Arc<Metrics>>,
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, String> {
        let upstream = Upstream::new(&config)?;
        let shield = Arc::new(crate::shield::Shield::new(&config.shield)?);
        let uri = |route: Route| config.auth_url.path(route.path());
        let uris = RouteUris {
            base: config.auth_url.path("/"),
            register: uri(Route::Register),
            login: uri(Route::Login),
            refresh: uri(Route::Refresh),
            protected: uri(Route::Protected),
        };
        let login_limiter = config
            .login_limit
            .as_ref()
            .map(crate::ratelimit::LoginLimiter::new)
            .transpose()?
            .map(Arc::new);
        let metrics = config.metrics_listen.map(|_| Arc::new(Metrics::new()));
        Ok(AppState {
            login_limiter,
            metrics,
            conns: Arc::new(ConnStats::new(config.max_connections)),
            config,
            upstream,
            uris,
            shutdown: Shutdown::new(),
            shield,
        })
    }

    /// The state of another worker runtime: a pool of its own, the rest shared with `self`.
    #[must_use]
    pub fn for_worker(&self) -> AppState {
        AppState {
            config: self.config.clone(),
            upstream: self.upstream.for_worker(),
            uris: self.uris.clone(),
            shutdown: self.shutdown.clone(),
            shield: self.shield.clone(),
            login_limiter: self.login_limiter.clone(),
            conns: self.conns.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// What the central service did for this request, for the access log.
#[derive(Debug, Default)]
pub struct Upstreamed {
    pub status: Option<StatusCode>,
    pub elapsed: Option<Duration>,
    /// `hit` or `miss` when the /protected cache is on.
    pub cache: Option<&'static str>,
    /// `waiter` when the request was answered by another's upstream call.
    pub coalesced: Option<&'static str>,
}

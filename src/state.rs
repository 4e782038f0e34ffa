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
pub struct RouteUris {
    pub base: Uri,
    pub register: Uri,
    pub login: Uri,
    pub refresh: Uri,
    pub protected: Uri,
}

/// Everything requests share: configuration, the one upstream client, the shutdown.
pub struct AppState {
    pub config: Config,
    pub upstream: Upstream,
    pub uris: RouteUris,
    /// SIGTERM/SIGINT and the drain that follows: `/readyz` answers 503 from the request on,
    /// and requests dropped once the grace ran out were cut by us.
    pub shutdown: Shutdown,
    /// Coalescing and the micro-cache (`crate::shield`).
    pub shield: crate::shield::Shield,
    /// `--login-rate-limit*`: `None` when off, so `/login` pays one branch for it.
    pub login_limiter: Option<crate::ratelimit::LoginLimiter>,
    /// Client connections accepted, open, at the cap, parked.
    pub conns: Arc<ConnStats>,
    /// The request series, when `--metrics-listen` is set.
    pub metrics: Option<Arc<Metrics>>,
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, String> {
        let upstream = Upstream::new(&config)?;
        let shield = crate::shield::Shield::new(&config.shield)?;
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
            .transpose()?;
        let metrics = config.metrics_listen.map(|_| Arc::new(Metrics::new()));
        Ok(AppState {
            login_limiter,
            metrics,
            conns: Arc::default(),
            config,
            upstream,
            uris,
            shutdown: Shutdown::new(),
            shield,
        })
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

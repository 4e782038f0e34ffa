//! One request's life: context → router → route → response or error → request id → access log.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::config::{AccessLog, Config};
use crate::context::RequestCtx;
use crate::error::ProxyError;
use crate::framing::Verdicts;
use crate::headers::{Origin, X_REQUEST_ID};
use crate::router::{self, Route, Routed};
use crate::routes::{self, RouteCx};
use crate::upstream::Upstream;

/// Upstream request targets (origin form, `AUTH_URL`'s path prefix included), built once at start-up.
pub struct RouteUris {
    pub base: Uri,
    pub register: Uri,
    pub login: Uri,
    pub refresh: Uri,
    pub protected: Uri,
}

/// Everything requests share: configuration, the one upstream client, the drain flag.
pub struct AppState {
    pub config: Config,
    pub upstream: Upstream,
    pub uris: RouteUris,
    /// Set on SIGTERM/SIGINT: `/readyz` answers 503 from then on.
    pub draining: AtomicBool,
    /// How often idle HTTP/1 connections were parked and resumed.
    pub parking: crate::park::Stats,
    /// Coalescing and the micro-cache (`crate::shield`).
    pub shield: crate::shield::Shield,
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, String> {
        let upstream = Upstream::new(&config)?;
        let shield = crate::shield::Shield::new(&config.shield)?;
        let uri = |path| config.auth_url.path(path);
        let uris = RouteUris {
            base: uri("/"),
            register: uri("/register"),
            login: uri("/login"),
            refresh: uri("/refresh"),
            protected: uri("/protected"),
        };
        Ok(AppState {
            config,
            upstream,
            uris,
            draining: AtomicBool::new(false),
            parking: crate::park::Stats::default(),
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

/// The hyper service of one client connection (wrapped in `service_fn` by `server.rs`, so the
/// per-request future is a plain `async` block, not a boxed trait object).
pub struct ProxyService {
    pub state: Arc<AppState>,
    pub peer: SocketAddr,
    /// Whether `peer` is inside `--trusted-proxies` (decided once per connection).
    pub trusted: bool,
    /// `peer`'s IP as a header value, rendered once per connection.
    pub peer_ip: HeaderValue,
    /// This connection's HTTP/1 framing verdicts (request smuggling guard).
    pub framing: Arc<Verdicts>,
}

impl ProxyService {
    /// Answers one request; never fails (every error becomes a response).
    ///
    /// If the client goes away first (an HTTP/1 hang-up, an HTTP/2 `RST_STREAM`), hyper drops
    /// this future: the upstream exchange in it is dropped too (hyper's client then closes that
    /// connection or resets that stream), and [`InFlight`] still writes the access line.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let method = request.method().clone();
        let version = request.version();
        let ambiguous = version <= Version::HTTP_11 && self.framing.next_request_is_ambiguous();
        let routed = router::route(&method, request.uri().path());
        // HTTP/2 carries the host in `:authority`; HTTP/1 in `Host`.
        let host = request.headers().get(header::HOST).cloned().or_else(|| {
            let authority = request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        let mut flight = InFlight {
            ctx: RequestCtx::new(request.headers(), self.peer),
            method,
            routed,
            upstream: Upstreamed::default(),
            log: self.state.config.access_log != AccessLog::Off,
        };
        let mut cx = RouteCx {
            state: &self.state,
            ctx: &flight.ctx,
            origin: Origin {
                peer_ip: &self.peer_ip,
                trusted: self.trusted,
                scheme: "http",
                host: host.as_ref(),
            },
            upstream: &mut flight.upstream,
        };
        let result = if ambiguous {
            Err(ProxyError::AmbiguousFraming)
        } else {
            dispatch(routed, request, &mut cx).await
        };
        let (mut response, error) = match result {
            Ok(response) => (response, None),
            Err(e) => {
                let close = e.closes_connection() && version <= Version::HTTP_11;
                let reason = e.reason();
                let mut response = e.into_response();
                if close {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                (response, reason)
            }
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID, flight.ctx.id.clone());
        flight.answered(&response, error);
        if flight.method == http::Method::HEAD {
            drop_body(&mut response);
        }
        response
    }
}

/// A HEAD answer carries GET's headers, `Content-Length` included, and no body (RFC 9110
/// §9.3.2). hyper's HTTP/1 server leaves the body out itself; its HTTP/2 server would send it
/// as DATA after a HEADERS frame that the client reads as the end (a stream error there).
fn drop_body(response: &mut Response<ProxyBody>) {
    let length = http_body::Body::size_hint(response.body()).exact();
    if let Some(length) = length {
        response
            .headers_mut()
            .entry(header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(length));
    }
    *response.body_mut() = ProxyBody::empty();
}

async fn dispatch(
    routed: Routed,
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    match routed {
        Routed::Found(Route::Register) => routes::register::handle(request, cx).await,
        Routed::Found(Route::Login) => routes::login::handle(request, cx).await,
        Routed::Found(Route::Refresh) => routes::refresh::handle(request, cx).await,
        Routed::Found(Route::Protected) => routes::protected::handle(request, cx).await,
        Routed::Found(Route::Healthz) => Ok(routes::health::healthz()),
        Routed::Found(Route::Readyz) => Ok(routes::health::readyz(cx).await),
        Routed::Found(Route::OpenApi) => Ok(routes::docs::openapi()),
        Routed::Found(Route::Docs) => Ok(routes::docs::page()),
        Routed::Found(Route::DocsAsset) => routes::docs::asset(request.uri().path()),
        Routed::NotFound => Err(ProxyError::NotFound),
        Routed::MethodNotAllowed(allow) => Err(ProxyError::MethodNotAllowed(allow)),
        Routed::RedirectSlash => Ok(redirect_without_slash(&request, cx.origin.host)),
    }
}

/// Starlette's answer to a known path with a trailing slash: 307 to the same URL without it.
fn redirect_without_slash(
    request: &Request<Incoming>,
    host: Option<&HeaderValue>,
) -> Response<ProxyBody> {
    let uri = request.uri();
    let path = uri.path().strip_suffix('/').unwrap_or(uri.path());
    let host = host.and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let location = match uri.query() {
        Some(query) => format!("http://{host}{path}?{query}"),
        None => format!("http://{host}{path}"),
    };
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn route_name(routed: Routed) -> &'static str {
    match routed {
        Routed::Found(Route::Register) => "/register",
        Routed::Found(Route::Login) => "/login",
        Routed::Found(Route::Refresh) => "/refresh",
        Routed::Found(Route::Protected) => "/protected",
        Routed::Found(Route::Healthz) => "/healthz",
        Routed::Found(Route::Readyz) => "/readyz",
        Routed::Found(Route::OpenApi) => "/openapi.json",
        Routed::Found(Route::Docs) => "/docs",
        Routed::Found(Route::DocsAsset) => "/docs/*",
        Routed::NotFound => "unmatched",
        Routed::MethodNotAllowed(_) => "method-not-allowed",
        Routed::RedirectSlash => "redirect-slash",
    }
}

/// A request being answered: when its future is dropped unanswered, the client left.
struct InFlight {
    ctx: RequestCtx,
    method: http::Method,
    routed: Routed,
    upstream: Upstreamed,
    /// `--access-log on`, until the line is written.
    log: bool,
}

/// nginx's status for a request whose client closed the connection before the answer.
const CLIENT_CLOSED: u16 = 499;

impl InFlight {
    fn answered(&mut self, response: &Response<ProxyBody>, error: Option<&'static str>) {
        if std::mem::take(&mut self.log) {
            let bytes = http_body::Body::size_hint(response.body()).exact();
            self.log_access(response.status().as_u16(), bytes, error);
        }
    }

    /// One line per request; never a header value, body, or query string (they can carry
    /// secrets). `bytes` is the response body's declared length; a streamed body without one
    /// logs nothing there. `error` says why the proxy answered itself, or that the client left.
    fn log_access(&self, status: u16, bytes: Option<u64>, error: Option<&'static str>) {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let ctx = &self.ctx;
        tracing::info!(
            target: "access",
            method = %self.method,
            route = route_name(self.routed),
            status,
            bytes,
            duration_us = micros(ctx.start.elapsed()),
            upstream_status = self.upstream.status.map(|s| s.as_u16()),
            upstream_duration_us = self.upstream.elapsed.map(micros),
            cache = self.upstream.cache,
            coalesced = self.upstream.coalesced,
            error,
            request_id = ctx.id.to_str().unwrap_or("-"),
            peer = %ctx.peer,
        );
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if std::mem::take(&mut self.log) {
            self.log_access(CLIENT_CLOSED, None, Some("client_closed"));
        }
    }
}

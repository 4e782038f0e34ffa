//! One request's life: context → router → route → response or error → request id → access log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::body::{CutReport, ProxyBody};
use crate::config::AccessLog;
use crate::conn::{self, AmbiguousFraming, Handler};
use crate::context::RequestCtx;
use crate::error::ProxyError;
use crate::headers::{request_host, Origin, X_REQUEST_ID};
use crate::router::{self, Route, Routed};
use crate::routes::{self, RouteCx};
use crate::shutdown::Phase;
use crate::state::{AppState, Upstreamed};
use crate::upstream::Chain;

/// Serves `listener` with `state` until `signal` resolves (SIGTERM in the binary), then shuts
/// down as [`conn::serve`] does.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    signal: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let mut served = serve_until_drained(listener, state);
    tokio::select! {
        biased;
        result = &mut served => return result,
        () = signal => shutdown.advance(Phase::Requested),
    }
    served.await
}

/// Serves `listener` with `state` until the shutdown `state` shares has been requested and
/// has drained it: an extra worker's whole life (`crate::workers`), and the inside of [`serve`].
///
/// Boxed, and not generic, so that the connection layer's code exists once however many
/// places run it: inlined into both the binary's `serve` and each worker's `block_on`, it
/// was compiled twice (300 KB more text in the release build). One allocation per listener,
/// at start-up.
pub fn serve_until_drained(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
    Box::pin(async move {
        let shutdown = state.shutdown.clone();
        let settings = conn::Settings::new(&state.config);
        let counters = state.conns.clone();
        let make = move |peer| ProxyService::new(&state, peer);
        conn::serve(listener, settings, make, &shutdown, counters).await
    })
}

/// The service of one client connection (wrapped in `service_fn` by `conn`, so the
/// per-request future is a plain `async` block, not a boxed trait object).
pub struct ProxyService {
    pub state: Arc<AppState>,
    pub peer: SocketAddr,
    /// Whether `peer` is inside `--trusted-proxies` (decided once per connection).
    pub trusted: bool,
    /// `peer`'s IP as a header value, rendered once per connection.
    pub peer_ip: HeaderValue,
}

impl Handler for ProxyService {
    type Body = ProxyBody;

    fn handle(
        &self,
        request: Request<Incoming>,
    ) -> impl std::future::Future<Output = Response<ProxyBody>> + Send {
        ProxyService::handle(self, request)
    }
}

impl ProxyService {
    /// The service for a client connected from `peer`.
    pub fn new(state: &Arc<AppState>, peer: SocketAddr) -> Self {
        ProxyService {
            trusted: crate::headers::is_trusted_proxy(&state.config.trusted_proxies, peer.ip()),
            peer_ip: crate::headers::peer_ip_value(peer),
            state: state.clone(),
            peer,
        }
    }

    /// Answers one request; never fails (every error becomes a response).
    ///
    /// If the client goes away first (an HTTP/1 hang-up, an HTTP/2 `RST_STREAM`), hyper drops
    /// this future: the upstream exchange in it is dropped too (hyper's client then closes that
    /// connection or resets that stream), and [`InFlight`] still writes the access line.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let method = request.method().clone();
        let version = request.version();
        // Set by the connection layer's framing watch (HTTP/1 only).
        let ambiguous = request.extensions().get::<AmbiguousFraming>().is_some();
        let routed = router::route(&method, request.uri().path());
        // `Host` (HTTP/1) or `:authority` (HTTP/2), or why it makes the request a 400.
        let host = request_host(version, request.headers(), request.uri());
        let mut flight = InFlight {
            ctx: RequestCtx::new(request.headers(), self.peer),
            method,
            routed,
            upstream: Upstreamed::default(),
            log: self.state.config.access_log != AccessLog::Off,
            answered: false,
            state: &self.state,
        };
        if let Some(metrics) = &self.state.metrics {
            metrics.started();
        }
        let mut cx = RouteCx {
            state: &self.state,
            ctx: &flight.ctx,
            origin: Origin {
                peer_ip: &self.peer_ip,
                trusted: self.trusted,
                scheme: "http",
                host: host.as_ref().ok().and_then(Option::as_ref),
            },
            upstream: &mut flight.upstream,
        };
        let result = match host {
            _ if ambiguous => Err(ProxyError::AmbiguousFraming),
            Err(e) => Err(ProxyError::BadHost(e)),
            Ok(_) => dispatch(routed, request, &mut cx).await,
        };
        let (mut response, error) = match result {
            Ok(response) => (response, None),
            Err(e) => {
                flight.failed(&e);
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
        let status = response.status().as_u16();
        if flight.method == http::Method::HEAD {
            drop_body(&mut response);
        } else if let ProxyBody::Upstream(streamed) = response.body_mut() {
            streamed.cut = Some(CutReport {
                request_id: flight.ctx.id.clone(),
                route: flight.routed.label(),
                status,
                metrics: self.state.metrics.clone(),
            });
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
        Routed::RedirectSlash => Ok(redirect_without_slash(request.uri())),
    }
}

/// Starlette's answer to a known path with a trailing slash: 307 to the same path without it.
///
/// Starlette builds an absolute URL from the client's `Host`; a relative reference (RFC 9110
/// §10.2.2 allows one) sends the client to the same place without echoing a header it chose.
fn redirect_without_slash(uri: &Uri) -> Response<ProxyBody> {
    let path = uri.path().strip_suffix('/').unwrap_or(uri.path());
    let location = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A request being answered: when its future is dropped unanswered, the client left (or the
/// drain's grace ran out and the proxy cut it).
struct InFlight<'a> {
    ctx: RequestCtx,
    method: http::Method,
    routed: Routed,
    upstream: Upstreamed,
    /// `--access-log on`.
    log: bool,
    /// The access line is written and the request counted.
    answered: bool,
    state: &'a AppState,
}

/// nginx's status for a request whose client closed the connection before the answer.
const CLIENT_CLOSED: u16 = 499;
/// The access line's status for a request cut when `--shutdown-grace` ran out: no answer was
/// sent (the connection was closed), and the fault is the proxy's, so it counts as a 5xx.
const CUT_AT_SHUTDOWN: u16 = 503;

impl InFlight<'_> {
    fn answered(&mut self, response: &Response<ProxyBody>, error: Option<&'static str>) {
        let bytes = http_body::Body::size_hint(response.body()).exact();
        self.finish(response.status().as_u16(), bytes, error);
    }

    /// Writes the access line and counts the request, once.
    fn finish(&mut self, status: u16, bytes: Option<u64>, error: Option<&'static str>) {
        if std::mem::replace(&mut self.answered, true) {
            return;
        }
        if let Some(metrics) = &self.state.metrics {
            let took = self.ctx.start.elapsed();
            metrics.answered(self.routed, status, took, self.upstream.elapsed);
        }
        if self.log {
            self.log_access(status, bytes, error);
        }
    }

    /// The proxy answers `e` itself: counted, and a 5xx explained in one `warn` line with the
    /// failed step and the whole cause chain (the client gets only the short JSON detail).
    fn failed(&self, e: &ProxyError) {
        if let Some(metrics) = &self.state.metrics {
            if let Some(failure) = e.counted_as() {
                metrics.failed(self.routed, failure);
            }
        }
        let status = e.status();
        if status.is_server_error() {
            tracing::warn!(
                request_id = self.ctx.id.to_str().unwrap_or("-"),
                route = self.routed.label(),
                status = status.as_u16(),
                step = e.step().map(crate::upstream::Step::as_str),
                error = e.reason(),
                cause = %Chain(e),
                "proxy answered {}", status.as_u16()
            );
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
            route = self.routed.label(),
            status,
            bytes,
            duration_us = micros(ctx.start.elapsed()),
            upstream_status = self.upstream.status.map(|s| s.as_u16()),
            upstream_duration_us = self.upstream.elapsed.map(micros),
            cache = self.upstream.cache,
            coalesced = self.upstream.coalesced,
            error,
            request_id = ctx.id.to_str().unwrap_or("-"),
            trace_id = ctx.trace.trace_id(),
            peer = %ctx.peer,
        );
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.state.shutdown.is_cutting() {
            self.finish(CUT_AT_SHUTDOWN, None, Some("shutdown_cut"));
        } else {
            self.finish(CLIENT_CLOSED, None, Some("client_closed"));
        }
        if let Some(metrics) = &self.state.metrics {
            metrics.ended();
        }
    }
}

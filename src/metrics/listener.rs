//! The admin listener (`--metrics-listen`): `/metrics`, `/healthz` and `/readyz`, never on the public port.
//!
//! An auth edge must not publish its internals to the internet, so metrics have a listener of
//! their own, meant for a private interface; probes may use it too. It serves HTTP/1 only, one
//! task per connection, with hyper's header timeout; it runs until the process exits.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::body::ProxyBody;
use crate::error::{json_response, ProxyError};
use crate::routes::health;
use crate::state::AppState;

/// Binds `--metrics-listen` and serves it in the background; the address actually bound.
pub async fn start(
    addr: std::net::SocketAddr,
    state: &Arc<AppState>,
) -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-listen/METRICS_LISTEN: cannot bind {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics-listen/METRICS_LISTEN: {e}"))?;
    tokio::spawn(serve(listener, state.clone()));
    Ok(bound)
}

/// Serves the admin endpoints on `listener` for ever.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.client_header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (state, builder) = (state.clone(), builder.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&request, &state).await) }
            });
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn answer(request: &Request<Incoming>, state: &AppState) -> Response<ProxyBody> {
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    let response = match (request.uri().path(), get) {
        ("/metrics", true) => {
            let mut response = Response::new(ProxyBody::full(Bytes::from(super::render(state))));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::CONTENT_TYPE),
            );
            response
        }
        ("/healthz", true) => health::healthz(),
        ("/readyz", true) => health::readiness(state).await,
        ("/metrics" | "/healthz" | "/readyz", false) => {
            ProxyError::MethodNotAllowed("GET, HEAD").into_response()
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"detail":"Not Found"}"#),
        ),
    };
    if *request.method() == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, ProxyBody::empty());
    }
    response
}

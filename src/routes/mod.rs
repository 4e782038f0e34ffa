//! The routes: each file is one endpoint of the same shape — extract → validate → build → forward.

pub mod body;
pub mod docs;
pub mod health;
pub mod login;
pub mod protected;
pub mod refresh;
pub mod register;
pub mod shared;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::context::RequestCtx;
use crate::error::ProxyError;
use crate::headers::{self, Credentials, Origin};
use crate::state::{AppState, Upstreamed};
use crate::trace::{TRACEPARENT, TRACESTATE};
use crate::upstream::UpstreamBody;
use crate::validate::Rejection;

pub const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
pub const FORM_URLENCODED: HeaderValue =
    HeaderValue::from_static("application/x-www-form-urlencoded");

/// What every route handler gets besides the request.
pub struct RouteCx<'a> {
    pub state: &'a AppState,
    pub ctx: &'a RequestCtx,
    pub origin: Origin<'a>,
    /// Filled in by [`forward`] for the access log.
    pub upstream: &'a mut Upstreamed,
}

/// The body the central service gets, and how it is labelled.
pub struct Outbound<'a> {
    pub method: Method,
    pub uri: http::Uri,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
    pub credentials: Credentials<'a>,
}

/// Sends the validated request upstream and turns the answer into the client's response, streamed.
pub async fn forward(
    cx: &mut RouteCx<'_>,
    parts: &Parts,
    outbound: Outbound<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    Ok(exchange(cx, parts, outbound)
        .await?
        .map(ProxyBody::upstream))
}

/// Sends the validated request upstream: the answer's head sanitised, its body as it comes
/// (for [`forward`], or for `shared` to hold whole and share).
pub async fn exchange(
    cx: &mut RouteCx<'_>,
    parts: &Parts,
    outbound: Outbound<'_>,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let config = &cx.state.config;
    let build = || {
        let mut headers = headers::outbound_request(
            &parts.headers,
            &cx.origin,
            &config.auth_url.host,
            &cx.ctx.id,
            outbound.credentials,
        );
        if cx.ctx.trace.started {
            // The client sent no valid traceparent: the proxy's trace replaces it, and a
            // tracestate that came with an invalid one goes too (W3C Trace Context §3.3).
            headers.insert(TRACEPARENT, cx.ctx.trace.traceparent.clone());
            headers.remove(TRACESTATE);
        }
        if let Some(content_type) = &outbound.content_type {
            // Filtered out of the client's headers by `outbound_request`: append, not insert.
            headers.append(header::CONTENT_TYPE, content_type.clone());
        }
        let mut request = Request::new(Full::new(outbound.body.clone()));
        *request.method_mut() = outbound.method.clone();
        *request.uri_mut() = outbound.uri.clone();
        *request.headers_mut() = headers;
        request
    };
    let started = std::time::Instant::now();
    let result = cx.state.upstream.send(build).await;
    cx.upstream.elapsed = Some(started.elapsed());
    let response = result?;
    cx.upstream.status = Some(response.status());
    let (mut head, body) = response.into_parts();
    headers::sanitize_response(&mut head.headers);
    Ok(Response::from_parts(head, body))
}

/// The shape the three body routes share: [`read_validated`] → [`forward_body`].
pub async fn forward_validated(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
    uri: &http::Uri,
    content_type: HeaderValue,
    validate: impl FnOnce(Option<&[u8]>, &Bytes) -> Result<Bytes, Rejection>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (parts, body) = read_validated(request, cx, validate).await?;
    forward_body(cx, &parts, uri, content_type, body).await
}

/// Reads the body (bounded) and `validate`s it into the upstream body: only the known fields,
/// re-serialised unless already canonical.
pub async fn read_validated(
    request: Request<Incoming>,
    cx: &RouteCx<'_>,
    validate: impl FnOnce(Option<&[u8]>, &Bytes) -> Result<Bytes, Rejection>,
) -> Result<(Parts, Bytes), ProxyError> {
    let (parts, body) = request.into_parts();
    let config = &cx.state.config;
    let bytes = body::read_bounded(
        body,
        &parts.headers,
        config.max_body_bytes,
        config.client_body_timeout,
    )
    .await?;
    let body = validate(request_content_type(&parts), &bytes)?;
    Ok((parts, body))
}

/// POSTs a validated body upstream as `content_type`.
pub async fn forward_body(
    cx: &mut RouteCx<'_>,
    parts: &Parts,
    uri: &http::Uri,
    content_type: HeaderValue,
    body: Bytes,
) -> Result<Response<ProxyBody>, ProxyError> {
    forward(cx, parts, validated(uri, content_type, body)).await
}

/// A validated body going to `uri` as a `POST` labelled `content_type`: what [`forward_body`]
/// sends, for a route that may share the call instead (`/refresh`).
pub fn validated(uri: &http::Uri, content_type: HeaderValue, body: Bytes) -> Outbound<'static> {
    Outbound {
        method: Method::POST,
        uri: uri.clone(),
        content_type: Some(content_type),
        body,
        credentials: Credentials::None,
    }
}

/// The request's `Content-Type`, raw.
fn request_content_type(parts: &Parts) -> Option<&[u8]> {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
}

impl From<Rejection> for ProxyError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Unprocessable(body) => {
                ProxyError::Invalid(StatusCode::UNPROCESSABLE_ENTITY, body)
            }
            Rejection::BadRequest(body) => ProxyError::Invalid(StatusCode::BAD_REQUEST, body),
        }
    }
}

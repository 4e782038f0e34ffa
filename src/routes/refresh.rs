//! `POST /refresh`: JSON in, validated, re-serialised with only the known fields, forwarded.

use http::{Method, Request, Response};
use hyper::body::Incoming;

use super::{content_type, forward, Outbound, RouteCx, APPLICATION_JSON};
use crate::body::{self, ProxyBody};
use crate::error::ProxyError;
use crate::headers::Credentials;
use crate::validate;

pub async fn handle(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (parts, body) = request.into_parts();
    let bytes = body::read_bounded(body, &parts.headers, cx.state.config.max_body_bytes).await?;
    let input = validate::refresh(content_type(&parts), &bytes)?;
    let outbound = Outbound {
        method: Method::POST,
        uri: cx.state.uris.refresh.clone(),
        content_type: Some(APPLICATION_JSON),
        body: input.to_upstream_body(),
        credentials: Credentials::None,
    };
    forward(cx, &parts, outbound).await
}

//! `POST /refresh`: JSON in, validated, re-serialised with only the known fields, forwarded.

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;

use super::{forward_validated, RouteCx, APPLICATION_JSON};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::validate;

pub async fn handle(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let state = cx.state;
    forward_validated(
        request,
        cx,
        &state.uris.refresh,
        APPLICATION_JSON,
        |content_type, body: &Bytes| Ok(validate::refresh(content_type, body)?.to_upstream_body()),
    )
    .await
}

//! `POST /refresh`: JSON in, validated, re-serialised with only the known fields, forwarded
//! (one upstream call for concurrent requests with the same refresh token).

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;

use super::shared::{forward_shared, Sharing};
use super::{forward_body, read_validated, validated, RouteCx, APPLICATION_JSON};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::shield::Domain;
use crate::validate;

pub async fn handle(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let state = cx.state;
    let (parts, body) = read_validated(request, cx, |content_type, body: &Bytes| {
        Ok(validate::refresh(content_type, body)?.to_upstream_body())
    })
    .await?;
    let Some(flights) = &state.shield.refresh else {
        return forward_body(cx, &parts, &state.uris.refresh, APPLICATION_JSON, body).await;
    };
    // The upstream body holds the refresh token and nothing else: its key is the token's.
    let sharing = Sharing {
        key: state.shield.keyer.key(Domain::RefreshBody, &body),
        flights: Some(flights),
        cache: None,
    };
    let outbound = validated(&state.uris.refresh, APPLICATION_JSON, body);
    forward_shared(cx, &parts, outbound, sharing).await
}

//! `GET /protected`: bearer credentials checked as FastAPI's `HTTPBearer` does, then forwarded.

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::{forward, Outbound, RouteCx};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::headers::Credentials;
use crate::validate;

pub async fn handle(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    // A body on this GET is never forwarded; it is dropped unread.
    let (parts, _body) = request.into_parts();
    let token = validate::bearer_token(parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes))
        .ok_or(ProxyError::NotAuthenticated)?;
    // The token came out of a valid header value, so it is a valid header value too.
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ProxyError::NotAuthenticated)?;
    let outbound = Outbound {
        method: parts.method.clone(),
        uri: cx.state.uris.protected.clone(),
        content_type: None,
        body: Bytes::new(),
        credentials: Credentials::Bearer(&bearer),
    };
    forward(cx, &parts, outbound).await
}

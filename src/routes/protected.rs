//! `GET /protected`: bearer credentials checked as FastAPI's `HTTPBearer` does, then forwarded
//! (shared by concurrent requests with the same token, and cached if asked).

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::shared::{forward_shared, Sharing};
use super::{forward, Outbound, RouteCx};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::headers::Credentials;
use crate::shield::Domain;
use crate::validate;

pub async fn handle(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    // A body on this GET is never forwarded; it is dropped unread.
    let (parts, _body) = request.into_parts();
    let raw = parts.headers.get(AUTHORIZATION);
    let token = validate::bearer_token(raw.map(HeaderValue::as_bytes))
        .ok_or(ProxyError::NotAuthenticated)?;
    let bearer = canonical_bearer(raw, token)?;
    let outbound = Outbound {
        method: parts.method.clone(),
        uri: cx.state.uris.protected.clone(),
        content_type: None,
        body: Bytes::new(),
        credentials: Credentials::Bearer(&bearer),
    };
    let shield = &cx.state.shield;
    if shield.protected.is_none() && shield.cache.is_none() {
        return forward(cx, &parts, outbound).await;
    }
    let sharing = Sharing {
        key: shield.keyer.key(Domain::ProtectedToken, token.as_bytes()),
        flights: shield.protected.as_ref(),
        cache: shield.cache.as_ref().map(|cache| (cache, token)),
    };
    forward_shared(cx, &parts, outbound, sharing).await
}

/// `Bearer <token>`, as the FastAPI app sent it; the client's own value when it already is that.
fn canonical_bearer(raw: Option<&HeaderValue>, token: &str) -> Result<HeaderValue, ProxyError> {
    if let Some(raw) =
        raw.filter(|raw| raw.as_bytes().strip_prefix(b"Bearer ") == Some(token.as_bytes()))
    {
        return Ok(raw.clone());
    }
    // The token came out of a valid header value, so this cannot fail; if it did, the
    // credentials were unusable.
    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ProxyError::NotAuthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_rendered_canonically() {
        let exact = HeaderValue::from_static("Bearer abc");
        assert_eq!(canonical_bearer(Some(&exact), "abc").unwrap(), "Bearer abc");
        let loose = HeaderValue::from_static("bEaReR   abc ");
        assert_eq!(canonical_bearer(Some(&loose), "abc").unwrap(), "Bearer abc");
    }
}

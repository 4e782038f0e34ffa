//! `POST /login`: an OAuth2 password form in, validated, throttled when configured, forwarded
//! as its six fields (as sent when already canonical).

use http::{Request, Response};
use hyper::body::Incoming;

use super::{forward_body, read_validated, RouteCx, FORM_URLENCODED};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::{headers, validate};

pub async fn handle(
    request: Request<Incoming>,
    cx: &mut RouteCx<'_>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let state = cx.state;
    // Validation first: a malformed form is a 422 and costs the client no attempt.
    let (parts, body) = read_validated(request, cx, validate::login_upstream_body).await?;
    if let Some(limiter) = &state.login_limiter {
        let client = headers::client_ip(
            &parts.headers,
            cx.ctx.peer.ip(),
            cx.origin.trusted,
            &state.config.trusted_proxies,
        );
        let username = validate::login_upstream_username(&body);
        limiter
            .check(client, username)
            .await
            .map_err(ProxyError::Throttled)?;
    }
    forward_body(cx, &parts, &state.uris.login, FORM_URLENCODED, body).await
}

//! `POST /login`: an OAuth2 password form in, validated, forwarded as its six fields (as sent when already canonical).

use http::{Request, Response};
use hyper::body::Incoming;

use super::{forward_validated, RouteCx, FORM_URLENCODED};
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
        &state.uris.login,
        FORM_URLENCODED,
        validate::login_upstream_body,
    )
    .await
}

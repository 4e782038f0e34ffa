//! `GET /healthz` (the process serves) and `GET /readyz` (the central service answers, and we are not draining).

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};

use super::RouteCx;
use crate::body::ProxyBody;
use crate::error::json_response;
use crate::state::AppState;
use crate::upstream::BreakerState;

/// The longest a readiness probe of the central service may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn healthz() -> Response<ProxyBody> {
    json_response(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
}

pub async fn readyz(cx: &RouteCx<'_>) -> Response<ProxyBody> {
    readiness(cx.state).await
}

/// `/readyz` on either listener.
pub async fn readiness(state: &AppState) -> Response<ProxyBody> {
    if state.shutdown.is_requested() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(br#"{"status":"unavailable","reason":"shutting down"}"#),
        );
    }
    if state.upstream.breaker().state == BreakerState::Open {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(
                br#"{"status":"unavailable","reason":"central auth service failing (breaker open)"}"#,
            ),
        );
    }
    let timeout = PROBE_TIMEOUT.min(state.config.upstream_timeout);
    if state.upstream.is_ready(&state.uris.base, timeout).await {
        json_response(StatusCode::OK, Bytes::from_static(br#"{"status":"ready"}"#))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(
                br#"{"status":"unavailable","reason":"central auth service is not answering"}"#,
            ),
        )
    }
}

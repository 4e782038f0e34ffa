//! The bounded read of a request body: a declared length checked first, then a running total, within `--client-body-timeout`.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::Gathered;
use crate::error::ProxyError;

/// Reads a whole request body of at most `limit` bytes, within `timeout`
/// (`--client-body-timeout`, counted from the first wait for body bytes).
///
/// Bounded twice: a declared `Content-Length` over the limit is refused before a byte is read,
/// and the running total stops a chunked or lying body as soon as it crosses the limit. A body
/// that arrives as one data frame (the usual small one, read with its head) is returned as that
/// frame, neither copied nor collected into a list; only a second frame starts a buffer.
pub async fn read_bounded(
    body: Incoming,
    headers: &HeaderMap,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, ProxyError> {
    if declared_length(headers).is_some_and(|len| len > limit) {
        return Err(ProxyError::BodyTooLarge);
    }
    crate::wait::within(timeout, read_frames(body, limit))
        .await
        .unwrap_or(Err(ProxyError::BodyTimeout))
}

async fn read_frames(mut body: Incoming, limit: u64) -> Result<Bytes, ProxyError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut gathered = Gathered::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ProxyError::ClientBody)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: FastAPI ignores them too
        };
        if data.len() > limit.saturating_sub(gathered.len()) {
            return Err(ProxyError::BodyTooLarge);
        }
        gathered.push(data);
    }
    Ok(gathered.finish())
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

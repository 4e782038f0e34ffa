//! An answer of the central service held whole, to be copied to several clients.

use std::time::Duration;

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderMap, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

use crate::body::{Gathered, ProxyBody};
use crate::headers::X_REQUEST_ID;
use crate::upstream::{BodyStalled, UpstreamBody, UpstreamError};

/// Bodies shared with coalesced waiters or cached are under this; one of this size or larger
/// streams to its own client.
pub const MAX_SHARED_BODY: u64 = 64 * 1024;

/// What every entry is charged besides its bytes (key, map slot, expiry bookkeeping).
pub const ENTRY_OVERHEAD: usize = 512;

/// Status, end-to-end headers and body of one answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// A copy of `head` (without per-request headers) and `body`.
    pub fn of(head: &Parts, body: &Bytes) -> Self {
        let mut headers = head.headers.clone();
        headers.remove(X_REQUEST_ID);
        Answer {
            status: head.status,
            headers,
            body: body.clone(),
        }
    }

    /// This answer for one more client (its own `X-Request-Id` is added by the service).
    pub fn response(&self) -> Response<ProxyBody> {
        let mut response = Response::new(ProxyBody::full(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }

    /// Bytes held, for the cache's bound.
    pub fn weight(&self) -> u32 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        u32::try_from(ENTRY_OVERHEAD + headers + self.body.len()).unwrap_or(u32::MAX)
    }
}

/// Whether an answer's body is small enough to hold whole: its length is declared and under
/// [`MAX_SHARED_BODY`].
pub fn is_shareable(body: &UpstreamBody) -> bool {
    body.size_hint()
        .exact()
        .is_some_and(|len| len < MAX_SHARED_BODY)
}

/// Reads a shareable body to its end within `timeout`. One frame (the usual small JSON) is kept
/// as it is; more are joined.
pub async fn collect(mut body: UpstreamBody, timeout: Duration) -> Result<Bytes, UpstreamError> {
    let read = async {
        let mut gathered = Gathered::default();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(UpstreamError::Body)?.into_data() else {
                continue;
            };
            gathered.push(data);
        }
        Ok(gathered.finish())
    };
    // The usual answer is whole when its head is: no timer is made for it.
    crate::wait::within(timeout, read)
        .await
        .unwrap_or_else(|| Err(UpstreamError::Body(Box::new(BodyStalled))))
}

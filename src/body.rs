//! Bodies: the one response body type the proxy sends, and the bounded read of request bodies.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::upstream::{BodyError, UpstreamBody};

use crate::error::ProxyError;

/// A response body: bytes the proxy made itself, or the central service's body streamed through.
///
/// An enum rather than a boxed trait object: the hot path pays no allocation or dynamic call.
#[derive(Debug)]
pub enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

impl ProxyBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(bytes.into()))
    }

    pub fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            ProxyBody::Upstream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            ProxyBody::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Upstream(body) => body.size_hint(),
        }
    }
}

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
    crate::deadline::within(timeout, read_frames(body, limit))
        .await
        .unwrap_or(Err(ProxyError::BodyTimeout))
}

async fn read_frames(mut body: Incoming, limit: u64) -> Result<Bytes, ProxyError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut first = Bytes::new();
    let mut joined = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ProxyError::ClientBody)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: FastAPI ignores them too
        };
        // The bytes so far are in `first` or, once a second frame came, all in `joined`.
        let read = first.len() + joined.len();
        if data.len() > limit.saturating_sub(read) {
            return Err(ProxyError::BodyTooLarge);
        }
        if read == 0 {
            first = data;
        } else {
            if joined.is_empty() {
                joined.extend_from_slice(&std::mem::take(&mut first));
            }
            joined.extend_from_slice(&data);
        }
    }
    Ok(if joined.is_empty() {
        first
    } else {
        joined.freeze()
    })
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

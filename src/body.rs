//! The one response body type the proxy sends, and the gathering of a body's frames into one `Bytes`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};

use crate::metrics::Metrics;
use crate::upstream::{body_error_kind, BodyError, Chain, UpstreamBody};

/// A response body: bytes the proxy made itself, or the central service's body streamed through.
///
/// An enum rather than a boxed trait object: the hot path pays no allocation or dynamic call.
#[derive(Debug)]
pub enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(Streamed),
}

/// The central service's body on its way to the client, watched for a cut after the head left.
#[derive(Debug)]
pub struct Streamed {
    body: UpstreamBody,
    sent: u64,
    /// Who to tell if the body breaks; set by the service once the head is answered.
    pub cut: Option<CutReport>,
}

/// What the line about a cut body says, and where it is counted.
#[derive(Debug)]
pub struct CutReport {
    pub request_id: HeaderValue,
    pub route: &'static str,
    pub status: u16,
    pub metrics: Option<Arc<Metrics>>,
}

impl CutReport {
    /// The client has the head (and `sent` body bytes) already and will see the cut; the access
    /// line said the status. This second `access` line says the body broke, and why.
    fn report(self, sent: u64, e: &(dyn std::error::Error + 'static)) {
        let kind = body_error_kind(e);
        if let Some(metrics) = &self.metrics {
            metrics.upstream_failed(kind);
        }
        tracing::warn!(
            target: "access",
            request_id = self.request_id.to_str().unwrap_or("-"),
            route = self.route,
            status = self.status,
            bytes_sent = sent,
            error = kind,
            step = "read body",
            cause = %Chain(e),
            "response body cut: the central service's body broke after the head was sent"
        );
    }
}

impl ProxyBody {
    pub fn upstream(body: UpstreamBody) -> Self {
        ProxyBody::Upstream(Streamed {
            body,
            sent: 0,
            cut: None,
        })
    }

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
            ProxyBody::Upstream(streamed) => {
                let polled = Pin::new(&mut streamed.body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            streamed.sent += data.len() as u64;
                        }
                    }
                    Poll::Ready(Some(Err(e))) => {
                        if let Some(cut) = streamed.cut.take() {
                            cut.report(streamed.sent, &**e);
                        }
                    }
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            ProxyBody::Upstream(streamed) => streamed.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Upstream(streamed) => streamed.body.size_hint(),
        }
    }
}

/// A body's data frames as one `Bytes`. The usual body comes as one frame, read with its head:
/// that frame is kept as it is, neither copied nor collected into a list; only a second frame
/// starts a buffer.
#[derive(Default)]
pub struct Gathered {
    /// The bytes so far, while they are one frame.
    first: Bytes,
    /// All the bytes, once a second frame came.
    joined: BytesMut,
}

impl Gathered {
    pub fn len(&self) -> usize {
        self.first.len() + self.joined.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, data: Bytes) {
        if self.is_empty() {
            self.first = data;
        } else {
            if self.joined.is_empty() {
                self.joined
                    .extend_from_slice(&std::mem::take(&mut self.first));
            }
            self.joined.extend_from_slice(&data);
        }
    }

    pub fn finish(self) -> Bytes {
        if self.joined.is_empty() {
            self.first
        } else {
            self.joined.freeze()
        }
    }
}

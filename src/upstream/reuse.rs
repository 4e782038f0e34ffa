//! Marks each upstream connection with how many responses it has carried, so a failure can be
//! told apart: a *reused* connection that died before answering was closed by the central
//! service while idle (safe to send again on a fresh one); a *fresh* connection that died may
//! have delivered the request (not safe: it could register a user twice).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};

/// Responses received on one connection; travels in `Connected::extra`.
#[derive(Clone, Debug, Default)]
pub struct Uses(Arc<AtomicU32>);

impl Uses {
    /// Records a response on the connection that carried `extensions`' response.
    pub fn record(extensions: &Extensions) {
        if let Some(uses) = extensions.get::<Uses>() {
            uses.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the connection behind a failed request had answered before.
    pub fn was_reused(connected: Option<&Connected>) -> bool {
        let Some(connected) = connected else {
            return false;
        };
        let mut extensions = Extensions::new();
        connected.get_extras(&mut extensions);
        extensions
            .get::<Uses>()
            .is_some_and(|uses| uses.0.load(Ordering::Relaxed) > 0)
    }
}

/// A connector whose connections carry a [`Uses`] counter.
#[derive(Clone, Debug)]
pub struct Counting<C>(pub C);

impl<C> tower_service::Service<Uri> for Counting<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = Counted<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            Ok(Counted {
                io: connecting.await?,
                uses: Uses::default(),
            })
        })
    }
}

/// A connection and its counter; I/O passes straight through.
pub struct Counted<T> {
    io: T,
    uses: Uses,
}

impl<T: Connection> Connection for Counted<T> {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.uses.clone())
    }
}

impl<T: Read + Unpin> Read for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

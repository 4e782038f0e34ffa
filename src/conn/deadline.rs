//! The client's send deadline: a write the client takes nothing of for `--client-send-timeout` fails.
//!
//! Armed lazily: an answer of a few hundred bytes fits in the socket buffer at once, so the
//! common request never registers a timer (a tokio timer costs about 1,000 instructions to
//! register and remove, a few percent of a whole proxied request); only a write that has to
//! wait starts the clock.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A client socket whose writes fail with `TimedOut` once the client has taken nothing for
/// `limit` (nginx's `send_timeout`: the gap between two successful writes, not the whole
/// response). hyper then closes the connection and drops the response, and with it the
/// upstream exchange still streaming into it.
///
/// The timer exists only while a write waits: it is made when the socket first refuses bytes
/// and dropped at the next write that succeeds, so a connection that is never blocked (or is
/// parked) carries none.
pub struct SendDeadline<T> {
    inner: T,
    limit: Duration,
    peer: SocketAddr,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<T> SendDeadline<T> {
    pub fn new(inner: T, limit: Duration, peer: SocketAddr) -> Self {
        SendDeadline {
            inner,
            limit,
            peer,
            waiting: None,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Passes a write-side result through, starting or clearing the wait it implies.
    fn pace<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let limit = self.limit;
        let waiting = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if waiting.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.waiting = None;
        tracing::info!(
            peer = %self.peer,
            timeout = ?limit,
            "client took no response bytes within --client-send-timeout; closing the connection"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client send timeout",
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.pace(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.pace(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.pace(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.pace(cx, polled)
    }
}

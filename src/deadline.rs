//! Deadlines for the phases a client paces: reading its request body, and taking its response.
//!
//! Both are armed lazily. An auth request's body nearly always arrives with its head and an
//! answer of a few hundred bytes fits in the socket buffer at once, so the common request never
//! registers a timer (a tokio timer costs about 1,000 instructions to register and remove, a few
//! percent of a whole proxied request); only a read or write that has to wait starts the clock.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `future`'s output, or `None` if it is still pending `limit` after it first had to wait.
///
/// The clock starts at the first poll that returns `Pending`, which for a request body is the
/// moment the proxy began waiting for bytes the client had not sent with its head.
pub async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(None::<Sleep>);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if timer.is_none() {
            timer.set(Some(tokio::time::sleep(limit)));
        }
        match timer.as_mut().as_pin_mut() {
            Some(sleep) => sleep.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_future_ready_at_once_is_not_cut_even_by_a_zero_limit() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_future_that_waits_past_the_limit_is_cut() {
        let slow = tokio::time::sleep(Duration::from_millis(400));
        assert_eq!(within(Duration::from_millis(50), slow).await, None);
        let quick = tokio::time::sleep(Duration::from_millis(20));
        assert_eq!(within(Duration::from_millis(400), quick).await, Some(()));
    }
}

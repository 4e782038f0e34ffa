//! Bounds hyper does not keep on a connection served by hyper-util's auto builder (HTTP/2 above all): a first request in time, an idle limit, no stalled response, no reset flood, and a drain that does not wait on idle clients.
//!
//! hyper's HTTP/2 server has no header or idle timeout, and a stream held at a zero
//! flow-control window waits for ever: one client could hold a `--max-connections` slot with
//! a bare preface, and a few hundred could lock everyone out. hyper's HTTP/1 server keeps its
//! own header timeout; HTTP/1 connections on this path are bounded the same way here anyway.
//!
//! Each request's future and response body report to the connection's [`Activity`] (a few
//! relaxed atomics, touched once per request and once per response frame); the connection's
//! task checks it on a coarse tick (half the shortest limit) and when woken by a reset flood or
//! by the end of the last stream during a drain.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// Resets a client may make before the ratio below is applied (browsers cancel some streams).
const RESETS_ALLOWED: u64 = 100;
/// Past [`RESETS_ALLOWED`], a connection that has reset more than this many streams for every
/// one it let finish is closed: each reset stream may have cost the central service a request
/// (CVE-2023-44487 paced below hyper's burst limit).
const RESETS_PER_FINISHED: u64 = 2;
/// The coarsest the connection's check may be; shorter limits tick at half their length.
const TICK_MIN: Duration = Duration::from_millis(20);

/// The limits one auto-served connection runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The first request must begin within this of the connection's start, and a connection
    /// with no stream open is closed after this long (`--client-header-timeout`).
    pub idle: Duration,
    /// A response that has been sending makes no progress for this long: close
    /// (`--client-send-timeout`).
    pub send: Duration,
}

/// What the requests of one connection tell its task.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    opened: AtomicU64,
    finished: AtomicU64,
    reset: AtomicU64,
    /// Responses whose bodies are being sent.
    sending: AtomicU32,
    /// Milliseconds since `epoch` (plus one) of the last stream opened or ended, or frame sent.
    last_event: AtomicU64,
    /// Set by the drain: the end of the last stream wakes the connection's task.
    draining: AtomicBool,
    wake: AtomicWaker,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            epoch: Instant::now(),
            opened: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            reset: AtomicU64::new(0),
            sending: AtomicU32::new(0),
            last_event: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            wake: AtomicWaker::new(),
        })
    }

    /// A request began; the returned guard counts it as reset if dropped before its response.
    pub fn open(self: &Arc<Self>) -> Stream {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Stream {
            activity: Some(self.clone()),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_event.store(ms + 1, Ordering::Relaxed);
    }

    fn last_event(&self) -> Option<Instant> {
        let ms = self.last_event.load(Ordering::Relaxed).checked_sub(1)?;
        Some(self.epoch + Duration::from_millis(ms))
    }

    fn open_streams(&self) -> u64 {
        let ended = self.finished.load(Ordering::Relaxed) + self.reset.load(Ordering::Relaxed);
        self.opened.load(Ordering::Relaxed).saturating_sub(ended)
    }

    fn end(&self, finished: bool) {
        if finished {
            self.finished.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reset.fetch_add(1, Ordering::Relaxed);
        }
        self.touch();
        if (!finished && self.flooding()) || self.draining.load(Ordering::Relaxed) {
            self.wake.wake();
        }
    }

    fn flooding(&self) -> bool {
        let reset = self.reset.load(Ordering::Relaxed);
        reset > RESETS_ALLOWED
            && reset > RESETS_PER_FINISHED * self.finished.load(Ordering::Relaxed)
    }
}

/// One request in flight on an auto-served connection.
pub struct Stream {
    activity: Option<Arc<Activity>>,
}

impl Stream {
    /// The response is ready: its body keeps the stream open until it is sent.
    pub fn respond<B>(mut self, body: B) -> Tracked<B> {
        let activity = self.activity.take();
        if let Some(activity) = &activity {
            activity.sending.fetch_add(1, Ordering::Relaxed);
            activity.touch();
        }
        Tracked { body, activity }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Dropped before a response: the client reset the stream or went away.
        if let Some(activity) = self.activity.take() {
            activity.end(false);
        }
    }
}

/// A response body that reports its progress to its connection's [`Activity`].
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    activity: Option<Arc<Activity>>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let (Poll::Ready(_), Some(activity)) = (&polled, &this.activity) {
            activity.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.sending.fetch_sub(1, Ordering::Relaxed);
            activity.end(true);
        }
    }
}

/// The two calls [`run`] needs from a served connection.
pub trait Connection: Future + Unpin {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

/// Why [`run`] returned.
#[derive(Debug)]
pub enum Ended<T> {
    /// hyper finished the connection, with this result.
    Closed(T),
    /// Cut by one of the bounds; the label is for the log.
    Cut(&'static str),
}

/// Drives `conn` until it ends, a bound is crossed, or `drain` fires and it has no open stream.
pub async fn run<C: Connection>(
    mut conn: C,
    activity: &Activity,
    limits: Limits,
    drain: impl Future<Output = ()>,
) -> Ended<C::Output> {
    let started = Instant::now();
    let tick_every = (limits.idle.min(limits.send) / 2).max(TICK_MIN);
    let mut tick = std::pin::pin!(tokio::time::sleep(tick_every));
    let mut drain = std::pin::pin!(drain);
    let mut draining = false;
    poll_fn(|cx| {
        activity.wake.register(cx.waker());
        if !draining && drain.as_mut().poll(cx).is_ready() {
            draining = true;
            activity.draining.store(true, Ordering::Relaxed);
            Pin::new(&mut conn).graceful_shutdown();
        }
        if let Poll::Ready(result) = Pin::new(&mut conn).poll(cx) {
            return Poll::Ready(Ended::Closed(result));
        }
        if activity.flooding() {
            return Poll::Ready(Ended::Cut("reset_flood"));
        }
        // After `graceful_shutdown` hyper has queued GOAWAY and the poll above has written it;
        // an HTTP/2 client that ignores the drain PING would otherwise hold the drain.
        if draining && activity.open_streams() == 0 {
            return Poll::Ready(Ended::Cut("drain"));
        }
        while tick.as_mut().poll(cx).is_ready() {
            if let Some(bound) = crossed(activity, limits, started) {
                return Poll::Ready(Ended::Cut(bound));
            }
            tick.as_mut().reset(Instant::now() + tick_every);
        }
        Poll::Pending
    })
    .await
}

/// The bound `activity` has crossed, if any.
fn crossed(activity: &Activity, limits: Limits, started: Instant) -> Option<&'static str> {
    let now = Instant::now();
    let Some(last) = activity.last_event() else {
        return (now >= started + limits.idle).then_some("first_request_timeout");
    };
    if activity.open_streams() == 0 {
        return (now >= last + limits.idle).then_some("idle_timeout");
    }
    let sending = activity.sending.load(Ordering::Relaxed) > 0;
    (sending && now >= last + limits.send).then_some("send_timeout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_resets_far_more_than_it_finishes_is_flooding() {
        let activity = Activity::new();
        for _ in 0..40 {
            drop(activity.open().respond(()));
        }
        for _ in 0..RESETS_ALLOWED {
            drop(activity.open());
        }
        assert!(!activity.flooding(), "within the allowance");
        drop(activity.open());
        assert!(
            activity.flooding(),
            "past the allowance, 101 resets to 40 finished"
        );
        for _ in 0..20 {
            drop(activity.open().respond(()));
        }
        assert!(
            !activity.flooding(),
            "101 resets to 60 finished is a client that cancels"
        );
        assert_eq!(activity.open_streams(), 0);
    }

    #[test]
    fn open_streams_count_until_their_bodies_are_dropped() {
        let activity = Activity::new();
        let stream = activity.open();
        assert_eq!(activity.open_streams(), 1);
        let body = stream.respond(());
        assert_eq!(activity.open_streams(), 1);
        assert_eq!(activity.sending.load(Ordering::Relaxed), 1);
        drop(body);
        assert_eq!(activity.open_streams(), 0);
        assert_eq!(activity.sending.load(Ordering::Relaxed), 0);
    }
}

//! Parks idle HTTP/1 keep-alive connections: hyper's per-connection state is dropped while the client is silent, and a fresh hyper connection resumes on the same socket.
//!
//! An idle hyper HTTP/1 connection keeps ~20 KiB: an 8 KiB read buffer reserved for the next
//! head, an 8 KiB header write buffer, the boxed slot for the service future, cached headers.
//! A connection that has waited [`PARK_AFTER`] for its next request head is taken apart with
//! `into_parts` (nothing is written, nothing is shut down) and only the socket is kept; when the
//! client sends again, or closes, a new `http1::Connection` is started on it.
//!
//! # When parking is safe
//!
//! hyper offers no "is idle" query, so parking rests on three observations, all required:
//!
//! 1. **hyper is waiting for a request head.** hyper arms its header-read timer ([`HeadTimer`])
//!    only inside `Conn::poll_read_head`, which runs only when no service future is in flight
//!    and the previous exchange is finished (`Reading::Init`, reached through `State::idle`
//!    after the request body was read to its end and the response fully encoded), and it drops
//!    that timer as soon as a head has been parsed. So "a header timer is alive" means: no
//!    request in flight, no response body pending, no request body half read. (A head that
//!    fails to parse also leaves the timer alive, but then bytes were read that are not whole
//!    requests, which 2 rules out.)
//! 2. **No byte of a next request has been read.** [`FramingWatch`] follows every byte hyper
//!    reads; it must be at a request boundary with as many heads seen as the service was handed.
//!    So hyper's read buffer is empty and nothing is lost or replayed mid-message. (Should it
//!    hold bytes anyway, they start at the boundary hyper itself reached, and are replayed.)
//! 3. **No response byte is waiting to be written.** hyper flushes after every step and calls
//!    the socket's `poll_flush` only once its write buffer is empty; `FramingWatch` records
//!    whether the last write-side call ended in `Pending` rather than a completed flush.
//!
//! A connection that hyper itself decides to close (`Connection: close`, HTTP/1.0 without
//! keep-alive, our own `Connection: close` answers, errors, an undrainable body) never reaches
//! 1 with keep-alive on: its future completes instead, hyper shuts the socket down, and it is
//! never resumed. Parking never calls `graceful_shutdown`, which would make hyper add
//! `Connection: close` to a response still to be written.
//!
//! # What stays the same for the client
//!
//! A fresh hyper connection parses the next request exactly as the old one would have: hyper
//! keeps nothing from one exchange to the next but caches. The header-read deadline that hyper
//! armed when it began to wait is carried over: a parked connection is closed at that same
//! instant if nothing arrives, and the resumed connection's first header timer keeps it.
//! A client that closes while parked is shut down as hyper does for an idle connection. On
//! graceful shutdown a parked connection, or a resumed one still waiting for its first head,
//! is closed at once, as hyper closes an idle one.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper::service::{service_fn, HttpService};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::deadline::SendDeadline;
use super::framing::{FramingWatch, Verdicts};
use super::Handler;
use crate::shutdown::Shutdown;

/// A client socket as every HTTP/1 connection is served: its framing watched, its sends paced.
pub type ClientIo = FramingWatch<SendDeadline<TcpStream>>;

/// How long hyper must have waited for the next request head before its connection is parked.
///
/// Parking and resuming cost two 8 KiB allocations and a new hyper connection, a few
/// microseconds: far below the cost of the request that follows, yet a connection sending
/// requests back to back must not pay it per request. 100 ms is far above the gap between
/// pipelined or back-to-back requests and far below a typical keep-alive idle time (seconds);
/// it also bounds the check to one timer wake-up per 100 ms on a busy connection.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// Counts of park and resume events, for tests and operators.
#[derive(Debug, Default)]
pub struct Stats {
    parked: AtomicU64,
    resumed: AtomicU64,
    /// Parked connections that ended without resuming (client gone, idle deadline, drain).
    ended_parked: AtomicU64,
    /// hyper closed the connection at its header-read deadline.
    header_timeouts: AtomicU64,
}

impl Stats {
    /// Connections parked now.
    pub fn parked_now(&self) -> u64 {
        let left = self.resumed() + self.ended_parked.load(Ordering::Relaxed);
        self.parked().saturating_sub(left)
    }

    pub fn header_timeouts(&self) -> u64 {
        self.header_timeouts.load(Ordering::Relaxed)
    }

    pub fn parked(&self) -> u64 {
        self.parked.load(Ordering::Relaxed)
    }

    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }
}

/// What one connection's [`HeadTimer`] has seen: the header-read wait hyper currently has armed.
///
/// Instants are stored as nanoseconds since `epoch` plus one, so that 0 means "none".
/// hyper arms, drops and polls its timer inside our own polls of the same task, so `Relaxed`
/// atomics suffice; they are atomics only because hyper's `Sleep` must be `Send + Sync`.
#[derive(Debug)]
pub struct HeadWait {
    epoch: Instant,
    /// Id of the header-read sleep hyper holds now; 0 when it holds none.
    live: AtomicU64,
    next_id: AtomicU64,
    /// When the live wait began.
    since: AtomicU64,
    /// The live wait's deadline.
    deadline: AtomicU64,
    /// A deadline carried over from a parked connection, for the next wait to keep.
    inherited: AtomicU64,
}

impl HeadWait {
    /// A connection's record, made in the accept loop (see `Acceptor::connection`).
    pub fn shared() -> Arc<Self> {
        Arc::new(HeadWait::new())
    }

    fn new() -> Self {
        HeadWait {
            epoch: Instant::now(),
            live: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            since: AtomicU64::new(0),
            deadline: AtomicU64::new(0),
            inherited: AtomicU64::new(0),
        }
    }

    fn encode(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
            + 1
    }

    fn decode(&self, raw: u64) -> Option<Instant> {
        let nanos = raw.checked_sub(1)?;
        Some(self.epoch + Duration::from_nanos(nanos))
    }

    /// When the wait hyper has armed began and when it ends, if hyper is waiting for a head.
    fn current(&self) -> Option<(Instant, Instant)> {
        if self.live.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let since = self.decode(self.since.load(Ordering::Relaxed))?;
        let deadline = self.decode(self.deadline.load(Ordering::Relaxed))?;
        Some((since, deadline))
    }
}

/// hyper's HTTP/1 timer for one connection: records the header-read wait, and needs no timer
/// registration of its own.
///
/// hyper's HTTP/1 server uses its timer for `header_read_timeout` only (hyper 1.x,
/// `proto/h1/conn.rs`): `sleep_until(now + timeout)` when it starts waiting for a head, polled
/// whenever the read is pending, dropped once a head is parsed. A tokio sleep per request cost
/// ~1,000 instructions (register and deregister in the timer wheel, on every request), though it
/// almost never fires. [`HeadSleep`] only compares the clock with its deadline: the park tick
/// in [`Life::run`] wakes the connection's task at least every [`PARK_AFTER`] while hyper
/// waits for a head, and each wake-up polls hyper, which polls the sleep. So the header
/// timeout fires at most `PARK_AFTER` late; an idle wait is parked before that anyway, and a
/// parked connection keeps the deadline (see [`parked`]).
struct HeadTimer {
    wait: Arc<HeadWait>,
    /// The configured `header_read_timeout`: hyper's deadline minus this is when the wait
    /// began (cheaper than reading the clock again on every request).
    timeout: Duration,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        let wait = &self.wait;
        let asked = Instant::from_std(deadline);
        let since = asked.checked_sub(self.timeout).unwrap_or(asked);
        let mut deadline = asked;
        if let Some(inherited) = wait.decode(wait.inherited.swap(0, Ordering::Relaxed)) {
            deadline = deadline.min(inherited);
        }
        let id = wait.next_id.fetch_add(1, Ordering::Relaxed);
        wait.since.store(wait.encode(since), Ordering::Relaxed);
        wait.deadline
            .store(wait.encode(deadline), Ordering::Relaxed);
        wait.live.store(id, Ordering::Relaxed);
        Box::pin(HeadSleep {
            deadline,
            _guard: WaitGuard {
                wait: wait.clone(),
                id,
            },
        })
    }

    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
}

/// One header-read wait; dropping it (hyper parsed a head, or went away) ends the wait.
struct HeadSleep {
    deadline: Instant,
    /// Held for its `Drop`: ends the wait in [`HeadWait`].
    _guard: WaitGuard,
}

impl Future for HeadSleep {
    type Output = ();

    /// Ready once the deadline has passed; the park tick, not this sleep, wakes the task.
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for HeadSleep {}

/// Clears [`HeadWait::live`] when the wait it marks ends.
struct WaitGuard {
    wait: Arc<HeadWait>,
    id: u64,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        // Only the live wait clears the mark: when hyper replaces a sleep, the new one is made
        // before the old one is dropped.
        let _ = self
            .wait
            .live
            .compare_exchange(self.id, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// How one hyper incarnation of the connection ended.
enum Ended {
    /// hyper finished the connection itself (closed, shut down, or failed).
    Closed(hyper::Result<()>),
    /// Idle long enough: take hyper's connection apart and keep the socket.
    Park,
    /// Graceful shutdown reached a resumed connection that is still waiting for its first head:
    /// close it as hyper closes an idle connection.
    CloseIdle,
}

/// How a parked connection's wait ended.
enum Woken {
    /// The client sent bytes: resume.
    Data,
    /// The client closed, or the socket failed: shut down and close, as hyper does when idle.
    Gone,
    /// The header-read deadline passed: close without a word, as hyper's header timeout does.
    TimedOut,
    /// Graceful shutdown: close, as hyper closes an idle connection.
    Drain,
}

/// Serves one HTTP/1 client connection until it closes, parking it whenever it idles.
///
/// `builder` is the HTTP/1 configuration without a timer (each incarnation gets its own
/// [`HeadTimer`]), with `header_timeout` as its `header_read_timeout`. `handler` is wrapped
/// here in the connection's service, which passes every request through the framing watch of
/// `io` ([`Verdicts::mark`]) before handing it on. `wait` is the connection's fresh
/// [`HeadWait::shared`].
///
/// An `async` block, not an `async fn`: an `async fn` copies each argument into a local of
/// its own and its future keeps both, `io` twice (208 bytes more in every connection's task).
#[allow(clippy::manual_async_fn)]
pub fn serve<'a, H: Handler>(
    mut io: ClientIo,
    wait: Arc<HeadWait>,
    handler: Arc<H>,
    builder: &'a http1::Builder,
    header_timeout: Duration,
    shutdown: &'a Shutdown,
    stats: &'a Stats,
) -> impl Future<Output = ()> + 'a {
    async move {
        let verdicts = io.verdicts().clone();
        let mut service = {
            let verdicts = verdicts.clone();
            service_fn(move |mut request| {
                verdicts.mark(&mut request);
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.handle(request).await) }
            })
        };
        let mut drain = std::pin::pin!(shutdown.closing());
        let mut life = Life {
            wait: &wait,
            verdicts: &verdicts,
            shutdown,
            draining: false,
            resumed: false,
        };
        loop {
            // Boxed, with the loop below, so that a parked connection's task does not keep room for
            // hyper's connection and the park timer: one allocation per incarnation, not per request.
            let mut conn = Box::new(incarnation(
                builder,
                &wait,
                header_timeout,
                TokioIo::new(io),
                service,
            ));
            let ended = Box::pin(life.run(&mut *conn, drain.as_mut())).await;
            // Read before `into_parts` drops hyper's header timer.
            let deadline = wait.current().map(|(_, deadline)| deadline);
            match (ended, deadline) {
                (Ended::Closed(result), _) => {
                    if let Err(e) = result {
                        if e.is_timeout() {
                            stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        tracing::debug!(error = %e, "client connection ended with an error");
                    }
                    return;
                }
                (Ended::CloseIdle, _) | (Ended::Park, None) => {
                    let mut io = unbox(conn).into_parts().io.into_inner();
                    let _ = io.shutdown().await;
                    return;
                }
                (Ended::Park, Some(deadline)) => {
                    let http1::Parts {
                        io: parked_io,
                        read_buf,
                        service: parked_service,
                        ..
                    } = unbox(conn).into_parts();
                    io = parked_io.into_inner();
                    service = parked_service;
                    stats.parked.fetch_add(1, Ordering::Relaxed);
                    let woken = if read_buf.is_empty() {
                        // An empty `Bytes` from hyper still owns its 8 KiB read buffer: let it go
                        // before waiting, or parking saves little.
                        drop(read_buf);
                        parked(&io, deadline, drain.as_mut()).await
                    } else {
                        // Not expected (see the module doc), but these bytes start where hyper's
                        // previous message ended, so handing them to the next incarnation is exact.
                        io.replay(read_buf);
                        Woken::Data
                    };
                    match woken {
                        Woken::Data => {
                            wait.inherited
                                .store(wait.encode(deadline), Ordering::Relaxed);
                            life.resumed = true;
                            stats.resumed.fetch_add(1, Ordering::Relaxed);
                        }
                        Woken::Gone | Woken::Drain => {
                            stats.ended_parked.fetch_add(1, Ordering::Relaxed);
                            let _ = io.shutdown().await;
                            return;
                        }
                        Woken::TimedOut => {
                            stats.ended_parked.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The boxed incarnation, its box freed now. (`(*conn).into_parts()` moved the connection out
/// but left the box allocated until `conn` went out of scope: past the parked wait, so every
/// parked connection kept 800 bytes of nothing.)
#[allow(clippy::boxed_local)] // the box by value is the point: it is freed on return
fn unbox<T>(conn: Box<T>) -> T {
    *conn
}

/// A hyper HTTP/1 connection on `io` whose timer records its header waits in `wait`.
fn incarnation<S, B>(
    builder: &http1::Builder,
    wait: &Arc<HeadWait>,
    header_timeout: Duration,
    io: TokioIo<ClientIo>,
    service: S,
) -> http1::Connection<TokioIo<ClientIo>, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = builder.clone();
    builder.timer(HeadTimer {
        wait: wait.clone(),
        timeout: header_timeout,
    });
    builder.serve_connection(io, service)
}

/// What one connection's incarnations share.
struct Life<'a> {
    wait: &'a HeadWait,
    verdicts: &'a Verdicts,
    /// Asked on each wake-up whether a drain may have begun (a cheap load).
    shutdown: &'a Shutdown,
    /// Graceful shutdown has begun: never park again.
    draining: bool,
    /// The current incarnation started on a parked socket.
    resumed: bool,
}

impl Life<'_> {
    /// Drives one hyper connection until it ends or should be parked.
    async fn run<C>(&mut self, conn: &mut C, mut drain: Pin<&mut impl Future<Output = ()>>) -> Ended
    where
        C: GracefulConnection,
    {
        let dispatched_before = self.verdicts.dispatched();
        let mut tick = std::pin::pin!(tokio::time::sleep(PARK_AFTER));
        // The tick and the drain signal keep this task's waker once polled, so on a busy
        // connection they are polled again only when they may have fired: the tick once
        // elapsed, the drain signal once the server has begun shutting down. Polling both on
        // every wake-up cost ~600 instructions a request.
        let mut tick_polled = false;
        let mut drain_polled = false;
        std::future::poll_fn(|cx| {
            let drain_may_fire = !drain_polled || self.shutdown.is_requested();
            drain_polled = true;
            if !self.draining && drain_may_fire && drain.as_mut().poll(cx).is_ready() {
                self.draining = true;
                // hyper closes an idle connection at once, but a fresh one that holds bytes of
                // a first head would finish that request first: a resumed connection still
                // waiting for its first head is closed here instead, as it was idle to hyper.
                if self.resumed
                    && self.wait.current().is_some()
                    && self.verdicts.dispatched() == dispatched_before
                {
                    return Poll::Ready(Ended::CloseIdle);
                }
                Pin::new(&mut *conn).graceful_shutdown();
            }
            // A timer checked at most once per `PARK_AFTER`, never reset per request.
            while !self.draining && (!tick_polled || tick.is_elapsed()) {
                tick_polled = true;
                if tick.as_mut().poll(cx).is_pending() {
                    break;
                }
                tick_polled = false;
                let now = Instant::now();
                let next = match self.wait.current() {
                    Some((since, _)) if now >= since + PARK_AFTER => {
                        if self.verdicts.parkable() {
                            return Poll::Ready(Ended::Park);
                        }
                        now + PARK_AFTER
                    }
                    Some((since, _)) => since + PARK_AFTER,
                    None => now + PARK_AFTER,
                };
                tick.as_mut().reset(next);
            }
            Pin::new(&mut *conn).poll(cx).map(Ended::Closed)
        })
        .await
    }
}

/// The two calls [`Life::run`] needs from hyper's HTTP/1 connection.
trait GracefulConnection: Future<Output = hyper::Result<()>> + Unpin {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::Connection::graceful_shutdown(self);
    }
}

/// Waits, holding only the socket, until the client sends or closes, the header-read deadline
/// passes, or graceful shutdown begins.
///
/// Polled by hand rather than with `select!` over `peek()`: the `peek` future carries its own
/// waiter node (232 bytes), and this future's size is part of every connection's task.
async fn parked(
    io: &ClientIo,
    deadline: Instant,
    mut drain: Pin<&mut impl Future<Output = ()>>,
) -> Woken {
    let mut expired = std::pin::pin!(tokio::time::sleep_until(deadline));
    std::future::poll_fn(|cx| {
        if drain.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woken::Drain);
        }
        // `poll_peek`, not read readiness alone: readiness can be reported before any byte
        // arrived.
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        match io.get_ref().get_ref().poll_peek(cx, &mut buf) {
            Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Woken::Gone),
            Poll::Ready(Ok(_)) => return Poll::Ready(Woken::Data),
            Poll::Pending => {}
        }
        expired.as_mut().poll(cx).map(|()| Woken::TimedOut)
    })
    .await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket};

    use super::*;

    const BODY: usize = 16 << 20;

    /// Answers every request with a body far larger than the kernel will take at once.
    struct Huge;

    impl Handler for Huge {
        type Body = Full<Bytes>;

        async fn handle(&self, _request: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
            http::Response::new(Full::new(Bytes::from(vec![b'x'; BODY])))
        }
    }

    /// No parking while response bytes are unsent, end to end: one `Full` body far larger than
    /// the kernel will take is encoded whole into hyper's buffer while the client reads nothing
    /// for several park periods. Parked then, the bytes would be lost with hyper's buffer.
    /// (hyper 1.12 itself turns idle only after a complete flush, so today this holds even
    /// without `Verdicts::parkable`'s pending-write check — checked by disabling it; the test
    /// pins the property for whichever of the two guards a hyper upgrade leaves.)
    #[tokio::test]
    async fn a_connection_with_unsent_response_bytes_is_not_parked() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();

        let peer = stream.peer_addr().unwrap();
        let socket = SendDeadline::new(stream, Duration::from_secs(30), peer);
        let io = FramingWatch::new(socket, Verdicts::new());
        let handler = Arc::new(Huge);
        let mut builder = http1::Builder::new();
        builder
            .header_read_timeout(Duration::from_secs(30))
            .writev(false);
        let stats = Stats::default();
        let shutdown = Shutdown::new();
        let server = serve(
            io,
            HeadWait::shared(),
            handler,
            &builder,
            Duration::from_secs(30),
            &shutdown,
            &stats,
        );

        let client_side = async {
            client
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            // Read nothing for several park periods: hyper sits on unsent bytes meanwhile.
            tokio::time::sleep(PARK_AFTER * 5).await;
            let parked_while_stalled = stats.parked();
            let mut received = Vec::with_capacity(BODY + 1024);
            let mut chunk = vec![0u8; 64 * 1024];
            let complete = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    let n = client.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed after {} bytes", received.len());
                    received.extend_from_slice(&chunk[..n]);
                    if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                        if received.len() >= end + 4 + BODY {
                            return end + 4;
                        }
                    }
                }
            })
            .await;
            let Ok(head_len) = complete else {
                panic!("only {} bytes arrived: the rest was lost", received.len());
            };
            assert_eq!(received.len(), head_len + BODY, "nothing after the body");
            assert!(received[head_len..].iter().all(|&b| b == b'x'));
            // Once everything is written, the idle connection parks as usual.
            tokio::time::sleep(PARK_AFTER * 4).await;
            (parked_while_stalled, stats.parked())
        };

        let (stalled, after) = tokio::select! {
            () = server => panic!("the server side ended"),
            counts = client_side => counts,
        };
        assert_eq!(stalled, 0, "parked with response bytes unsent");
        assert_eq!(after, 1, "parked once the response was out");
    }
}

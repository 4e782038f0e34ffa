//! The listener's owner: accept loop with a connection cap, one connection task per client (HTTP/1 parked when idle, the rest through hyper-util's auto builder), graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::bounds::{self as conn_bounds, Activity};
use super::deadline::SendDeadline;
use super::detect::{self, Protocol};
use super::framing::{FramingWatch, Verdicts};
use super::park::{self, ClientIo};
use super::{ConnStats, Handler, Settings};
use crate::shutdown::{Phase, Shutdown};

/// Largest request head (request line + headers) an HTTP/1 client may send; beyond it, 431.
/// nginx's default `large_client_header_buffers` allows 8 KiB per line; 16 KiB leaves room
/// for cookies without inviting abuse.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// HTTP/2 streams one client may have open at once (nginx: 128, Envoy: 100).
const H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// HTTP/2 header list size, the same budget as HTTP/1's head.
const H2_MAX_HEADER_LIST: u32 = 16 * 1024;
/// Back-off after an accept error such as EMFILE: from 5 ms, doubling up to 1 s.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Serves `listener`, one `make(peer)` handler per client, until `shutdown` is requested; then
/// keeps accepting for `--shutdown-delay`, closes the listener, and drains the connections
/// for at most `--shutdown-grace` before it cuts those left.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    settings: Settings,
    make: impl Fn(SocketAddr) -> H,
    shutdown: &Shutdown,
    stats: Arc<ConnStats>,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(&settings));
    let http1 = Arc::new(http1_builder(&settings));
    let permits = stats.permits.clone();
    let mut connections = JoinSet::new();
    // Gives a burst's freed memory back once connections have parked; ends with `serve`. The
    // heap is the process's: with several workers, the first accept loop runs it.
    let _trimmer = stats
        .claim_trimmer()
        .then(|| AbortOnDrop(tokio::spawn(super::trim::run(stats.clone()))));
    let mut acceptor = Acceptor {
        listener,
        make,
        builder,
        http1,
        permits,
        settings,
        shutdown: shutdown.clone(),
        stats,
        backoff: ACCEPT_BACKOFF_MIN,
        waiting: None,
    };

    acceptor
        .run_until(shutdown.wait_for(Phase::Requested), &mut connections)
        .await;
    shutdown.advance(Phase::Requested);
    tracing::info!(delay = ?settings.shutdown_delay, "shutdown requested; readyz now 503");
    // Keep serving while the load balancer notices readyz, then stop accepting.
    acceptor
        .run_until(
            tokio::time::sleep(settings.shutdown_delay),
            &mut connections,
        )
        .await;
    drop(acceptor);

    let grace = settings.shutdown_grace;
    // Finished connections stay in the set until joined: count only those still running.
    while connections.try_join_next().is_some() {}
    tracing::info!(
        open = connections.len(),
        ?grace,
        "listener closed; draining connections"
    );
    shutdown.advance(Phase::Closing);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        while connections.try_join_next().is_some() {}
        // From here on a request dropped unanswered was cut by us, not left by its client.
        shutdown.advance(Phase::Cutting);
        tracing::warn!(
            cut = connections.len(),
            "shutdown grace ran out; cutting the connections still open"
        );
    }
    connections.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// The HTTP/1 settings, written once for both builders: hyper's `http1::Builder` (parked
/// connections) and the auto builder's HTTP/1 half share these methods but no trait.
macro_rules! http1_settings {
    ($builder:expr, $settings:expr) => {
        $builder
            .header_read_timeout($settings.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            // Flatten small answers into one buffer and one `write` instead of a `writev` of
            // head and body: ~500 fewer instructions per request (callgrind); a streamed body
            // is copied through a buffer bounded by `max_buf_size`.
            .writev(false)
            .keep_alive(true)
    };
}

/// The auto builder, for connections not known to be HTTP/1 from their first bytes.
fn connection_builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    http1_settings!(builder.http1().timer(TokioTimer::new()), settings);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        // hyper's CVE-2023-44487 (rapid reset) protection: bound streams reset before accept.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        // A peer that stops answering PINGs while a stream is open is gone: close.
        .keep_alive_interval(settings.header_timeout)
        .keep_alive_timeout(settings.send_timeout);
    builder
}

/// HTTP/1 as the auto builder is configured for it, without a timer: `park` gives each hyper
/// connection its own (hyper's HTTP/1 server uses the timer for `header_read_timeout` only).
fn http1_builder(settings: &Settings) -> http1::Builder {
    let mut builder = http1::Builder::new();
    http1_settings!(builder, settings);
    builder
}

struct Acceptor<M> {
    listener: TcpListener,
    /// Makes the handler of one client.
    make: M,
    builder: Arc<auto::Builder<TokioExecutor>>,
    http1: Arc<http1::Builder>,
    permits: Arc<Semaphore>,
    settings: Settings,
    shutdown: Shutdown,
    stats: Arc<ConnStats>,
    backoff: Duration,
    /// A client accepted at `--max-connections`, waiting for a slot; kept across the two
    /// `run_until` calls, so a shutdown request does not drop it (it is served during
    /// `--shutdown-delay` if a slot frees, and closed with the listener if none does).
    waiting: Option<(TcpStream, SocketAddr)>,
}

impl<M: Fn(SocketAddr) -> H, H: Handler> Acceptor<M> {
    /// Accepts connections until `stop` resolves.
    ///
    /// At `--max-connections` an accepted client waits, unserved, for a slot, and the loop
    /// accepts nothing more: new connections wait in the kernel's listen backlog (as nginx's
    /// `worker_connections` does) instead of being refused, and the open ones are unaffected.
    /// A slot is taken only for a connection already accepted: with several workers (one
    /// listener each) a slot freed anywhere goes to a worker that has a client waiting, never
    /// to one idling on an empty listener.
    async fn run_until(
        &mut self,
        stop: impl std::future::Future<Output = ()>,
        connections: &mut JoinSet<()>,
    ) {
        tokio::pin!(stop);
        loop {
            while connections.try_join_next().is_some() {}
            if let Some((stream, peer)) = self.waiting.take() {
                let permit = tokio::select! {
                    biased;
                    () = &mut stop => {
                        self.waiting = Some((stream, peer));
                        return;
                    }
                    permit = self.permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return, // the semaphore is never closed
                    },
                };
                let connection = self.connection(stream, peer);
                connections.spawn(connection.serve(permit));
            }
            let accepted = tokio::select! {
                biased;
                () = &mut stop => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                        let connection = self.connection(stream, peer);
                        connections.spawn(connection.serve(permit));
                    } else {
                        self.stats.hit_cap();
                        self.waiting = Some((stream, peer));
                    }
                }
                Err(e) if is_per_connection(&e) => {
                    tracing::debug!(error = %e, "accept: peer gave up");
                }
                Err(e) => {
                    // EMFILE/ENFILE/ENOMEM: the listener is fine, the process is out of something.
                    tracing::error!(error = %e, backoff = ?self.backoff, "accept failed; backing off");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }

    /// Everything a parked HTTP/1 connection keeps is allocated here or at its `spawn`, in the
    /// accept loop, so that connections accepted together keep their state side by side.
    /// Allocated on the connection's first poll instead, it lay between the buffers of its
    /// first request, and after a burst those pages could not be handed back when the buffers
    /// were freed. (A client that waited at the connection cap gets it when a slot frees.)
    fn connection(&self, stream: TcpStream, peer: SocketAddr) -> PendingConnection<H> {
        // Small JSON answers must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let socket = SendDeadline::new(stream, self.settings.send_timeout, peer);
        PendingConnection {
            io: FramingWatch::new(socket, Verdicts::new()),
            wait: park::HeadWait::shared(),
            peer,
            // On the heap from the start: the task keeps only a pointer to it.
            service: Arc::new((self.make)(peer)),
            builder: self.builder.clone(),
            http1: self.http1.clone(),
            settings: self.settings,
            shutdown: self.shutdown.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// An accepted client that has not sent anything yet.
struct PendingConnection<H> {
    /// The client's socket, as every connection is served.
    io: ClientIo,
    /// Its HTTP/1 header-read waits, should it speak HTTP/1.
    wait: Arc<park::HeadWait>,
    peer: SocketAddr,
    service: Arc<H>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    http1: Arc<http1::Builder>,
    settings: Settings,
    shutdown: Shutdown,
    stats: Arc<ConnStats>,
}

impl<H: Handler> PendingConnection<H> {
    /// Resolves once the client has sent something (or closed), with what it looks like.
    async fn first_bytes(&self) -> Protocol {
        // `peek` waits for data (or EOF) without consuming it; `readable()` can report a
        // fresh socket ready before anything arrived.
        // `poll_peek` by hand: the `peek` future carries a waiter node that would size the task.
        let mut head = [0u8; detect::PREFIX_LEN];
        let peeked = std::future::poll_fn(|cx| {
            self.io
                .get_ref()
                .get_ref()
                .poll_peek(cx, &mut tokio::io::ReadBuf::new(&mut head))
        })
        .await;
        match peeked {
            Ok(n) => detect::protocol(&head[..n]),
            Err(_) => Protocol::Unsure,
        }
    }

    /// Serves the connection until it closes or graceful shutdown has drained it; `permit` is
    /// its `--max-connections` slot.
    ///
    /// One future for the whole life (not a spawned future awaiting a second one), so that the
    /// connection's parts are stored once in its task, which a parked connection keeps; and an
    /// `async` block returned by a plain function rather than an `async fn`, which would copy
    /// `self` into a local of its own and keep both (`-Zprint-type-sizes`: 168 bytes more in
    /// every connection's task). The parts are used where they are, never moved into a local
    /// that lives across an `.await`.
    #[allow(clippy::manual_async_fn)]
    fn serve(self, permit: OwnedSemaphorePermit) -> impl Future<Output = ()> {
        async move {
            let open = self.stats.accepted();
            // hyper-util's auto builder reads the first bytes (to choose HTTP/1 or HTTP/2) with no
            // deadline of its own, and hyper's header timeout starts only after that: a client that
            // never speaks would hold its slot forever.
            let first_bytes = self.settings.header_timeout;
            let Ok(protocol) = tokio::time::timeout(first_bytes, self.first_bytes()).await else {
                self.stats.header_timeout();
                return;
            };
            let settings = self.settings;
            match protocol {
                Protocol::Http1 => {
                    park::serve(
                        self.io,
                        self.wait,
                        self.service,
                        &self.http1,
                        settings.header_timeout,
                        &self.shutdown,
                        &self.stats.park,
                    )
                    .await;
                }
                Protocol::Unsure => {
                    // The HTTP/1 header-wait record is not needed on this path.
                    drop(self.wait);
                    let activity = Activity::new();
                    let service = {
                        let activity = activity.clone();
                        // HTTP/1 on this path goes through the same framing watch as a parked one.
                        let verdicts = self.io.verdicts().clone();
                        let service = self.service;
                        service_fn(move |mut request| {
                            verdicts.mark(&mut request);
                            let stream = activity.open();
                            let service = service.clone();
                            async move {
                                let response = service.handle(request).await;
                                Ok::<_, Infallible>(response.map(|body| stream.respond(body)))
                            }
                        })
                    };
                    // Boxed: the auto connection (with its HTTP/2 state) would otherwise size every
                    // connection's task, parked HTTP/1 ones included.
                    let connection = Box::pin(
                        self.builder
                            .serve_connection(TokioIo::new(self.io), service),
                    );
                    let limits = conn_bounds::Limits {
                        idle: settings.header_timeout,
                        send: settings.send_timeout,
                    };
                    let drain = self.shutdown.closing();
                    let ended =
                        Box::pin(conn_bounds::run(connection, &activity, limits, drain)).await;
                    match ended {
                        conn_bounds::Ended::Closed(Ok(())) => {}
                        conn_bounds::Ended::Closed(Err(e)) => {
                            tracing::debug!(error = %e, "client connection ended with an error");
                        }
                        conn_bounds::Ended::Cut(why) => {
                            if why == "first_request_timeout" {
                                self.stats.header_timeout();
                            }
                            tracing::debug!(peer = %self.peer, why, "client connection closed");
                        }
                    }
                }
            }
            // Held to the end (and so moved into this future): the connection's slot, given
            // back after it stops counting as open, as the two always went.
            drop(open);
            drop(permit);
        }
    }
}

/// The auto builder's connection, as [`conn_bounds::run`] drives it.
impl<I, S, B> conn_bounds::Connection for Pin<Box<auto::Connection<'_, I, S, TokioExecutor>>>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        self.get_mut().as_mut().graceful_shutdown();
    }
}

/// Accept errors that concern one connection only; the next `accept` may succeed at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Aborts a background task when `serve` returns (the runtime may outlive it, as in tests).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

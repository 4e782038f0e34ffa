//! The listener's owner: accept loop with a connection cap, one connection task per client (HTTP/1 parked when idle, the rest through hyper-util's auto builder), graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::conn_bounds::{self, Activity};
use crate::deadline::SendDeadline;
use crate::framing::{FramingWatch, Verdicts};
use crate::park;
use crate::service::{AppState, ProxyService};

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
/// The HTTP/2 connection preface (RFC 9113 §3.4), as hyper-util's auto builder looks for it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `listener` until `shutdown` resolves, then drains (see the contract's §5).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(&state));
    let http1 = Arc::new(http1_builder(&state));
    // hyper-util's graceful watcher only drives hyper's own connection types; a parked HTTP/1
    // connection has none, so HTTP/1 connections hear of the drain here (and hold a watcher
    // only so that `graceful.shutdown()` waits for them).
    let (drain, drained) = watch::channel(());
    let permits = Arc::new(Semaphore::new(
        usize::try_from(state.config.max_connections).unwrap_or(usize::MAX),
    ));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut acceptor = Acceptor {
        listener,
        builder,
        http1,
        drained,
        permits,
        state: state.clone(),
        backoff: ACCEPT_BACKOFF_MIN,
    };

    acceptor
        .run_until(shutdown, &graceful, &mut connections)
        .await;
    state.draining.store(true, Ordering::Relaxed);
    tracing::info!(delay = ?state.config.shutdown_delay, "shutdown requested; readyz now 503");
    // Keep serving while the load balancer notices readyz, then stop accepting.
    acceptor
        .run_until(
            tokio::time::sleep(state.config.shutdown_delay),
            &graceful,
            &mut connections,
        )
        .await;
    drop(acceptor);

    let grace = state.config.shutdown_grace;
    tracing::info!(
        open = graceful.count(),
        ?grace,
        "listener closed; draining connections"
    );
    let _ = drain.send(());
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        // Finished connections stay in the set until joined: count only those still running.
        while connections.try_join_next().is_some() {}
        // From here on a request dropped unanswered was cut by us, not left by its client.
        state.cutting.store(true, Ordering::Relaxed);
        tracing::warn!(
            cut = connections.len(),
            "shutdown grace ran out; cutting the connections still open"
        );
    }
    connections.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// The auto builder, for connections not known to be HTTP/1 from their first bytes. Its HTTP/1
/// settings must stay those of [`http1_builder`].
fn connection_builder(state: &AppState) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.client_header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        // Flatten small answers into one buffer and one `write` instead of a `writev` of head
        // and body: ~500 fewer instructions per request (callgrind); a streamed body is copied
        // through a buffer bounded by `max_buf_size`.
        .writev(false)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        // hyper's CVE-2023-44487 (rapid reset) protection: bound streams reset before accept.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        // A peer that stops answering PINGs while a stream is open is gone: close.
        .keep_alive_interval(state.config.client_header_timeout)
        .keep_alive_timeout(state.config.client_send_timeout);
    builder
}

/// HTTP/1 as the auto builder is configured for it, without a timer: `park` gives each hyper
/// connection its own (hyper's HTTP/1 server uses the timer for `header_read_timeout` only).
fn http1_builder(state: &AppState) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .header_read_timeout(state.config.client_header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .writev(false)
        .keep_alive(true);
    builder
}

struct Acceptor {
    listener: TcpListener,
    builder: Arc<auto::Builder<TokioExecutor>>,
    http1: Arc<http1::Builder>,
    drained: watch::Receiver<()>,
    permits: Arc<Semaphore>,
    state: Arc<AppState>,
    backoff: Duration,
}

impl Acceptor {
    /// Accepts connections until `stop` resolves.
    ///
    /// At `--max-connections`, it stops calling `accept`: new connections wait in the kernel's
    /// listen backlog (as nginx's `worker_connections` does) instead of being refused, and the
    /// open ones are unaffected.
    async fn run_until(
        &mut self,
        stop: impl Future<Output = ()>,
        graceful: &GracefulShutdown,
        connections: &mut JoinSet<()>,
    ) {
        tokio::pin!(stop);
        loop {
            while connections.try_join_next().is_some() {}
            if self.permits.available_permits() == 0 {
                self.state.conns.hit_cap();
            }
            let permit = tokio::select! {
                biased;
                () = &mut stop => return,
                permit = self.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return, // the semaphore is never closed
                },
            };
            let accepted = tokio::select! {
                biased;
                () = &mut stop => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    let connection = self.connection(stream, peer);
                    connections.spawn(connection.serve(permit, graceful.watcher()));
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

    fn connection(&self, stream: TcpStream, peer: SocketAddr) -> PendingConnection {
        // Small JSON answers must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let trusted =
            crate::headers::is_trusted_proxy(&self.state.config.trusted_proxies, peer.ip());
        let framing = Verdicts::new();
        // On the heap from the start: the task keeps only a pointer to it.
        let service = Arc::new(ProxyService {
            state: self.state.clone(),
            peer,
            trusted,
            peer_ip: crate::headers::peer_ip_value(peer),
            framing: framing.clone(),
        });
        PendingConnection {
            stream,
            framing,
            service,
            builder: self.builder.clone(),
            http1: self.http1.clone(),
            drained: self.drained.clone(),
        }
    }
}

/// What the first bytes of a connection say about its protocol.
enum Protocol {
    /// Not a prefix of the HTTP/2 preface: hyper-util's auto builder would choose HTTP/1 too.
    Http1,
    /// The HTTP/2 preface, a prefix of it, or nothing at all: left to the auto builder.
    Unsure,
}

/// An accepted client that has not sent anything yet.
struct PendingConnection {
    stream: TcpStream,
    framing: std::sync::Arc<Verdicts>,
    service: Arc<ProxyService>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    http1: Arc<http1::Builder>,
    drained: watch::Receiver<()>,
}

impl PendingConnection {
    /// Resolves once the client has sent something (or closed), with what it looks like.
    async fn first_bytes(&self) -> Protocol {
        // `peek` waits for data (or EOF) without consuming it; `readable()` can report a
        // fresh socket ready before anything arrived.
        // `poll_peek` by hand: the `peek` future carries a waiter node that would size the task.
        let mut head = [0u8; H2_PREFACE.len()];
        let peeked = std::future::poll_fn(|cx| {
            self.stream
                .poll_peek(cx, &mut tokio::io::ReadBuf::new(&mut head))
        })
        .await;
        match peeked {
            Ok(n) if n > 0 && !H2_PREFACE.starts_with(&head[..n]) => Protocol::Http1,
            _ => Protocol::Unsure,
        }
    }

    /// Serves the connection until it closes or graceful shutdown has drained it; `permit` is
    /// its `--max-connections` slot.
    ///
    /// One `async fn` for the whole life (not a block awaiting a second future) so that the
    /// connection's parts are stored once in its task, which a parked connection keeps.
    async fn serve(self, permit: OwnedSemaphorePermit, watcher: Watcher) {
        let _permit = permit;
        let _open = self.service.state.conns.accepted();
        // hyper-util's auto builder reads the first bytes (to choose HTTP/1 or HTTP/2) with no
        // deadline of its own, and hyper's header timeout starts only after that: a client that
        // never speaks would hold its slot forever.
        let first_bytes = self.service.state.config.client_header_timeout;
        let Ok(protocol) = tokio::time::timeout(first_bytes, self.first_bytes()).await else {
            self.service.state.conns.header_timeout();
            return;
        };
        let state = self.service.state.clone();
        let peer = self.service.peer;
        let socket = SendDeadline::new(self.stream, state.config.client_send_timeout, peer);
        let io = FramingWatch::new(socket, self.framing.clone());
        let service = self.service;
        match protocol {
            Protocol::Http1 => {
                let service = service_fn(move |request| {
                    let service = service.clone();
                    async move { Ok::<_, Infallible>(service.handle(request).await) }
                });
                park::serve(
                    io,
                    service,
                    &self.http1,
                    state.config.client_header_timeout,
                    &self.framing,
                    park::Drain {
                        begun: &state.draining,
                        signal: self.drained,
                    },
                    &state.parking,
                )
                .await;
                // Held until here so that graceful shutdown waits for this connection.
                drop(watcher);
            }
            Protocol::Unsure => {
                let activity = Activity::new();
                let service = {
                    let activity = activity.clone();
                    service_fn(move |request| {
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
                let connection = Box::pin(self.builder.serve_connection(TokioIo::new(io), service));
                let limits = conn_bounds::Limits {
                    idle: state.config.client_header_timeout,
                    send: state.config.client_send_timeout,
                };
                let drain = park::drained(self.drained);
                let ended = Box::pin(conn_bounds::run(connection, &activity, limits, drain)).await;
                match ended {
                    conn_bounds::Ended::Closed(Ok(())) => {}
                    conn_bounds::Ended::Closed(Err(e)) => {
                        tracing::debug!(error = %e, "client connection ended with an error");
                    }
                    conn_bounds::Ended::Cut(why) => {
                        if why == "first_request_timeout" {
                            state.conns.header_timeout();
                        }
                        tracing::debug!(peer = %peer, why, "client connection closed");
                    }
                }
                // Held until here so that graceful shutdown waits for this connection.
                drop(watcher);
            }
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

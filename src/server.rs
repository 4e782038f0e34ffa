//! The listener's owner: accept loop with a connection cap, one hyper-util connection per client, graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::framing::{FramingWatch, Verdicts};
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

/// Serves `listener` until `shutdown` resolves, then drains (see the contract's §5).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(&state));
    let permits = Arc::new(Semaphore::new(
        usize::try_from(state.config.max_connections).unwrap_or(usize::MAX),
    ));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut acceptor = Acceptor {
        listener,
        builder,
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
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown grace ran out; cutting remaining connections"
        );
    }
    connections.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

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
        .max_local_error_reset_streams(1024);
    builder
}

struct Acceptor {
    listener: TcpListener,
    builder: Arc<auto::Builder<TokioExecutor>>,
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
                    let first_bytes = self.state.config.client_header_timeout;
                    let connection = self.connection(stream, peer);
                    let watcher = graceful.watcher();
                    connections.spawn(async move {
                        let _permit = permit;
                        // hyper-util's auto builder reads the first bytes (to choose HTTP/1 or
                        // HTTP/2) with no deadline of its own, and hyper's header timeout starts
                        // only after that: a client that never speaks would hold its slot forever.
                        if tokio::time::timeout(first_bytes, connection.first_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                        connection.serve(watcher).await;
                    });
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
        let trusted = self
            .state
            .config
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip().to_canonical()));
        let framing = Verdicts::new();
        let service = ProxyService {
            state: self.state.clone(),
            peer,
            trusted,
            peer_ip: crate::headers::peer_ip_value(peer),
            framing: framing.clone(),
        };
        PendingConnection {
            stream,
            framing,
            service,
            builder: self.builder.clone(),
        }
    }
}

/// An accepted client that has not sent anything yet.
struct PendingConnection {
    stream: TcpStream,
    framing: std::sync::Arc<Verdicts>,
    service: ProxyService,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl PendingConnection {
    /// Resolves once the client has sent something (or closed).
    async fn first_bytes(&self) {
        // `peek` waits for data (or EOF) without consuming it; `readable()` can report a
        // fresh socket ready before anything arrived.
        let _ = self.stream.peek(&mut [0u8; 1]).await;
    }

    /// Serves the connection until it closes or graceful shutdown has drained it.
    async fn serve(self, watcher: Watcher) {
        let io = TokioIo::new(FramingWatch::new(self.stream, self.framing));
        let service = Arc::new(self.service);
        let service = service_fn(move |request| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(service.handle(request).await) }
        });
        let connection = self.builder.serve_connection(io, service);
        if let Err(e) = watcher.watch(connection).await {
            tracing::debug!(error = %e, "client connection ended with an error");
        }
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

//! Every core: one single-threaded runtime per worker thread, each accepting on its own `SO_REUSEPORT` listener with its own upstream pool.
//!
//! This is nginx's shape (a worker per core, `listen … reuseport`, keep-alive connections per
//! worker) inside one process. A request stays on the thread that accepted its connection: no
//! work stealing, no cross-thread wake-up for an upstream connection's I/O. What must be one
//! per process stays one and is shared through [`AppState::for_worker`]: the
//! `--max-connections` cap, the upstream caps (requests in flight, connections open across
//! every pool) and breaker, the shield, the login limiter, the metrics and the shutdown.
//!
//! Two things still cross threads: the Redis login limiter's one connection (its I/O task runs
//! on the runtime that dialled it) and, with `--dev`, the development auth service (worker 0).
//!
//! Measured against tokio's work-stealing runtime with the same thread count in
//! BENCHMARKS.md ("Every core"); the kernel spreads new connections over the listeners by a
//! hash of their addresses, so a handful of long-lived connections can land unevenly — also
//! measured there.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::state::AppState;

/// Each listener's accept backlog: tokio's `TcpListener::bind` uses the same.
const BACKLOG: u32 = 1024;

/// `count` listeners on `addr`, all on one port (with port 0, the one the kernel gave the
/// first), each with `SO_REUSEPORT` so that the kernel spreads new connections over them.
///
/// A port some other socket listens on is refused ("in use") first: with `SO_REUSEPORT` alone,
/// a second proxy started by mistake under the same user would join the group and quietly take
/// a share of the connections.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        // Without SO_REUSEPORT: fails on any listener already there, reuseport or not.
        drop(std::net::TcpListener::bind(addr)?);
    }
    let first = bind_one(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = Vec::with_capacity(count);
    listeners.push(first);
    for _ in 1..count {
        listeners.push(bind_one(addr)?);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind`: a restart does not wait for the old connections' TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A worker thread serving one listener until the shared shutdown has drained it.
pub struct Worker {
    done: oneshot::Receiver<io::Result<()>>,
}

/// Starts worker `index` on a thread of its own, with a current-thread runtime, serving
/// `listener` with `state` (from [`AppState::for_worker`]). The shutdown `state` shares is
/// what stops it: the worker that holds the signal handlers moves it forward.
pub fn spawn(index: usize, listener: TcpListener, state: AppState) -> io::Result<Worker> {
    // Leaves this runtime's reactor; the worker registers it with its own.
    let listener = listener.into_std()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("auth-proxy-w{index}"))
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    // The accept loop's own lines (shutdown, drain) say which worker logged them.
                    let span = tracing::info_span!("worker", n = index);
                    let serve = async move {
                        let listener = TcpListener::from_std(listener)?;
                        crate::service::serve_until_drained(listener, Arc::new(state)).await
                    };
                    runtime.block_on(serve.instrument(span))
                });
            if let Err(e) = &served {
                // At once, not only when the process stops: its listener is closed, and the
                // kernel sends its share of new connections to the other workers.
                tracing::error!(worker = index, error = %e, "worker stopped");
            }
            let _ = done.send(served);
        })?;
    Ok(Worker { done: finished })
}

impl Worker {
    /// Resolves once the worker has drained and stopped (awaited, never joined: the
    /// runtime that waits may be serving the development auth service the worker calls).
    pub async fn finished(self) -> io::Result<()> {
        self.done
            .await
            .unwrap_or_else(|_| Err(io::Error::other("worker thread ended without a result")))
    }
}

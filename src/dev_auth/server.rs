//! Accepts connections for the dev service and serves them with hyper-util's HTTP/1 + HTTP/2
//! builder until shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reply::Reply;
use super::{handlers, DevAuth};

/// Time a client gets to send a request's headers before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent connections; beyond it new ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 4096;
/// How long in-flight requests may finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the dev service on an already-bound listener until `shutdown` resolves, then stops
/// accepting and gives open connections up to 5 s to finish.
pub async fn serve(
    listener: TcpListener,
    auth: Arc<DevAuth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // Both waits end at shutdown: at the connection cap too.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "dev auth service: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        spawn_connection(&builder, &graceful, stream, auth.clone(), slot);
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
    Ok(())
}

/// Serves one connection on its own task; it holds a connection `slot` until it closes.
fn spawn_connection(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    auth: Arc<DevAuth>,
    slot: OwnedSemaphorePermit,
) {
    let service = service_fn(move |request| {
        let auth = auth.clone();
        async move { Ok::<_, Infallible>(respond(&auth, request).await) }
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        // A client that hangs up or sends garbage only ends its own connection.
        let _ = connection.await;
        drop(slot);
    });
}

async fn respond(auth: &DevAuth, request: hyper::Request<hyper::body::Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = handlers::handle(auth, request).await;
    // Method, path and status only: never headers, tokens or bodies.
    tracing::debug!(%method, %path, status = response.status().as_u16(), "dev auth request");
    response
}

//! auth-proxy: a validating, streaming passthrough proxy in front of a central auth service.
//!
//! A request flows one way:
//! ```text
//! server   accept (connection cap, back-off) → first bytes: HTTP/1 (park: idle ones drop hyper's state)
//!          | could be the HTTP/2 preface: hyper-util auto (h2c, or HTTP/1 unparked) → graceful watch
//! service  RequestCtx (id, peer, start) → router → Route | NotFound | MethodNotAllowed
//! routes   body (bounded read) → validate (FastAPI-exact errors) → typed input
//! upstream headers (outbound policy) → pool (HTTP/1 senders or one h2 connection, hyper-rustls) → streamed body
//! service  Ok(response) | Err(ProxyError) → error (render) → X-Request-Id → access log → client
//! ```

pub mod body;
pub mod config;
pub mod conn_bounds;
pub mod context;
pub mod deadline;
pub mod dev_auth;
pub mod docs;
pub mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod metrics;
pub mod park;
pub mod ratelimit;
pub mod rlimit;
pub mod router;
pub mod routes;
pub mod server;
pub mod service;
pub mod shield;
pub mod trace;
pub mod trim;
pub mod upstream;
pub mod validate;

use std::future::Future;
use std::io;
use std::sync::Arc;

pub use config::{Cli, Config};
pub use service::AppState;

/// Runs the proxy on an already-bound listener until `shutdown` resolves, then drains.
///
/// Tests bind `127.0.0.1:0` and call this directly; the binary does the same after parsing flags.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let state = Arc::new(AppState::new(config).map_err(io::Error::other)?);
    // Aborted when serving ends (the runtime may outlive it, as in tests).
    let trimmer = tokio::spawn(trim::run(state.clone())).abort_handle();
    let served = server::serve(listener, state, shutdown).await;
    trimmer.abort();
    served
}

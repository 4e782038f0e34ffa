//! auth-proxy: a validating, streaming passthrough proxy in front of a central auth service.
//!
//! A request flows one way:
//! ```text
//! conn     accept (connection cap, back-off) → detect: HTTP/1 (park: idle ones drop hyper's state)
//!          | could be the HTTP/2 preface: hyper-util auto (h2c, or HTTP/1 unparked) → bounds
//!          framing watch on the socket; drain when the shutdown says so
//! service  RequestCtx (id, peer, start) → router → Route | NotFound | MethodNotAllowed
//! routes   body (bounded read) → validate (FastAPI-exact errors) → typed input
//! upstream headers (outbound policy) → pool (HTTP/1 senders or one h2 connection, hyper-rustls) → streamed body
//! service  Ok(response) | Err(ProxyError) → error (render) → X-Request-Id → access log → client
//! ```
//!
//! `main.rs` and the tests call [`service::serve`] (or [`serve`], which builds the state first);
//! `state` holds what requests share, `shutdown` the one shutdown every part listens to, and
//! `workers` runs one more runtime per extra core, each with its own listener.

pub mod body;
pub mod config;
pub mod conn;
pub mod context;
pub mod dev_auth;
pub mod docs;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod metrics;
pub mod ratelimit;
pub mod rlimit;
pub mod router;
pub mod routes;
pub mod service;
pub mod shield;
pub mod shutdown;
pub mod state;
pub mod trace;
pub mod upstream;
pub mod validate;
pub mod wait;
pub mod workers;

use std::future::Future;
use std::io;
use std::sync::Arc;

pub use config::{Cli, Config};
pub use state::AppState;

/// Runs the proxy on an already-bound listener until `shutdown` resolves, then drains.
///
/// Tests bind `127.0.0.1:0` and call this directly; the binary does the same after parsing flags.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let state = AppState::new(config).map_err(io::Error::other)?;
    service::serve(listener, Arc::new(state), shutdown).await
}

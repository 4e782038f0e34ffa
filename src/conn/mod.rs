//! The connection layer: accept loop, protocol detection, HTTP/1 parking, framing watch and connection bounds, behind one `serve`.
//!
//! ```text
//! accept   listener → connection cap, back-off → one task per client
//! detect   first bytes: HTTP/1, or perhaps the HTTP/2 preface
//!   HTTP/1 park (idle connections drop hyper's state) over hyper's http1 connection
//!   else   bounds (first request, idle, send, reset flood) over hyper-util's auto connection
//! both     framing watch + send deadline around the socket; the handler gets each request
//! trim     after a burst has parked or closed, the freed heap goes back to the kernel
//! ```
//!
//! Above this module nothing knows that parking exists: [`serve`] takes a listener, the
//! [`Handler`] to make per client and the [`Shutdown`](crate::shutdown::Shutdown); an HTTP/1 request whose head carried
//! both `Content-Length` and `Transfer-Encoding` reaches the handler marked with
//! [`AmbiguousFraming`] in its extensions.

mod accept;
mod bounds;
mod deadline;
mod detect;
pub(crate) mod framing;
pub mod park;
mod stats;
mod trim;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;

use crate::config::Config;

pub use accept::serve;
pub use framing::AmbiguousFraming;
pub use stats::{ConnStats, OpenConn};

/// What the connection layer serves: one answer per request, never an error.
pub trait Handler: Send + Sync + 'static {
    type Body: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static;

    fn handle(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Self::Body>> + Send;
}

/// The limits and timings the connection layer runs under, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `--client-header-timeout`: first bytes, each request head, idle HTTP/2.
    pub header_timeout: Duration,
    /// `--client-send-timeout`.
    pub send_timeout: Duration,
    /// `--shutdown-delay`: how long the listener keeps accepting once shutdown is requested.
    pub shutdown_delay: Duration,
    /// `--shutdown-grace`: how long connections may take to drain.
    pub shutdown_grace: Duration,
}

impl Settings {
    pub fn new(config: &Config) -> Self {
        Settings {
            header_timeout: config.client_header_timeout,
            send_timeout: config.client_send_timeout,
            shutdown_delay: config.shutdown_delay,
            shutdown_grace: config.shutdown_grace,
        }
    }
}

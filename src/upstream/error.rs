//! Why the central service gave no usable answer: the step that failed, the typed cause, and the short names the access log and metrics use.
//!
//! pingora's model: every failure says who failed (here always the central service, or the
//! path to it) and at which step; the client gets a short JSON detail, the log the whole chain
//! (`dial: tcp connect error: Connection refused (os error 111)`), so that a 502 explains itself.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// Where in the exchange with the central service a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for a place among the requests in flight (`--upstream-max-connections`).
    Queue,
    /// TCP connect (and name resolution).
    Dial,
    /// The TLS handshake.
    Tls,
    /// The HTTP/2 connection preface.
    Handshake,
    /// Writing the request: nothing of it reached the central service.
    WriteRequest,
    /// The request was written; reading the response head failed.
    ReadHead,
    /// The head was sent on to the client; the body broke.
    ReadBody,
    /// `--upstream-timeout` passed before a response head.
    Timeout,
    /// The breaker was open: nothing was sent (`--breaker-failures`).
    Breaker,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Queue => "queue",
            Step::Dial => "dial",
            Step::Tls => "tls",
            Step::Handshake => "handshake",
            Step::WriteRequest => "write request",
            Step::ReadHead => "read head",
            Step::ReadBody => "read body",
            Step::Timeout => "timeout",
            Step::Breaker => "breaker",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the central service did not give us a response head.
#[derive(Debug)]
pub enum UpstreamError {
    /// TCP connect did not finish within `--connect-timeout`.
    ConnectTimeout(Box<dyn Error + Send + Sync>),
    /// No response head within `--upstream-timeout` (which is carried, for the log).
    Timeout(Duration),
    /// No connection was made: refused, unreachable, TLS failure, HTTP/2 preface failure.
    Connect(Step, Box<dyn Error + Send + Sync>),
    /// A connection was made but the exchange broke (reset, closed, malformed HTTP).
    Exchange(Step, hyper::Error),
    /// `--upstream-max-connections` requests were in flight and the wait queue was full, or
    /// no slot came free within `--upstream-timeout`. Nothing was sent.
    Busy,
    /// The breaker is open (the central service kept failing): nothing was sent; retry in
    /// this many seconds.
    Unavailable(u64),
    /// The body of an answer held whole before it is answered (to share it, see
    /// `crate::shield`) broke or stalled: the client got nothing of it yet.
    Body(super::BodyError),
    /// One upstream call's failure, shared by the requests coalesced on it (`crate::shield`):
    /// transparent, it says and sorts as that failure; the access line's `coalesced=waiter`
    /// tells a waiter from the leader.
    Shared(Arc<UpstreamError>),
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::ConnectTimeout(_) | UpstreamError::Timeout(_) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            UpstreamError::Body(e) if e.is::<super::BodyStalled>() => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Connect(..) | UpstreamError::Exchange(..) | UpstreamError::Body(_) => {
                StatusCode::BAD_GATEWAY
            }
            UpstreamError::Busy | UpstreamError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            UpstreamError::Shared(e) => e.status(),
        }
    }

    pub fn step(&self) -> Step {
        match self {
            UpstreamError::ConnectTimeout(_) => Step::Dial,
            UpstreamError::Timeout(_) => Step::Timeout,
            UpstreamError::Connect(step, _) | UpstreamError::Exchange(step, _) => *step,
            UpstreamError::Busy => Step::Queue,
            UpstreamError::Body(_) => Step::ReadBody,
            UpstreamError::Unavailable(_) => Step::Breaker,
            UpstreamError::Shared(e) => e.step(),
        }
    }

    /// The access log's `error` field and the metrics' `kind` label: one of [`KINDS`].
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::ConnectTimeout(_) => "connect_timeout",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Connect(Step::Tls, _) => "tls",
            UpstreamError::Connect(Step::Handshake, _) => "bad_response",
            UpstreamError::Connect(_, e) => match io_kind(&**e) {
                Some(io::ErrorKind::ConnectionRefused) => "connect_refused",
                _ => "connect",
            },
            UpstreamError::Exchange(_, e) => exchange_kind(e),
            UpstreamError::Body(e) => body_error_kind(&**e),
            UpstreamError::Busy => "upstream_busy",
            UpstreamError::Unavailable(_) => "upstream_unavailable",
            // The leader's kind: the access line's `coalesced=waiter` says it was shared.
            UpstreamError::Shared(e) => e.reason(),
        }
    }

    pub fn detail(&self) -> &'static [u8] {
        match self {
            UpstreamError::ConnectTimeout(_) => {
                br#"{"detail":"Central auth service did not accept a connection in time"}"#
            }
            UpstreamError::Timeout(_) => {
                br#"{"detail":"Central auth service did not answer in time"}"#
            }
            UpstreamError::Body(e) if e.is::<super::BodyStalled>() => {
                br#"{"detail":"Central auth service did not answer in time"}"#
            }
            UpstreamError::Connect(..) => br#"{"detail":"Central auth service is unreachable"}"#,
            UpstreamError::Exchange(..) | UpstreamError::Body(_) => {
                br#"{"detail":"Central auth service sent an invalid response"}"#
            }
            UpstreamError::Busy => {
                br#"{"detail":"Too many requests to the central auth service; retry shortly"}"#
            }
            UpstreamError::Unavailable(_) => br#"{"detail":"Central auth service unavailable"}"#,
            UpstreamError::Shared(e) => e.detail(),
        }
    }

    /// The `Retry-After` seconds of a 503 the proxy gave without asking the central service.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            UpstreamError::Busy => Some(1),
            UpstreamError::Unavailable(seconds) => Some(*seconds),
            UpstreamError::Shared(e) => e.retry_after(),
            UpstreamError::ConnectTimeout(_)
            | UpstreamError::Timeout(_)
            | UpstreamError::Connect(..)
            | UpstreamError::Exchange(..)
            | UpstreamError::Body(_) => None,
        }
    }

    /// What this failure says about the central service's health, for the breaker: no
    /// connection (TLS included) or no answer in time counts against it; a broken exchange
    /// or a refusal of our own does not.
    pub(super) fn outcome(&self) -> super::breaker::Outcome {
        use super::breaker::Outcome;
        match self {
            UpstreamError::ConnectTimeout(_)
            | UpstreamError::Timeout(_)
            | UpstreamError::Connect(..) => Outcome::Failed,
            UpstreamError::Shared(e) => e.outcome(),
            UpstreamError::Exchange(..)
            | UpstreamError::Body(_)
            | UpstreamError::Busy
            | UpstreamError::Unavailable(_) => Outcome::Other,
        }
    }
}

/// Every value [`UpstreamError::reason`] and [`body_error_kind`] can return, so that metrics
/// can make their series up front.
pub const KINDS: [&str; 11] = [
    "connect_timeout",
    "timeout",
    "tls",
    "bad_response",
    "connect_refused",
    "connect",
    "reset",
    "closed",
    "exchange",
    "upstream_busy",
    "upstream_unavailable",
];

/// How an established exchange broke, by the first cause hyper or the OS names.
fn exchange_kind(e: &hyper::Error) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return "bad_response";
    }
    if let Some(h2) = find::<h2::Error>(e) {
        // RST_STREAM or GOAWAY from the central service; a protocol error on its side.
        return if h2.is_reset() || h2.is_go_away() {
            "reset"
        } else {
            "bad_response"
        };
    }
    match io_kind(e) {
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => "reset",
        _ if e.is_incomplete_message() || e.is_closed() || e.is_canceled() => "closed",
        _ => "exchange",
    }
}

/// The kind of a response body that broke after its head was sent on.
pub fn body_error_kind(e: &(dyn Error + 'static)) -> &'static str {
    if e.is::<super::BodyStalled>() {
        return "timeout";
    }
    let Some(e) = e.downcast_ref::<hyper::Error>() else {
        return "exchange";
    };
    match exchange_kind(e) {
        // hyper's "end of file before message length reached": fewer bytes than announced.
        "exchange" if io_kind(e) == Some(io::ErrorKind::UnexpectedEof) => "closed",
        kind => kind,
    }
}

impl fmt::Display for UpstreamError {
    /// The step and what happened there; the cause follows through `source()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step();
        match self {
            UpstreamError::ConnectTimeout(_) => write!(f, "{step}: timed out"),
            UpstreamError::Timeout(after) => write!(f, "{step}: no response head within {after:?}"),
            UpstreamError::Connect(..) | UpstreamError::Exchange(..) | UpstreamError::Body(_) => {
                write!(f, "{step}")
            }
            UpstreamError::Busy => write!(f, "{step}: too many requests in flight"),
            UpstreamError::Unavailable(seconds) => {
                write!(
                    f,
                    "{step}: open after consecutive failures; retry in {seconds}s"
                )
            }
            UpstreamError::Shared(e) => e.fmt(f),
        }
    }
}

impl Error for UpstreamError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            UpstreamError::ConnectTimeout(e)
            | UpstreamError::Connect(_, e)
            | UpstreamError::Body(e) => Some(&**e),
            UpstreamError::Exchange(_, e) => Some(e),
            UpstreamError::Shared(e) => e.source(),
            UpstreamError::Timeout(_) | UpstreamError::Busy | UpstreamError::Unavailable(_) => None,
        }
    }
}

/// An error and its causes, `a: b: c`, for a log line; a cause whose text its parent already
/// ends with (an `io::Error` repeating its inner error) is not written twice.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = self.0.to_string();
        f.write_str(&previous)?;
        let mut next = causes(self.0);
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !previous.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            next = causes(e);
        }
        Ok(())
    }
}

/// The next error in the chain: `source()`, or for an `io::Error` that wraps another error,
/// the wrapped one (an `io::Error`'s `source()` skips it: rustls' error hides there).
fn causes<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        return Some(inner);
    }
    e.source()
}

/// The first error of type `T` in `e`'s chain, `e` included.
pub fn find<'a, T: Error + 'static>(e: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = causes(e);
    }
    None
}

/// The kind of the first I/O error in `e`'s chain, `e` included.
pub fn io_kind(e: &(dyn Error + 'static)) -> Option<io::ErrorKind> {
    find::<io::Error>(e).map(io::Error::kind)
}

/// Sorts a failed dial: a TLS failure (hyper-rustls wraps tokio-rustls' `io::Error`, which
/// holds the `rustls::Error`, in an `io::Error` of its own; a TCP failure comes as
/// hyper-util's connect error instead), else a TCP one.
pub fn dial_step(e: &(dyn Error + 'static)) -> Step {
    let wrapped_io = e
        .downcast_ref::<io::Error>()
        .and_then(io::Error::get_ref)
        .and_then(|inner| inner.downcast_ref::<io::Error>())
        .is_some();
    if wrapped_io || find::<rustls::Error>(e).is_some() {
        Step::Tls
    } else {
        Step::Dial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_names_every_cause_once() {
        let rustls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let tls = io::Error::other(io::Error::new(io::ErrorKind::InvalidData, rustls));
        assert_eq!(dial_step(&tls), Step::Tls);
        let e = UpstreamError::Connect(dial_step(&tls), Box::new(tls));
        assert_eq!(e.reason(), "tls");
        assert_eq!(
            Chain(&e).to_string(),
            "tls: invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn a_refused_dial_is_connect_refused() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(dial_step(&refused), Step::Dial);
        let e = UpstreamError::Connect(Step::Dial, Box::new(refused));
        assert_eq!(e.reason(), "connect_refused");
        assert!(KINDS.contains(&e.reason()));
        assert!(Chain(&e).to_string().starts_with("dial: "));
    }

    #[test]
    fn an_open_breaker_is_upstream_unavailable_with_retry_after() {
        let e = UpstreamError::Unavailable(4);
        assert_eq!(e.reason(), "upstream_unavailable");
        assert!(KINDS.contains(&e.reason()));
        assert_eq!(e.step(), Step::Breaker);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(4));
        assert_eq!(
            Chain(&e).to_string(),
            "breaker: open after consecutive failures; retry in 4s"
        );
    }

    #[test]
    fn a_shared_failure_keeps_the_leaders_step_kind_and_cause() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let leader = Arc::new(UpstreamError::Connect(Step::Dial, Box::new(refused)));
        let e = UpstreamError::Shared(leader);
        assert_eq!(e.reason(), "connect_refused");
        assert_eq!(e.step(), Step::Dial);
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(e.retry_after(), None);
        assert!(Chain(&e).to_string().starts_with("dial: "), "transparent");
    }
}

//! Why the central service gave no usable answer: the step that failed, the typed cause, and the short names the access log and metrics use.
//!
//! pingora's model: every failure says who failed (here always the central service, or the
//! path to it) and at which step; the client gets a short JSON detail, the log the whole chain
//! (`dial: tcp connect error: Connection refused (os error 111)`), so that a 502 explains itself.

use std::error::Error;
use std::fmt;
use std::io;
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
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::ConnectTimeout(_) | UpstreamError::Timeout(_) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            UpstreamError::Connect(..) | UpstreamError::Exchange(..) => StatusCode::BAD_GATEWAY,
            UpstreamError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn step(&self) -> Step {
        match self {
            UpstreamError::ConnectTimeout(_) => Step::Dial,
            UpstreamError::Timeout(_) => Step::Timeout,
            UpstreamError::Connect(step, _) | UpstreamError::Exchange(step, _) => *step,
            UpstreamError::Busy => Step::Queue,
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
            UpstreamError::Busy => "upstream_busy",
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
            UpstreamError::Connect(..) => br#"{"detail":"Central auth service is unreachable"}"#,
            UpstreamError::Exchange(..) => {
                br#"{"detail":"Central auth service sent an invalid response"}"#
            }
            UpstreamError::Busy => {
                br#"{"detail":"Too many requests to the central auth service; retry shortly"}"#
            }
        }
    }
}

/// Every value [`UpstreamError::reason`] and [`body_error_kind`] can return, so that metrics
/// can make their series up front.
pub const KINDS: [&str; 10] = [
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
            UpstreamError::Connect(..) | UpstreamError::Exchange(..) => write!(f, "{step}"),
            UpstreamError::Busy => write!(f, "{step}: too many requests in flight"),
        }
    }
}

impl Error for UpstreamError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            UpstreamError::ConnectTimeout(e) | UpstreamError::Connect(_, e) => Some(&**e),
            UpstreamError::Exchange(_, e) => Some(e),
            UpstreamError::Timeout(_) | UpstreamError::Busy => None,
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
}

//! Every way a request can fail, sorted by who is at fault, and the one place that renders them.
//!
//! Client's fault → 4xx; the central service's fault → 502/504; ours → 500. The `match` in
//! [`ProxyError::status`] is exhaustive so that a new variant forces a decision.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::ProxyBody;
use crate::headers::HostError;
use crate::metrics::Failure;
use crate::ratelimit::{Limit, Throttled};
use crate::upstream::{Step, UpstreamError};

/// Why the proxy answered instead of the central service.
#[derive(Debug)]
pub enum ProxyError {
    /// No route has this path.
    NotFound,
    /// The path exists, the method does not; carries the `Allow` value.
    MethodNotAllowed(&'static str),
    /// `/protected` without usable bearer credentials.
    NotAuthenticated,
    /// The request body is over `--max-body-bytes`.
    BodyTooLarge,
    /// The request body could not be read (bad chunking, client hung up).
    ClientBody,
    /// The client did not send its whole request body within `--client-body-timeout`.
    BodyTimeout,
    /// An HTTP/1 request with both `Content-Length` and `Transfer-Encoding` (see `framing`).
    AmbiguousFraming,
    /// A missing, repeated or malformed `Host` (RFC 9112 §3.2, see `headers::request_host`).
    BadHost(HostError),
    /// Input that FastAPI would reject: a 422 or 400 with its body already rendered.
    Invalid(StatusCode, Bytes),
    /// A `/login` over `--login-rate-limit` or `--login-rate-limit-ip`: 429, not forwarded.
    Throttled(Throttled),
    /// The central service failed us.
    Upstream(UpstreamError),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotFound => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::NotAuthenticated => StatusCode::UNAUTHORIZED,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::ClientBody | ProxyError::AmbiguousFraming | ProxyError::BadHost(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::Invalid(status, _) => *status,
            ProxyError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::Upstream(e) => e.status(),
        }
    }

    /// Whether the client connection must close after this answer: the request body may be
    /// left unread, and reading it to keep the connection would hand a client free work; a
    /// client that sends a bad `Host` is not one to keep talking to (nginx closes too).
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProxyError::BodyTooLarge
                | ProxyError::ClientBody
                | ProxyError::BodyTimeout
                | ProxyError::AmbiguousFraming
                | ProxyError::BadHost(_)
        )
    }

    /// How the request series count this error, if they count it.
    pub fn counted_as(&self) -> Option<Failure> {
        match self {
            ProxyError::Invalid(..) => Some(Failure::Invalid),
            ProxyError::BodyTooLarge => Some(Failure::BodyTooLarge),
            ProxyError::NotAuthenticated => Some(Failure::NotAuthenticated),
            ProxyError::Upstream(e) => Some(Failure::Upstream(e.reason())),
            _ => None,
        }
    }

    /// A short machine-readable cause for the access log, where the proxy answered because
    /// something failed (not for routing or validation answers, which the status says).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ProxyError::NotFound
            | ProxyError::MethodNotAllowed(_)
            | ProxyError::NotAuthenticated
            | ProxyError::Invalid(..) => None,
            ProxyError::BodyTooLarge => Some("body_too_large"),
            ProxyError::ClientBody => Some("client_body"),
            ProxyError::BodyTimeout => Some("client_body_timeout"),
            ProxyError::AmbiguousFraming => Some("ambiguous_framing"),
            ProxyError::Throttled(Throttled {
                limit: Limit::User, ..
            }) => Some("login_rate_limited"),
            ProxyError::Throttled(Throttled {
                limit: Limit::Ip, ..
            }) => Some("login_ip_rate_limited"),
            ProxyError::BadHost(_) => Some("bad_host"),
            ProxyError::Upstream(e) => Some(e.reason()),
        }
    }

    /// The step of the exchange with the central service that failed, for an upstream failure.
    pub fn step(&self) -> Option<Step> {
        match self {
            ProxyError::Upstream(e) => Some(e.step()),
            _ => None,
        }
    }

    fn body(&self) -> Bytes {
        match self {
            ProxyError::NotFound => Bytes::from_static(br#"{"detail":"Not Found"}"#),
            ProxyError::MethodNotAllowed(_) => {
                Bytes::from_static(br#"{"detail":"Method Not Allowed"}"#)
            }
            ProxyError::NotAuthenticated => {
                Bytes::from_static(br#"{"detail":"Not authenticated"}"#)
            }
            ProxyError::BodyTooLarge => {
                Bytes::from_static(br#"{"detail":"Request body too large"}"#)
            }
            ProxyError::BodyTimeout => {
                Bytes::from_static(br#"{"detail":"Request body not received in time"}"#)
            }
            ProxyError::ClientBody => {
                Bytes::from_static(br#"{"detail":"There was an error parsing the body"}"#)
            }
            ProxyError::AmbiguousFraming => Bytes::from_static(
                br#"{"detail":"Content-Length and Transfer-Encoding together are not allowed"}"#,
            ),
            ProxyError::BadHost(e) => Bytes::from_static(e.detail()),
            ProxyError::Invalid(_, body) => body.clone(),
            ProxyError::Throttled(_) => Bytes::from_static(br#"{"detail":"Too Many Requests"}"#),
            ProxyError::Upstream(e) => Bytes::from_static(e.detail()),
        }
    }

    /// Renders the FastAPI-shaped JSON answer.
    pub fn into_response(self) -> Response<ProxyBody> {
        let mut response = json_response(self.status(), self.body());
        let headers = response.headers_mut();
        match self {
            ProxyError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ProxyError::NotAuthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ProxyError::Upstream(e) => {
                if let Some(seconds) = e.retry_after() {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
            }
            ProxyError::Throttled(throttled) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(throttled.retry_after_secs()),
                );
            }
            _ => {}
        }
        response
    }
}

impl std::fmt::Display for ProxyError {
    /// What the proxy refused or what failed; an upstream failure's step and cause follow
    /// through `source()` (see [`crate::upstream::Chain`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::NotFound => f.write_str("no such route"),
            ProxyError::MethodNotAllowed(allow) => write!(f, "method not allowed (allow: {allow})"),
            ProxyError::NotAuthenticated => f.write_str("no usable bearer credentials"),
            ProxyError::BodyTooLarge => f.write_str("request body over --max-body-bytes"),
            ProxyError::ClientBody => f.write_str("request body could not be read"),
            ProxyError::BodyTimeout => {
                f.write_str("request body not received within --client-body-timeout")
            }
            ProxyError::AmbiguousFraming => {
                f.write_str("Content-Length and Transfer-Encoding together")
            }
            ProxyError::BadHost(e) => f.write_str(match e {
                HostError::Missing => "HTTP/1.1 request without Host",
                HostError::Repeated => "more than one Host line",
                HostError::Invalid => "Host is not host[:port]",
            }),
            ProxyError::Invalid(status, _) => write!(f, "invalid input ({status})"),
            ProxyError::Throttled(Throttled { limit, .. }) => f.write_str(match limit {
                Limit::User => "login attempts over --login-rate-limit",
                Limit::Ip => "login attempts over --login-rate-limit-ip",
            }),
            ProxyError::Upstream(_) => f.write_str("central auth service failed"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Upstream(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UpstreamError> for ProxyError {
    fn from(e: UpstreamError) -> Self {
        ProxyError::Upstream(e)
    }
}

/// A JSON response made by the proxy itself.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

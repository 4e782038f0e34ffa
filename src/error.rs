//! Every way a request can fail, sorted by who is at fault, and the one place that renders them.
//!
//! Client's fault → 4xx; the central service's fault → 502/504; ours → 500. The `match` in
//! [`ProxyError::status`] is exhaustive so that a new variant forces a decision.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::ProxyBody;
use crate::upstream::UpstreamError;

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
    /// Input that FastAPI would reject: a 422 or 400 with its body already rendered.
    Invalid(StatusCode, Bytes),
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
            ProxyError::ClientBody | ProxyError::AmbiguousFraming => StatusCode::BAD_REQUEST,
            ProxyError::Invalid(status, _) => *status,
            ProxyError::Upstream(e) => e.status(),
        }
    }

    /// Whether the client connection must close after this answer: the request body may be
    /// left unread, and reading it to keep the connection would hand a client free work.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProxyError::BodyTooLarge
                | ProxyError::ClientBody
                | ProxyError::BodyTimeout
                | ProxyError::AmbiguousFraming
        )
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
            ProxyError::Upstream(e) => Some(e.reason()),
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
            ProxyError::Invalid(_, body) => body.clone(),
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
            _ => {}
        }
        response
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

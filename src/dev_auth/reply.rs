//! Building the dev service's JSON responses and reading its bounded request bodies.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::validate::Rejection;

/// Largest request body the dev service reads; its requests are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub type Reply = Response<Full<Bytes>>;

/// A response with a JSON body.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"detail": "<message>"}`, the shape of every error the reference service returns.
pub fn detail(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "detail": message }))
}

/// 401 for a request without usable bearer credentials, as `FastAPI`'s `HTTPBearer` answers.
pub fn not_authenticated() -> Reply {
    let mut response = detail(StatusCode::UNAUTHORIZED, "Not authenticated");
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

pub fn not_found() -> Reply {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

pub fn method_not_allowed(allow: &'static str) -> Reply {
    let mut response = detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The proxy's validation verdict as the response FastAPI sends for it: 422 or 400, JSON.
pub fn rejection(rejection: Rejection) -> Reply {
    let (status, body) = match rejection {
        Rejection::Unprocessable(body) => (StatusCode::UNPROCESSABLE_ENTITY, body),
        Rejection::BadRequest(body) => (StatusCode::BAD_REQUEST, body),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Starlette's `redirect_slashes`: a known path with a trailing slash, whatever the method, is
/// a 307 with an empty body to the same URL without it, on the host the client asked for.
pub fn redirect_without_slash<B>(request: &http::Request<B>) -> Reply {
    let uri = request.uri();
    let path = uri.path().strip_suffix('/').unwrap_or(uri.path());
    let host = request
        .headers()
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(http::uri::Authority::as_str));
    // With no host at all Starlette falls back to the server's own address, which a handler
    // here does not know; the path alone, a relative reference, leads to the same place.
    let mut location = host.map_or_else(String::new, |host| format!("http://{host}"));
    location.push_str(path);
    if let Some(query) = uri.query() {
        location.push('?');
        location.push_str(query);
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

pub fn internal_error() -> Reply {
    detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// The whole request body, or the response to send instead: 413 when it is over
/// `MAX_BODY_BYTES` (by Content-Length before reading, then while reading), 400 when the
/// client broke off mid-body.
pub async fn read_body(request: http::Request<Incoming>) -> Result<Bytes, Reply> {
    let too_large = || detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(detail(
            StatusCode::BAD_REQUEST,
            "Could not read the request body",
        )),
    }
}

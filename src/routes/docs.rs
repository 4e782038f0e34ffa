//! `GET /openapi.json`, `GET /docs` and its embedded Swagger UI files: served from the binary.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::ProxyBody;
use crate::docs;
use crate::error::{json_response, ProxyError};

pub fn openapi() -> Response<ProxyBody> {
    json_response(StatusCode::OK, docs::openapi_json())
}

pub fn page() -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(docs::docs_page()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(docs::DOCS_CONTENT_SECURITY_POLICY),
    );
    response
}

pub fn asset(path: &str) -> Result<Response<ProxyBody>, ProxyError> {
    let (content_type, bytes) = docs::asset(path).ok_or(ProxyError::NotFound)?;
    let mut response = Response::new(ProxyBody::full(Bytes::from_static(bytes)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Embedded in this build: they change only with the binary.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}

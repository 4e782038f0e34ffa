//! A one-letter pool key for a plain-HTTP central service: hyper-util hashes the key twice per request.
//!
//! hyper-util's pool is keyed by the request URI's scheme and authority, and it SipHashes that
//! key byte by byte on every checkout and every return — about 2,100 instructions per request
//! for `127.0.0.1:18081` (callgrind), more for a long host name. This process has exactly one
//! upstream, so over plain HTTP the requests carry the constant authority [`KEY`] and
//! [`Dial`] connects to `AUTH_URL` whatever the key says. Nothing else reads the URI's
//! authority: HTTP/1 requests go out in origin form and `Host` is set from `AUTH_URL` by the
//! header policy. Over https the real authority stays, because an HTTP/2 connection (ALPN)
//! would send it as `:authority`.

use std::task::{Context, Poll};

use http::uri::{Authority, Scheme};
use http::Uri;

use crate::config::AuthUrl;

/// The pool key's authority for a plain-HTTP upstream.
const KEY: Authority = Authority::from_static("u");

/// The URI a request to `AUTH_URL` + `path` is sent with (see the module doc).
pub fn request_uri(url: &AuthUrl, path: &str) -> Uri {
    let real = url.join(path);
    if url.scheme != Scheme::HTTP {
        return real;
    }
    let mut parts = real.clone().into_parts();
    parts.authority = Some(KEY);
    Uri::from_parts(parts).unwrap_or(real)
}

/// A connector that always dials `AUTH_URL`, whatever authority the pool key carries.
#[derive(Clone, Debug)]
pub struct Dial<C> {
    pub inner: C,
    /// `AUTH_URL`'s scheme and authority.
    pub target: Uri,
}

impl<C: tower_service::Service<Uri>> tower_service::Service<Uri> for Dial<C> {
    type Response = C::Response;
    type Error = C::Error;
    type Future = C::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, _key: Uri) -> Self::Future {
        self.inner.call(self.target.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_auth_url;

    #[test]
    fn plain_http_requests_carry_the_constant_key_and_keep_the_path() {
        let url = parse_auth_url("http://auth.internal.example:8080/api").unwrap();
        let uri = request_uri(&url, "/login");
        assert_eq!(uri.to_string(), "http://u/api/login");
    }

    #[test]
    fn https_requests_keep_the_real_authority() {
        let url = parse_auth_url("https://auth.example.com/api").unwrap();
        let uri = request_uri(&url, "/login");
        assert_eq!(uri.to_string(), "https://auth.example.com/api/login");
    }
}

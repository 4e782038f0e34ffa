//! Header policy, both directions: what crosses the proxy, what is rebuilt, what never leaves.
//!
//! Requests to the central service (the policy, in one place):
//! - Hop-by-hop headers (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`, `Proxy-Authenticate`) and
//!   every header named in `Connection` are dropped.
//! - `Host` is rewritten to `AUTH_URL`'s authority; `Content-Length`, `Content-Type` and `Expect`
//!   are dropped because the proxy re-serialises every body it forwards and sets them itself.
//! - `Authorization` goes upstream only on `/protected`: a bearer token sent to `/login` by a
//!   confused client must not reach a service that logs it.
//! - `X-Forwarded-For/-Proto/-Host` and `Forwarded` are taken from a peer inside
//!   `--trusted-proxies` only (nginx's `real_ip` model); from anyone else they are discarded and
//!   rebuilt from the connection, so a client cannot spoof its address to the auth service.
//! - `X-Request-Id` is replaced by the request's id (see `context`).
//! - Every other end-to-end header (`Cookie`, `User-Agent`, `Accept`, `Accept-Language`, tracing
//!   headers such as `traceparent`) passes unchanged, as nginx and Envoy pass them: the central
//!   service may set cookies on the way back (`Set-Cookie` is kept), so it gets them on the way in.
//!
//! Responses to clients: hop-by-hop and `Connection`-named headers are dropped; everything else,
//! repeated `Set-Cookie` included, is kept as the central service sent it.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = header::FORWARDED;

/// Headers that the proxy always sets itself on the upstream request.
const REBUILT: [HeaderName; 5] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::EXPECT,
    X_REQUEST_ID,
];

/// What the proxy knows about the client side of one request.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub peer: SocketAddr,
    /// Whether `peer` is inside `--trusted-proxies`.
    pub trusted: bool,
    /// This hop's scheme (`http`: the proxy terminates plain HTTP).
    pub scheme: &'static str,
    /// The `Host` (HTTP/1) or `:authority` (HTTP/2) the client addressed.
    pub host: Option<&'a HeaderValue>,
}

/// The credentials a route forwards: none, or the bearer value it validated (re-rendered as
/// `Bearer <token>`, as the FastAPI app sent it).
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    None,
    Bearer(&'a HeaderValue),
}

/// Builds the upstream request headers from the client's, per the policy in the module doc.
pub fn outbound_request(
    incoming: &HeaderMap,
    origin: &Origin<'_>,
    upstream_host: &HeaderValue,
    request_id: &HeaderValue,
    credentials: Credentials<'_>,
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.keys_len() + 6);
    let named = connection_named(incoming);
    for (name, value) in incoming {
        if is_hop_by_hop(name)
            || REBUILT.contains(name)
            || named.iter().any(|n| n == name)
            || name == header::AUTHORIZATION
            || is_forwarding(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out.insert(header::HOST, upstream_host.clone());
    out.insert(X_REQUEST_ID, request_id.clone());
    if let Credentials::Bearer(value) = credentials {
        out.insert(header::AUTHORIZATION, value.clone());
    }
    forwarding(incoming, origin, &mut out);
    out
}

/// Strips hop-by-hop and `Connection`-named headers from an upstream response, in place.
pub fn sanitize_response(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

fn is_forwarding(name: &HeaderName) -> bool {
    name == X_FORWARDED_FOR
        || name == X_FORWARDED_PROTO
        || name == X_FORWARDED_HOST
        || name == FORWARDED
}

/// Header names listed in `Connection` (comma-separated tokens, any number of lines).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

/// `X-Forwarded-*` for the upstream request: a trusted peer's chain extended, anyone else's replaced.
fn forwarding(incoming: &HeaderMap, origin: &Origin<'_>, out: &mut HeaderMap) {
    let peer_ip = origin.peer.ip().to_canonical().to_string();
    let trusted = |name: &HeaderName| {
        if origin.trusted {
            incoming.get_all(name).iter().cloned().collect()
        } else {
            Vec::new()
        }
    };
    let prior: Vec<HeaderValue> = trusted(&X_FORWARDED_FOR);
    let chain = prior
        .iter()
        .filter_map(|v| v.to_str().ok())
        .chain(std::iter::once(peer_ip.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&chain) {
        out.insert(X_FORWARDED_FOR, value);
    }
    let proto = trusted(&X_FORWARDED_PROTO);
    match proto.into_iter().last() {
        Some(value) => out.insert(X_FORWARDED_PROTO, value),
        None => out.insert(X_FORWARDED_PROTO, HeaderValue::from_static(origin.scheme)),
    };
    let host = trusted(&X_FORWARDED_HOST)
        .into_iter()
        .last()
        .or_else(|| origin.host.cloned());
    if let Some(value) = host {
        out.insert(X_FORWARDED_HOST, value);
    }
    if origin.trusted {
        for value in incoming.get_all(FORWARDED) {
            out.append(FORWARDED, value.clone());
        }
    }
}

/// Wraps a header map so that `{:?}` never prints credential values.
pub struct Redacted<'a>(pub &'a HeaderMap);

/// Headers whose values are secrets and never appear in logs.
const SENSITIVE: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::SET_COOKIE,
    header::PROXY_AUTHORIZATION,
];

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if SENSITIVE.contains(name) {
                map.entry(name, &"<redacted>");
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests;

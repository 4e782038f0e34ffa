//! Header policy, both directions: what crosses the proxy, what is rebuilt, what never leaves.
//!
//! Requests to the central service (the policy, in one place):
//! - Hop-by-hop headers (RFC 9110 §7.6.1: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`, `Proxy-Authenticate`) and
//!   every header named in `Connection` are dropped.
//! - `Host` is rewritten to `AUTH_URL`'s authority; `Content-Length`, `Content-Type` and `Expect`
//!   are dropped because the proxy forwards only the body it validated (re-serialised, or a
//!   `/login` form already in canonical spelling) and sets them itself.
//! - `Authorization` goes upstream only on `/protected`: a bearer token sent to `/login` by a
//!   confused client must not reach a service that logs it.
//! - `X-Forwarded-For/-Proto/-Host` and `Forwarded` are taken from a peer inside
//!   `--trusted-proxies` only (nginx's `real_ip` model); from anyone else they are discarded and
//!   rebuilt from the connection, so a client cannot spoof its address to the auth service.
//! - `X-Real-IP` is set as nginx deployments set it (`proxy_set_header X-Real-IP
//!   $remote_addr`), from the same decision: a trusted peer's own `X-Real-IP` is kept (it knows
//!   the client; without `real_ip` nginx would send itself), otherwise the peer's address.
//! - [`TRUSTED_ONLY`] headers — other client-address headers (`True-Client-IP`,
//!   `CF-Connecting-IP`, `X-Client-IP`), URL-building ones (`X-Forwarded-Port/-Prefix`) and
//!   request-rewriting ones that frameworks obey (`X-Original-URL`, `X-Rewrite-URL`: a path
//!   override behind access rules, CVE-2018-14773; `X-HTTP-Method-Override`) — pass from a
//!   trusted peer, which set them, and are dropped from anyone else, who could only forge them.
//! - `X-Request-Id` is replaced by the request's id (see `context`).
//! - Every other end-to-end header (`Cookie`, `User-Agent`, `Accept`, `Accept-Language`, tracing
//!   headers such as `traceparent`) passes unchanged, as nginx and Envoy pass them: the central
//!   service may set cookies on the way back (`Set-Cookie` is kept), so it gets them on the way in.
//!
//! Responses to clients: hop-by-hop and `Connection`-named headers are dropped; everything else,
//! repeated `Set-Cookie` included, is kept as the central service sent it.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

mod client_ip;
pub use client_ip::{client_ip, is_trusted_proxy};
mod host;
pub use host::{request_host, HostError};

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
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = header::FORWARDED;
/// Forwarding headers: taken from a trusted peer, rebuilt for anyone else (see [`forwarding`]).
/// This list, [`REBUILT`] and [`TRUSTED_ONLY`] are the policy as data; [`policy`] is their
/// fast form, and a unit test keeps the two equal.
#[cfg_attr(not(test), allow(dead_code))]
const FORWARDING: [HeaderName; 5] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    FORWARDED,
    X_REAL_IP,
];

/// Headers that only a `--trusted-proxies` peer may send upstream; from anyone else they are
/// dropped. Each is believed by some upstream stack, so from a client each is a forgery.
#[cfg_attr(not(test), allow(dead_code))]
const TRUSTED_ONLY: [HeaderName; 8] = [
    // The client's address, as CDNs and load balancers name it (Akamai, Cloudflare, others).
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("cf-connecting-ip"),
    HeaderName::from_static("x-client-ip"),
    // The public URL's port and path prefix (Traefik, Spring, ASP.NET build redirects from them).
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    // Path and method overrides that IIS, Symfony/Zend and many frameworks obey.
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-http-method-override"),
];

/// Headers that the proxy always sets itself on the upstream request.
#[cfg_attr(not(test), allow(dead_code))]
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
    /// The peer's IP, rendered once per connection by [`peer_ip_value`].
    pub peer_ip: &'a HeaderValue,
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
    // Clients rarely send `Connection` over HTTP/1.1 keep-alive (and never over HTTP/2): look
    // up the names it lists only when it is there, not once per header.
    let has_connection = incoming.contains_key(header::CONNECTION);
    let mut out = HeaderMap::with_capacity(incoming.keys_len() + 7);
    for (name, value) in incoming {
        match policy(name) {
            Policy::Pass => {}
            Policy::TrustedOnly if origin.trusted => {}
            Policy::TrustedOnly | Policy::Never => continue,
        }
        if has_connection && is_connection_named(incoming, name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    // Every name set from here on was filtered out above, so `append` (no search for old
    // values to replace) is enough; it is a third cheaper than `insert`.
    out.append(header::HOST, upstream_host.clone());
    out.append(X_REQUEST_ID, request_id.clone());
    if let Credentials::Bearer(value) = credentials {
        out.append(header::AUTHORIZATION, value.clone());
    }
    forwarding(incoming, origin, &mut out);
    out
}

/// Strips hop-by-hop and `Connection`-named headers from an upstream response, in place.
///
/// An answer usually carries one of them, `Connection: keep-alive`: one pass over the names
/// finds which are there and only those are removed (each `remove` hashes its name). Names
/// that `Connection` lists beyond the hop-by-hop ones, rare, are removed by a second pass.
pub fn sanitize_response(headers: &mut HeaderMap) {
    let present = headers
        .keys()
        .filter_map(hop_by_hop_index)
        .fold(0u16, |mask, i| mask | 1 << i);
    if present == 0 {
        return;
    }
    if present & 1 != 0 && lists_other_names(headers) {
        let named: Vec<String> = connection_tokens(headers)
            .filter(|token| hop_by_hop_position(token).is_none())
            .map(str::to_owned)
            .collect();
        for name in named {
            headers.remove(name.as_str());
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & 1 << i != 0 {
            headers.remove(name);
        }
    }
}

/// The tokens of every `Connection` value (values that are not text are ignored).
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Whether `Connection` names a header other than the hop-by-hop ones (`close` names none).
fn lists_other_names(headers: &HeaderMap) -> bool {
    connection_tokens(headers)
        .any(|token| !token.eq_ignore_ascii_case("close") && hop_by_hop_position(token).is_none())
}

/// Where a `Connection` token (any case) is in [`HOP_BY_HOP`].
fn hop_by_hop_position(token: &str) -> Option<usize> {
    HOP_BY_HOP
        .iter()
        .position(|name| token.eq_ignore_ascii_case(name.as_str()))
}

/// Where `name` is in [`HOP_BY_HOP`], as one `match` (a unit test keeps the two equal).
fn hop_by_hop_index(name: &HeaderName) -> Option<u32> {
    Some(match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "te" => 3,
        "trailer" => 4,
        "transfer-encoding" => 5,
        "upgrade" => 6,
        "proxy-authorization" => 7,
        "proxy-authenticate" => 8,
        _ => return None,
    })
}

/// Whether `name` is in [`HOP_BY_HOP`].
fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_by_hop_index(name).is_some()
}

/// What happens to a client header on its way upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// End to end: copied as sent.
    Pass,
    /// Copied only from a `--trusted-proxies` peer ([`TRUSTED_ONLY`]).
    TrustedOnly,
    /// Never copied as sent: hop-by-hop ([`HOP_BY_HOP`]), rebuilt ([`REBUILT`]),
    /// `Authorization` (routes pass their validated bearer) or forwarding ([`FORWARDING`]).
    Never,
}

/// The policy for one client header: one `match` on the lower-case name instead of 28
/// comparisons per header; a unit test keeps it equal to the lists.
fn policy(name: &HeaderName) -> Policy {
    if is_hop_by_hop(name) {
        return Policy::Never;
    }
    match name.as_str() {
        "host" | "content-length" | "content-type" | "expect" | "x-request-id"
        | "authorization" | "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
        | "forwarded" | "x-real-ip" => Policy::Never,
        "true-client-ip"
        | "cf-connecting-ip"
        | "x-client-ip"
        | "x-forwarded-port"
        | "x-forwarded-prefix"
        | "x-original-url"
        | "x-rewrite-url"
        | "x-http-method-override" => Policy::TrustedOnly,
        _ => Policy::Pass,
    }
}

/// Whether `name` is listed in `Connection` (comma-separated tokens, any number of lines).
fn is_connection_named(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()))
}

/// `X-Forwarded-*` and `X-Real-IP` for the upstream request: a trusted peer's chain extended,
/// anyone else's replaced.
fn forwarding(incoming: &HeaderMap, origin: &Origin<'_>, out: &mut HeaderMap) {
    let trusted_last = |name: &HeaderName| {
        if origin.trusted {
            incoming.get_all(name).iter().next_back().cloned()
        } else {
            None
        }
    };
    let prior = if origin.trusted {
        incoming.get_all(X_FORWARDED_FOR).iter().count()
    } else {
        0
    };
    if prior == 0 {
        // The common case: the peer alone, a value made once per connection.
        out.append(X_FORWARDED_FOR, origin.peer_ip.clone());
    } else {
        let chain = incoming
            .get_all(X_FORWARDED_FOR)
            .iter()
            .chain(std::iter::once(origin.peer_ip))
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(value) = HeaderValue::from_str(&chain) {
            out.append(X_FORWARDED_FOR, value);
        }
    }
    let proto = trusted_last(&X_FORWARDED_PROTO).unwrap_or(HeaderValue::from_static(origin.scheme));
    out.append(X_FORWARDED_PROTO, proto);
    if let Some(host) = trusted_last(&X_FORWARDED_HOST).or_else(|| origin.host.cloned()) {
        out.append(X_FORWARDED_HOST, host);
    }
    let real_ip = trusted_last(&X_REAL_IP).unwrap_or_else(|| origin.peer_ip.clone());
    out.append(X_REAL_IP, real_ip);
    if origin.trusted {
        for value in incoming.get_all(FORWARDED) {
            out.append(FORWARDED, value.clone());
        }
    }
}

/// The peer's address as an `X-Forwarded-For` entry (IPv4-mapped IPv6 shown as IPv4).
pub fn peer_ip_value(peer: SocketAddr) -> HeaderValue {
    let text = peer.ip().to_canonical().to_string();
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or(HeaderValue::from_static("unknown"))
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

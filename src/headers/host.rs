//! Which host a request addressed, and whether its `Host` is one a server may accept (RFC 9112 §3.2).
//!
//! - HTTP/1.1 without `Host`, any request with more than one `Host` line, or with a `Host` that
//!   is not `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2), is a 400: RFC 9112 §3.2 says
//!   "MUST respond with a 400". An empty host is refused too: an `http` URI never has one (RFC
//!   9110 §4.2.1). HTTP/1.0 may leave `Host` out.
//! - A request target in absolute form names the host itself and wins over `Host` (RFC 9112
//!   §3.2.2); `Host` must still be valid.
//! - HTTP/2 carries the host in `:authority` (which hyper puts in the URI); it wins over a `host`
//!   header (RFC 9113 §8.3.1), which is checked like HTTP/1's only when `:authority` is absent.
//! - Userinfo (`user@host`) is never a valid host: RFC 9110 §4.2.4, RFC 9113 §8.3.1.
//!
//! hyper checks none of this (it parses `Host` as any other header), so the proxy does, before
//! routing: a bad `Host` must not reach the central service as `X-Forwarded-Host`.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Uri, Version};

/// Why a request's host is unacceptable; each is a 400 (see [`HostError::detail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// More than one `Host` line.
    Repeated,
    /// A `Host` (or request-target authority) that is not `uri-host [":" port]`.
    Invalid,
}

impl HostError {
    /// The FastAPI-shaped JSON body of the 400.
    pub fn detail(self) -> &'static [u8] {
        match self {
            HostError::Missing => br#"{"detail":"Missing Host header"}"#,
            HostError::Repeated => br#"{"detail":"Multiple Host headers"}"#,
            HostError::Invalid => br#"{"detail":"Invalid Host header"}"#,
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostError::Missing => "HTTP/1.1 request without Host",
            HostError::Repeated => "more than one Host header",
            HostError::Invalid => "Host is not a valid authority",
        })
    }
}

impl std::error::Error for HostError {}

/// The host the client addressed (for `X-Forwarded-Host`), or why the request must be refused.
///
/// `Ok(None)`: HTTP/1.0 without `Host`, or HTTP/2 without `:authority` and `host`.
pub fn request_host(
    version: Version,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<HeaderValue>, HostError> {
    let authority = match uri.authority() {
        Some(authority) if is_valid_authority(authority.as_str().as_bytes()) => {
            Some(authority.as_str())
        }
        Some(_) => return Err(HostError::Invalid),
        None => None,
    };
    if version >= Version::HTTP_2 {
        if let Some(authority) = authority {
            return HeaderValue::from_str(authority)
                .map(Some)
                .map_err(|_| HostError::Invalid);
        }
    }
    let mut lines = headers.get_all(header::HOST).iter();
    let host = match (lines.next(), lines.next()) {
        (Some(_), Some(_)) => return Err(HostError::Repeated),
        (Some(host), None) if is_valid_authority(host.as_bytes()) => Some(host),
        (Some(_), None) => return Err(HostError::Invalid),
        (None, _) if version == Version::HTTP_11 => return Err(HostError::Missing),
        (None, _) => None,
    };
    match authority {
        // Absolute form: the target's authority is the one addressed (rare; a copy is fine).
        Some(authority) => HeaderValue::from_str(authority)
            .map(Some)
            .map_err(|_| HostError::Invalid),
        None => Ok(host.cloned()),
    }
}

/// Whether `text` is `uri-host [":" port]` with a non-empty host (RFC 3986 §3.2.2, §3.2.3).
///
/// Runs on every request: the usual `name[:port]` is one table lookup per byte; brackets
/// (IPv6) and percent-encoding take the slower, general path.
fn is_valid_authority(text: &[u8]) -> bool {
    let mut plain = 0;
    while plain < text.len() && REG_NAME_PLAIN[usize::from(text[plain])] {
        plain += 1;
    }
    match &text[plain..] {
        [] => plain > 0,
        [b':', port @ ..] => plain > 0 && port.iter().all(u8::is_ascii_digit),
        _ => is_valid_authority_general(text),
    }
}

/// [`is_valid_authority`] for any input, with IP-literals and percent-encoding.
fn is_valid_authority_general(text: &[u8]) -> bool {
    let (host, rest) = if text.first() == Some(&b'[') {
        let Some(close) = text.iter().position(|&b| b == b']') else {
            return false;
        };
        if !is_ip_literal(&text[1..close]) {
            return false;
        }
        (&text[..=close], &text[close + 1..])
    } else {
        let end = text.iter().position(|&b| b == b':').unwrap_or(text.len());
        let host = &text[..end];
        if host.is_empty() || !is_reg_name(host) {
            return false;
        }
        (host, &text[end..])
    };
    debug_assert!(!host.is_empty());
    match rest.split_first() {
        None => true,
        // port = *DIGIT: `host:` is valid syntax (the default port).
        Some((b':', port)) => port.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// The bytes of a reg-name other than `%` (unreserved and sub-delims), as a lookup table.
const REG_NAME_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        #[allow(clippy::cast_possible_truncation)] // b < 256
        let byte = b as u8;
        table[b] = is_unreserved(byte) || is_sub_delim(byte);
        b += 1;
    }
    table
};

/// `IPv6address / IPvFuture`, the inside of an IP-literal's brackets.
fn is_ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`; IPv4 addresses are reg-names too.
fn is_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = host.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests;

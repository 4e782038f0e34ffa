//! The header policy (`src/headers.rs`), both directions, on arbitrary header lists: upstream
//! requests carry no hop-by-hop or `Connection`-named header, exactly one `Host`,
//! `X-Request-Id` and `X-Forwarded-For/-Proto` of the proxy's making (an untrusted peer's
//! forwarding headers replaced, never kept), `Authorization` only when a route passes one, and
//! every other header with all its values in order; responses lose exactly the hop-by-hop and
//! `Connection`-named headers.
#![no_main]

use arbitrary::Arbitrary;
use auth_proxy::headers::{
    outbound_request, peer_ip_value, sanitize_response, Credentials, Origin, HOP_BY_HOP,
};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Names worth picking often: the ones the policy treats specially.
const NAMES: [&str; 20] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "host",
    "content-length",
    "content-type",
    "expect",
    "x-request-id",
    "authorization",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "cookie",
    "x-custom",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Any(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(Name, Vec<u8>)>,
    trusted: bool,
    peer: ([u8; 4], u16),
    bearer: Option<Vec<u8>>,
}

/// Names listed in `Connection` (the text values, comma-separated, trimmed).
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        // `close` is a connection option, not a header name (RFC 9110 §7.6.1 reserves the
        // field name "Close" for that reason): whether a header so named goes is not policy.
        .chain(std::iter::once("close".to_owned()))
        .collect()
}

fuzz_target!(|input: Input| {
    let mut incoming = HeaderMap::new();
    for (name, value) in &input.headers {
        let name = match name {
            Name::Known(n) => HeaderName::from_static(NAMES[usize::from(*n) % NAMES.len()]),
            Name::Any(bytes) => match HeaderName::from_bytes(bytes) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            incoming.append(name, value);
        }
    }
    let peer_ip = peer_ip_value((input.peer.0, input.peer.1).into());
    let origin = Origin {
        peer_ip: &peer_ip,
        trusted: input.trusted,
        scheme: "http",
        host: incoming.get(header::HOST),
    };
    let upstream_host = HeaderValue::from_static("auth.internal:8443");
    let request_id = HeaderValue::from_static("fuzz-request-id");
    let bearer = input
        .bearer
        .as_deref()
        .and_then(|b| HeaderValue::from_bytes(b).ok());
    let credentials = bearer
        .as_ref()
        .map_or(Credentials::None, Credentials::Bearer);
    let out = outbound_request(&incoming, &origin, &upstream_host, &request_id, credentials);

    let named = connection_named(&incoming);
    let one = |name: &str| {
        let values: Vec<_> = out.get_all(name).iter().collect();
        assert!(values.len() <= 1, "{name} sent {} times", values.len());
        values.first().copied().cloned()
    };
    assert_eq!(one("host"), Some(upstream_host.clone()));
    assert_eq!(one("x-request-id"), Some(request_id.clone()));
    assert_eq!(one("authorization"), bearer.clone());
    for gone in ["content-length", "content-type", "expect"] {
        assert!(!out.contains_key(gone), "{gone} forwarded");
    }
    for name in &HOP_BY_HOP {
        assert!(!out.contains_key(name), "hop-by-hop {name} forwarded");
    }
    let xff = one("x-forwarded-for").expect("X-Forwarded-For always set");
    let proto = one("x-forwarded-proto").expect("X-Forwarded-Proto always set");
    if input.trusted {
        assert!(
            xff.as_bytes().ends_with(peer_ip.as_bytes()),
            "peer ends the chain"
        );
    } else {
        assert_eq!(xff, peer_ip, "an untrusted peer's chain is replaced");
        assert_eq!(proto, "http");
        assert_eq!(one("x-forwarded-host").as_ref(), incoming.get(header::HOST));
        assert!(
            !out.contains_key(header::FORWARDED),
            "untrusted Forwarded kept"
        );
    }
    let rebuilt = [
        "host",
        "x-request-id",
        "authorization",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
    ];
    for (name, _) in &out {
        if !rebuilt.contains(&name.as_str()) {
            assert!(
                !named.contains(&name.as_str().to_owned()),
                "Connection-named {name} forwarded"
            );
        }
    }
    for name in incoming.keys().filter(|n| *n != "close") {
        let special = rebuilt.contains(&name.as_str())
            || ["content-length", "content-type", "expect"].contains(&name.as_str())
            || HOP_BY_HOP.contains(name)
            || named.contains(&name.as_str().to_owned());
        if !special {
            let sent: Vec<_> = incoming.get_all(name).iter().collect();
            let forwarded: Vec<_> = out.get_all(name).iter().collect();
            assert_eq!(sent, forwarded, "{name} changed on the way");
        }
    }

    // The same list as an upstream response.
    let mut response = incoming.clone();
    sanitize_response(&mut response);
    for name in &HOP_BY_HOP {
        assert!(!response.contains_key(name), "hop-by-hop {name} returned");
    }
    for name in incoming.keys().filter(|n| *n != "close") {
        let dropped = HOP_BY_HOP.contains(name) || named.contains(&name.as_str().to_owned());
        let kept: Vec<_> = response.get_all(name).iter().collect();
        if dropped {
            assert!(kept.is_empty(), "{name} returned");
        } else {
            assert_eq!(
                kept,
                incoming.get_all(name).iter().collect::<Vec<_>>(),
                "{name} changed"
            );
        }
    }
});

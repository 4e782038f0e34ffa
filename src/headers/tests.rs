//! Table-driven tests of the header policy.

use super::*;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    headers
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn outbound(pairs: &[(&str, &str)], trusted: bool, credentials: Credentials<'_>) -> HeaderMap {
    let incoming = map(pairs);
    let host = incoming.get(header::HOST).cloned();
    let peer_ip = peer_ip_value("10.1.2.3:5555".parse().expect("addr"));
    let origin = Origin {
        peer_ip: &peer_ip,
        trusted,
        scheme: "http",
        host: host.as_ref(),
    };
    outbound_request(
        &incoming,
        &origin,
        &HeaderValue::from_static("auth.example"),
        &HeaderValue::from_static("req-1"),
        credentials,
    )
}

#[test]
fn hop_by_hop_and_connection_named_headers_never_go_upstream() {
    // RFC 9110 §7.6.1
    let out = outbound(
        &[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("proxy-authenticate", "Basic"),
            ("x-secret-hop", "1"),
            ("x-kept", "yes"),
        ],
        false,
        Credentials::None,
    );
    for gone in HOP_BY_HOP
        .iter()
        .map(HeaderName::as_str)
        .chain(["x-secret-hop"])
    {
        assert!(!out.contains_key(gone), "{gone} leaked upstream");
    }
    assert_eq!(values(&out, "x-kept"), ["yes"]);
}

#[test]
fn host_request_id_and_body_headers_are_rebuilt() {
    let out = outbound(
        &[
            ("host", "proxy.example"),
            ("content-length", "5"),
            ("content-type", "text/plain"),
            ("expect", "100-continue"),
            ("x-request-id", "client-chosen"),
        ],
        false,
        Credentials::None,
    );
    assert_eq!(values(&out, "host"), ["auth.example"]);
    assert_eq!(values(&out, "x-request-id"), ["req-1"]);
    for gone in ["content-length", "content-type", "expect"] {
        assert!(
            !out.contains_key(gone),
            "{gone} should be set by the route, not copied"
        );
    }
}

#[test]
fn authorization_goes_upstream_only_as_the_routes_validated_bearer() {
    let pairs = [("authorization", "bearer   abc ")];
    let validated = HeaderValue::from_static("Bearer abc");
    assert_eq!(
        values(
            &outbound(&pairs, false, Credentials::Bearer(&validated)),
            "authorization"
        ),
        ["Bearer abc"]
    );
    assert!(!outbound(&pairs, false, Credentials::None).contains_key("authorization"));
}

#[test]
fn untrusted_peer_forwarding_headers_are_replaced() {
    let out = outbound(
        &[
            ("host", "proxy.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=6.6.6.6"),
        ],
        false,
        Credentials::None,
    );
    assert_eq!(values(&out, "x-forwarded-for"), ["10.1.2.3"]);
    assert_eq!(values(&out, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&out, "x-forwarded-host"), ["proxy.example"]);
    assert!(!out.contains_key("forwarded"));
}

#[test]
fn trusted_peer_forwarding_chain_is_extended() {
    let out = outbound(
        &[
            ("host", "proxy.internal"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2, 3.3.3.3"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "www.example"),
        ],
        true,
        Credentials::None,
    );
    assert_eq!(
        values(&out, "x-forwarded-for"),
        ["1.1.1.1, 2.2.2.2, 3.3.3.3, 10.1.2.3"]
    );
    assert_eq!(values(&out, "x-forwarded-proto"), ["https"]);
    assert_eq!(values(&out, "x-forwarded-host"), ["www.example"]);
}

/// Every client-address and request-rewriting header a client might forge, with a value.
const SPOOFABLE: [(&str, &str); 9] = [
    ("x-real-ip", "6.6.6.6"),
    ("true-client-ip", "6.6.6.7"),
    ("cf-connecting-ip", "6.6.6.8"),
    ("x-client-ip", "6.6.6.9"),
    ("x-forwarded-port", "443"),
    ("x-forwarded-prefix", "/admin"),
    ("x-original-url", "/admin/users"),
    ("x-rewrite-url", "/admin/users"),
    ("x-http-method-override", "DELETE"),
];

#[test]
fn untrusted_peer_client_address_and_rewrite_headers_are_dropped_and_x_real_ip_set() {
    let out = outbound(&SPOOFABLE, false, Credentials::None);
    for (name, _) in &SPOOFABLE[1..] {
        assert!(!out.contains_key(*name), "{name} from an untrusted peer");
    }
    assert_eq!(values(&out, "x-real-ip"), ["10.1.2.3"]);
    // Without any of them, X-Real-IP is set all the same.
    let out = outbound(&[("accept", "*/*")], false, Credentials::None);
    assert_eq!(values(&out, "x-real-ip"), ["10.1.2.3"]);
}

#[test]
fn trusted_peer_client_address_and_rewrite_headers_are_kept() {
    let out = outbound(&SPOOFABLE, true, Credentials::None);
    for (name, value) in SPOOFABLE {
        assert_eq!(values(&out, name), [value], "{name} from a trusted peer");
    }
    // A trusted peer that sends no X-Real-IP: the peer itself, as nginx without real_ip.
    let out = outbound(&[("true-client-ip", "1.2.3.4")], true, Credentials::None);
    assert_eq!(values(&out, "x-real-ip"), ["10.1.2.3"]);
    assert_eq!(values(&out, "true-client-ip"), ["1.2.3.4"]);
    // Several X-Real-IP lines: the last, as for the other single-valued forwarding headers.
    let out = outbound(
        &[("x-real-ip", "1.1.1.1"), ("x-real-ip", "2.2.2.2")],
        true,
        Credentials::None,
    );
    assert_eq!(values(&out, "x-real-ip"), ["2.2.2.2"]);
}

#[test]
fn trusted_peer_without_forwarding_headers_gets_this_hops_values() {
    let out = outbound(&[("host", "proxy.internal")], true, Credentials::None);
    assert_eq!(values(&out, "x-forwarded-for"), ["10.1.2.3"]);
    assert_eq!(values(&out, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&out, "x-forwarded-host"), ["proxy.internal"]);
}

#[test]
fn repeated_end_to_end_headers_survive() {
    let out = outbound(
        &[("cookie", "a=1"), ("cookie", "b=2"), ("accept", "*/*")],
        false,
        Credentials::None,
    );
    assert_eq!(values(&out, "cookie"), ["a=1", "b=2"]);
}

#[test]
fn response_keeps_every_set_cookie_and_drops_hop_by_hop() {
    let mut headers = map(&[
        ("set-cookie", "a=1; Path=/"),
        ("set-cookie", "b=2; HttpOnly"),
        ("connection", "close, x-internal"),
        ("x-internal", "node-7"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("content-type", "application/json"),
    ]);
    sanitize_response(&mut headers);
    assert_eq!(
        values(&headers, "set-cookie"),
        ["a=1; Path=/", "b=2; HttpOnly"]
    );
    assert_eq!(values(&headers, "content-type"), ["application/json"]);
    for gone in [
        "connection",
        "x-internal",
        "keep-alive",
        "transfer-encoding",
    ] {
        assert!(!headers.contains_key(gone), "{gone} leaked to the client");
    }
}

#[test]
fn response_drops_what_every_connection_header_names_in_any_case() {
    let mut headers = map(&[
        ("connection", "keep-alive"),
        ("connection", "X-Node , Upgrade"),
        ("x-node", "7"),
        ("upgrade", "h2c"),
        ("keep-alive", "timeout=5"),
        ("content-length", "2"),
    ]);
    sanitize_response(&mut headers);
    let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, ["content-length"]);
}

#[test]
fn response_with_only_connection_keep_alive_keeps_the_rest() {
    let mut headers = map(&[
        ("server", "nginx"),
        ("connection", "keep-alive"),
        ("content-type", "application/json"),
    ]);
    sanitize_response(&mut headers);
    let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(left, ["server", "content-type"]);
}

#[test]
fn redacted_debug_hides_credentials() {
    let headers = map(&[
        ("authorization", "Bearer sekrit"),
        ("cookie", "sid=sekrit"),
        ("accept", "x"),
    ]);
    let shown = format!("{:?}", Redacted(&headers));
    assert!(!shown.contains("sekrit"), "{shown}");
    assert!(shown.contains("accept"));
}

#[test]
fn ipv4_mapped_peers_are_shown_as_ipv4() {
    let mapped: SocketAddr = "[::ffff:10.9.8.7]:80".parse().expect("addr");
    assert_eq!(peer_ip_value(mapped), "10.9.8.7");
    let v6: SocketAddr = "[::1]:80".parse().expect("addr");
    assert_eq!(peer_ip_value(v6), "::1");
}

#[test]
fn the_policy_match_is_exactly_the_policy_lists() {
    let mut never: Vec<HeaderName> = HOP_BY_HOP
        .iter()
        .chain(&REBUILT)
        .chain(&FORWARDING)
        .cloned()
        .collect();
    never.push(header::AUTHORIZATION);
    let names = probe_names();
    for name in &names {
        let listed = if never.contains(name) {
            Policy::Never
        } else if TRUSTED_ONLY.contains(name) {
            Policy::TrustedOnly
        } else {
            Policy::Pass
        };
        assert_eq!(
            policy(name),
            listed,
            "{name}: the match and the policy lists disagree"
        );
        assert_eq!(
            hop_by_hop_index(name).map(|i| i as usize),
            HOP_BY_HOP.iter().position(|h| h == name),
            "{name}: hop_by_hop_index and HOP_BY_HOP disagree"
        );
    }
    assert!(
        never.iter().chain(&TRUSTED_ONLY).all(|p| names.contains(p)),
        "every policy name is probed"
    );
}

/// Every standard header name.
const STANDARD_NAMES: &[HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_CHARSET,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::ACCEPT_RANGES,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
    header::ACCESS_CONTROL_REQUEST_HEADERS,
    header::ACCESS_CONTROL_REQUEST_METHOD,
    header::AGE,
    header::ALLOW,
    header::ALT_SVC,
    header::AUTHORIZATION,
    header::CACHE_CONTROL,
    header::CACHE_STATUS,
    header::CDN_CACHE_CONTROL,
    header::CONNECTION,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_LOCATION,
    header::CONTENT_RANGE,
    header::CONTENT_SECURITY_POLICY,
    header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
    header::CONTENT_TYPE,
    header::COOKIE,
    header::DNT,
    header::DATE,
    header::ETAG,
    header::EXPECT,
    header::EXPIRES,
    header::FORWARDED,
    header::FROM,
    header::HOST,
    header::IF_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_NONE_MATCH,
    header::IF_RANGE,
    header::IF_UNMODIFIED_SINCE,
    header::LAST_MODIFIED,
    header::LINK,
    header::LOCATION,
    header::MAX_FORWARDS,
    header::ORIGIN,
    header::PRAGMA,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::PUBLIC_KEY_PINS,
    header::PUBLIC_KEY_PINS_REPORT_ONLY,
    header::RANGE,
    header::REFERER,
    header::REFERRER_POLICY,
    header::REFRESH,
    header::RETRY_AFTER,
    header::SEC_WEBSOCKET_ACCEPT,
    header::SEC_WEBSOCKET_EXTENSIONS,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_VERSION,
    header::SERVER,
    header::SET_COOKIE,
    header::STRICT_TRANSPORT_SECURITY,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::USER_AGENT,
    header::UPGRADE,
    header::UPGRADE_INSECURE_REQUESTS,
    header::VARY,
    header::VIA,
    header::WARNING,
    header::WWW_AUTHENTICATE,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_DNS_PREFETCH_CONTROL,
    header::X_FRAME_OPTIONS,
    header::X_XSS_PROTECTION,
];

/// Every standard header name, and custom names near the policy's.
fn probe_names() -> Vec<HeaderName> {
    let mut names = STANDARD_NAMES.to_vec();
    for custom in [
        "keep-alive",
        "proxy-connection",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded",
        "x-request",
        "traceparent",
        "te-extra",
        "hostname",
        "x-real-ip",
        "x-real-ip-extra",
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-forwarded-server",
    ] {
        names.push(HeaderName::from_static(custom));
    }
    names
}

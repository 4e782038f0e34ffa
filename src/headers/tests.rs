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
fn the_never_forwarded_match_is_exactly_the_policy_lists() {
    let mut policy: Vec<HeaderName> = HOP_BY_HOP
        .iter()
        .chain(&REBUILT)
        .chain(&FORWARDING)
        .cloned()
        .collect();
    policy.push(header::AUTHORIZATION);
    for name in &HOP_BY_HOP {
        assert!(is_hop_by_hop(name), "{name} is hop-by-hop");
    }
    for name in policy.iter().filter(|n| !HOP_BY_HOP.contains(n)) {
        assert!(!is_hop_by_hop(name), "{name} is not hop-by-hop");
    }
    for name in &policy {
        assert!(
            is_never_forwarded(name),
            "{name} must not be forwarded as sent"
        );
    }
    for kept in [
        "cookie",
        "accept",
        "user-agent",
        "traceparent",
        "x-forwarded",
        "x-request",
        "content-encoding",
        "te-extra",
    ] {
        let name = HeaderName::from_static(kept);
        assert!(!is_never_forwarded(&name), "{kept} passes");
    }
    assert_eq!(policy.len(), 19, "the match lists 19 names");
}

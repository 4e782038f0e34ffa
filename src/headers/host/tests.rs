//! Table-driven tests of the `Host` decision (RFC 9112 §3.2, RFC 9113 §8.3.1).

use super::*;

fn hosts(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(
            header::HOST,
            HeaderValue::from_bytes(value.as_bytes()).expect("value"),
        );
    }
    headers
}

fn decide(
    version: Version,
    host_lines: &[&str],
    target: &str,
) -> Result<Option<String>, HostError> {
    let uri: Uri = target.parse().expect("uri");
    request_host(version, &hosts(host_lines), &uri)
        .map(|v| v.map(|v| v.to_str().expect("ascii").to_owned()))
}

#[test]
fn valid_hosts_are_accepted_as_sent() {
    for host in [
        "example.com",
        "example.com:8000",
        "EXAMPLE.com:",
        "127.0.0.1",
        "127.0.0.1:8000",
        "[::1]",
        "[::1]:8000",
        "[2001:db8::7]:443",
        "[v1.fe80::a+en1]",
        "xn--bcher-kva.example",
        "a%20b",
        "under_score.internal",
        "localhost",
    ] {
        assert_eq!(
            decide(Version::HTTP_11, &[host], "/login"),
            Ok(Some(host.to_owned())),
            "{host:?}"
        );
    }
}

#[test]
fn invalid_hosts_are_refused() {
    for host in [
        "",
        ":8000",
        "example.com:80a",
        "example.com:80:80",
        "user@example.com",
        "example.com/path",
        "exa mple.com",
        "example.com\t",
        "[::1",
        "[::1]x",
        "[not-an-ip]",
        "[v1.]",
        "[::1]:8000:1",
        "a%2",
        "a%zz",
        "caf\u{e9}.example",
        "example.com?",
        "example.com#",
        "\"quoted\"",
    ] {
        assert_eq!(
            decide(Version::HTTP_11, &[host], "/login"),
            Err(HostError::Invalid),
            "{host:?}"
        );
    }
}

#[test]
fn http11_needs_exactly_one_host_and_http10_may_omit_it() {
    // RFC 9112 §3.2: "MUST respond with a 400 ... to any HTTP/1.1 request message that lacks
    // a Host header field and to any request message that contains more than one".
    assert_eq!(decide(Version::HTTP_11, &[], "/"), Err(HostError::Missing));
    assert_eq!(decide(Version::HTTP_10, &[], "/"), Ok(None));
    for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
        for lines in [&["a.example", "b.example"][..], &["a.example", "a.example"]] {
            assert_eq!(
                decide(version, lines, "/"),
                Err(HostError::Repeated),
                "{version:?} {lines:?}"
            );
        }
    }
    assert_eq!(
        decide(Version::HTTP_10, &["bad host"], "/"),
        Err(HostError::Invalid)
    );
}

#[test]
fn an_absolute_form_target_names_the_host_but_host_must_still_be_valid() {
    // RFC 9112 §3.2.2: the request-target's authority wins over Host.
    assert_eq!(
        decide(
            Version::HTTP_11,
            &["b.example"],
            "http://a.example:81/login"
        ),
        Ok(Some("a.example:81".to_owned()))
    );
    assert_eq!(
        decide(Version::HTTP_11, &[], "http://a.example/login"),
        Err(HostError::Missing)
    );
    assert_eq!(
        decide(Version::HTTP_11, &["bad host"], "http://a.example/login"),
        Err(HostError::Invalid)
    );
    assert_eq!(
        decide(Version::HTTP_11, &["a.example"], "http://u@a.example/login"),
        Err(HostError::Invalid)
    );
}

#[test]
fn http2_authority_wins_over_host() {
    // RFC 9113 §8.3.1; hyper puts `:authority` in the URI.
    assert_eq!(
        decide(
            Version::HTTP_2,
            &["other.example"],
            "http://proxy.example:8000/protected"
        ),
        Ok(Some("proxy.example:8000".to_owned()))
    );
    assert_eq!(
        decide(
            Version::HTTP_2,
            &["bad host"],
            "http://proxy.example/protected"
        ),
        Ok(Some("proxy.example".to_owned()))
    );
    assert_eq!(
        decide(Version::HTTP_2, &["h.example"], "/protected"),
        Ok(Some("h.example".to_owned()))
    );
    assert_eq!(decide(Version::HTTP_2, &[], "/protected"), Ok(None));
    assert_eq!(
        decide(Version::HTTP_2, &[], "http://u:p@proxy.example/protected"),
        Err(HostError::Invalid)
    );
}

#[test]
fn every_error_has_a_json_detail() {
    for error in [HostError::Missing, HostError::Repeated, HostError::Invalid] {
        let body: serde_json::Value = serde_json::from_slice(error.detail()).expect("JSON");
        assert!(body["detail"].is_string(), "{error}");
    }
}

#[test]
fn the_fast_path_agrees_with_the_general_grammar() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for b in 0..=255u8 {
        for shape in [
            &b"X"[..],
            b"aXb",
            b"aX:80",
            b"a:8X",
            b"X:",
            b"[::X]",
            b"a%4X",
        ] {
            inputs.push(
                shape
                    .iter()
                    .map(|&c| if c == b'X' { b } else { c })
                    .collect(),
            );
        }
    }
    for text in [
        "", ":", "a:", "a::", "a:80:", "[::1]:80", "%41", "a%4", "[v7.x]",
    ] {
        inputs.push(text.as_bytes().to_vec());
    }
    for input in &inputs {
        assert_eq!(
            is_valid_authority(input),
            is_valid_authority_general(input),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

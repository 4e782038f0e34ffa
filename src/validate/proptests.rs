//! Arbitrary bytes under arbitrary content types never panic, and every rejection is a
//! well-formed FastAPI error body.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use proptest::prelude::*;

use super::{bearer_token, login, login_upstream_body, refresh, register, Login, Rejection};

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(b"application/json".to_vec())),
        Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        Just(Some(b"multipart/form-data; boundary=X".to_vec())),
        Just(Some(b"multipart/form-data".to_vec())),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,80}".prop_map(String::into_bytes),
        "(--X\r\nContent-Disposition: form-data; name=\"(username|password|grant_type)\"\r\n\r\n[a-z]{0,5}\r\n){0,3}(--X--\r\n)?"
            .prop_map(String::into_bytes),
    ]
}

/// The detail entries each carry `type`, `loc` and `msg`; 400s carry a string detail.
fn check(rejection: &Rejection) {
    let (bytes, is_422) = match rejection {
        Rejection::Unprocessable(b) => (b, true),
        Rejection::BadRequest(b) => (b, false),
    };
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("rejection is JSON");
    if is_422 {
        let entries = v["detail"].as_array().expect("detail list");
        assert!(!entries.is_empty());
        for e in entries {
            assert!(
                e["type"].is_string() && e["loc"].is_array() && e["msg"].is_string(),
                "{e}"
            );
        }
    } else {
        assert!(v["detail"].is_string());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn validators_never_panic(ct in content_type(), body in body()) {
        let ct = ct.as_deref();
        for result in [
            register(ct, &body).map(drop),
            login(ct, &body).map(drop),
            refresh(ct, &body).map(drop),
        ] {
            if let Err(r) = result {
                check(&r);
            }
        }
        let _ = bearer_token(Some(&body));
    }
}

/// Python's `quote_plus`, one byte at a time.
fn python_quote_plus(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn login_reencodes_as_python_urlencode(
        username in "\\PC{0,12}",
        password in "[ -~]{0,12}",
        client_secret in proptest::option::of("[ a-z%+&=\u{e9}]{0,8}"),
    ) {
        let form = Login {
            username: username.as_str().into(),
            password: password.as_str().into(),
            grant_type: Some("password".into()),
            scope: "".into(),
            client_id: None,
            client_secret: client_secret.as_deref().map(Into::into),
        };
        let mut want = format!(
            "grant_type=password&username={}&password={}&scope=",
            python_quote_plus(&username),
            python_quote_plus(&password),
        );
        if let Some(secret) = &client_secret {
            want.push_str("&client_secret=");
            want.push_str(&python_quote_plus(secret));
        }
        prop_assert_eq!(&form.to_upstream_body()[..], want.as_bytes());
    }
}

#[test]
fn deep_nesting_is_a_400_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let r = refresh(Some(b"application/json"), deep.as_bytes()).map(drop);
    assert_eq!(
        r,
        Err(Rejection::BadRequest(
            r#"{"detail":"There was an error parsing the body"}"#.into()
        ))
    );
}

/// A form body close to the ready shape: half the time the six names in FastAPI's order
/// with some left out, otherwise any of them (and a stranger) in any order; values from an
/// alphabet with escapes both canonical and not.
fn near_ready_form() -> impl Strategy<Value = String> {
    // The six fields in FastAPI's order, and a stranger.
    let names: Vec<&str> = super::form::FIELDS.into_iter().chain(["x"]).collect();
    // Mostly tokens `quote_plus` writes itself (so that many bodies are ready), sometimes
    // one it never writes.
    let value = || {
        let canonical = proptest::sample::select(vec![
            "a", "Z", "0", "-", "~", ".", "_", "+", "password", "%40", "%2A", "%2B", "%26", "%3D",
            "%3B", "%7F", "%00",
        ]);
        let other = proptest::sample::select(vec![
            "%2a", "%41", "%20", "%C3%A9", "%FF", "%4", "@", "*", " ", "%", ";", "=", "é",
        ]);
        proptest::collection::vec(prop_oneof![12 => canonical, 1 => other], 0..4)
            .prop_map(|parts| parts.concat())
    };
    let join = |fields: Vec<(&str, String)>| {
        fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let grant_type = prop_oneof![Just("password".to_owned()), Just(String::new()), value()];
    let ordered = (
        proptest::option::weighted(0.8, grant_type),
        proptest::collection::vec(proptest::option::weighted(0.8, value()), 5),
    )
        .prop_map(move |(grant_type, mut values)| {
            values.insert(0, grant_type);
            join(
                names
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some((*k, v?)))
                    .collect(),
            )
        });
    let shuffled = proptest::collection::vec(
        (
            proptest::sample::select(
                super::form::FIELDS
                    .into_iter()
                    .chain(["x"])
                    .collect::<Vec<_>>(),
            ),
            value(),
        ),
        0..8,
    )
    .prop_map(join);
    // A ready-looking form with one flaw in its structure rather than its values.
    let mangled = (ordered.clone(), 0..7usize).prop_map(|(form, how)| match how {
        0 => format!("{form}&"),
        1 => format!("&{form}"),
        2 => form.replacen('&', "&&", 1),
        3 => form.replacen('&', ";", 1),
        4 => form.replacen('=', "%3D", 1),
        5 => form.replacen("username", "Username", 1),
        _ => form.replacen("password=", "password", 1),
    });
    prop_oneof![2 => ordered, 1 => shuffled, 1 => mangled]
}

/// The `(name, value)` pairs of a form with empty optional fields dropped: what the central
/// service reads from it (an absent optional field and an empty one read alike).
fn meaning(form: &[u8]) -> Vec<(String, String)> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(form).unwrap();
    fields
        .into_iter()
        .filter(|(k, v)| !v.is_empty() || matches!(k.as_str(), "username" | "password"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Passing a form through unchanged is only a shortcut: what passes is valid for the full
    /// decode and means to the central service what its re-encoding means, byte for byte once
    /// empty optional fields are dropped. (Anything else takes the full decode itself.)
    #[test]
    fn ready_login_forms_mean_what_their_re_encoding_means(form in near_ready_form()) {
        let ct = Some(b"application/x-www-form-urlencoded".as_slice());
        let body = bytes::Bytes::from(form.clone());
        let passed = login_upstream_body(ct, &body).is_ok_and(|out| out.as_ptr() == body.as_ptr());
        if passed {
            let slow = login(ct, &body).map(|l| l.to_upstream_body());
            prop_assert!(slow.is_ok(), "{}: passed through, but the full decode says {:?}", form, slow);
            let slow = slow.unwrap();
            prop_assert_eq!(meaning(&slow), meaning(&body), "{}", form);
            let drop_empty = |b: &[u8]| {
                b.split(|&c| c == b'&')
                    .filter(|p| !p.ends_with(b"=") || p.starts_with(b"username") || p.starts_with(b"password"))
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(drop_empty(&slow), drop_empty(&body), "{}", form);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Both ways of writing the upstream JSON (no escapes, and escapes) give compact JSON as
    /// Python's `json.dumps(..., ensure_ascii=False, separators=(",", ":"))` writes it, which
    /// is also serde_json's compact form for strings.
    #[test]
    fn upstream_json_is_compact_json(email in "\\PC{0,8}|[a-z\"\\\\\n\u{1}\u{7f}é]{0,8}", password in "\\PC{0,8}") {
        let body = super::outbound::json_object(&[("email", &email), ("password", &password)]);
        let want = serde_json::to_vec(&serde_json::json!({"email": email, "password": password})).unwrap();
        prop_assert_eq!(&body[..], &want[..]);
    }
}

//! The JSON content-type check, against the latin-1 decoding it stands in for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use proptest::prelude::*;

use super::*;
use crate::validate::pytext::latin1;

/// Starlette's view: the header decoded as latin-1, then `get_content_type()`.
fn is_json_decoded(content_type: Option<&[u8]>) -> bool {
    let Some(raw) = content_type.filter(|v| !v.is_empty()) else {
        return false;
    };
    let value = latin1(raw);
    let ctype = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches(is_python_space);
    let Some((main, sub)) = ctype.split_once('/') else {
        return false;
    };
    if sub.contains('/') || !main.eq_ignore_ascii_case("application") {
        return false;
    }
    let sub = sub.to_ascii_lowercase();
    sub == "json" || sub.ends_with("+json")
}

fn header() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ \t\u{b}\u{1c}]{0,2}(?i:application)/(?i:json|x\\+json|\\+json|vnd\\+jso|js)[ /;]{0,2}"
            .prop_map(String::into_bytes),
        proptest::collection::vec(
            proptest::sample::select(b"aApPjJsSoOnN+/; \t\x85\xa0\xc5".to_vec()),
            0..16
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn is_json_reads_bytes_as_starlette_reads_latin1(raw in header()) {
        prop_assert_eq!(is_json(Some(&raw)), is_json_decoded(Some(&raw)));
    }
}

#[test]
fn is_json_examples() {
    assert!(is_json(Some(b"application/json")));
    assert!(is_json(Some(
        b"\xa0Application/VND.API+JSON ; charset=utf-8"
    )));
    assert!(!is_json(Some(b"application/json/x")));
    assert!(!is_json(Some(b"text/json")));
    assert!(!is_json(Some(b"")));
    assert!(!is_json(None));
}

#[test]
fn long_digit_runs_are_counted_exactly() {
    let digits = |n: usize| "7".repeat(n);
    assert!(!has_long_digit_run(digits(4300).as_bytes()));
    assert!(has_long_digit_run(digits(4301).as_bytes()));
    assert!(!has_long_digit_run(
        format!("{0},{0}", digits(4300)).as_bytes()
    ));
    assert!(has_long_digit_run(format!("x{}x", digits(4301)).as_bytes()));
}

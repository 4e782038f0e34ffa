#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use super::*;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/idna-3.21.jsonl"
));

#[test]
fn the_tables_are_the_recorded_packages() {
    assert_eq!(t::IDNA_VERSION, "3.21");
}

#[test]
fn decodes_and_refuses_as_pythons_idna() {
    assert_eq!(decode("xn--bcher-kva.de").unwrap(), "bücher.de");
    assert_eq!(
        decode("xn--a.um").unwrap_err(),
        r"Codepoint U+0080 at position 1 of '\x80' not allowed"
    );
    assert_eq!(decode("xn--zz.com").unwrap_err(), "Invalid A-label");
    assert_eq!(
        decode("xn---bbk.com").unwrap_err(),
        "A-label is not the canonical Punycode encoding of its U-label"
    );
    // A lone surrogate decodes in Python and is refused by name.
    assert_eq!(
        decode("xn--ib9b.com").unwrap_err(),
        r"Codepoint U+D800 at position 1 of '\ud800' not allowed"
    );
    assert_eq!(repr(&[0x27, 0x61]), r#""'a""#);
    assert_eq!(repr(&[0x27, 0x22]), r#"'\'"'"#);
}

/// Every address of `tests/vectors/idna-3.21.jsonl` (recorded from pydantic 2.14, email-validator
/// 2.4 and idna 3.21 by `tests/vectors/idna_emails.py`): the same address or the same words.
#[test]
fn every_recorded_punycode_address_gets_email_validators_answer() {
    let mut n = 0;
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let input = v["input"].as_str().unwrap();
        let got = super::super::email::validate(input).map(std::borrow::Cow::into_owned);
        if v["valid"].as_bool().unwrap() {
            assert_eq!(
                got,
                Ok(v["normalized"].as_str().unwrap().to_owned()),
                "{input:?}"
            );
        } else {
            let msg = v["msg"].as_str().unwrap();
            let reason = msg
                .strip_prefix("value is not a valid email address: ")
                .unwrap();
            assert_eq!(got, Err(reason.to_owned()), "{input:?}");
        }
        n += 1;
    }
    assert!(n > 1000, "{n} vectors");
}

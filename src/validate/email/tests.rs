#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use proptest::prelude::*;

use std::borrow::Cow;

use super::*;

#[test]
fn normalises_like_email_validator() {
    // Each pair was checked against email-validator 2.4 via pydantic 2.
    assert_eq!(
        validate("John Doe <j@example.com>").unwrap(),
        "j@example.com"
    );
    assert_eq!(validate("  a@example.com ").unwrap(), "a@example.com");
    assert_eq!(
        validate("Postmaster@Example.com").unwrap(),
        "postmaster@example.com"
    );
    assert_eq!(validate("A@Bücher.DE").unwrap(), "A@bücher.de");
    assert_eq!(validate("a@xn--e1afmkfd.xn--p1ai").unwrap(), "a@пример.рф");
}

/// Found by `bench/diff_fuzz.py`: a non-ASCII domain is only mapped (UTS-46) before the dot
/// and hyphen rules, and its labels are then checked one by one as `idna.alabel` checks them,
/// in email-validator's order and words (these were "Codepoint not allowed", "Invalid A-label"
/// or the DNS label-length reason).
#[test]
fn international_domains_fail_in_email_validators_order() {
    let reason = |s: &str| validate(s).unwrap_err();
    assert_eq!(
        reason("a@\u{65e5}\u{672c}.\u{301}a"),
        "The part after the @-sign is invalid (Label begins with an illegal combining character)."
    );
    assert_eq!(
        reason("{\u{212a}@com.\u{301}a.1."),
        "An email address cannot end with a period."
    );
    assert_eq!(
        reason(&format!(
            "user@example.B\u{dc}CHER.{}.co.uk",
            "a".repeat(64)
        )),
        "The part after the @-sign is invalid (Label too long)."
    );
    assert_eq!(
        reason("|@example.xn--a.i\u{307}"),
        "The part after the @-sign is invalid (Codepoint U+0080 at position 1 of '\\x80' not allowed)."
    );
    assert!(validate(&format!("user@b\u{fc}cher.{}.com", "a".repeat(63))).is_ok());
}

/// Found by `bench/diff_fuzz.py`: an IPv6 literal's reason is Python's `ipaddress` error,
/// word for word (it was "... does not appear to be an IPv6 address" for all of them).
#[test]
fn ip_literals_fail_in_pythons_ipaddress_words() {
    let reason = |s: &str| validate(s).unwrap_err();
    let v6 = |e: &str| format!("The IPv6 address in brackets after the @-sign is not valid ({e}).");
    assert_eq!(reason("a@[IPv6:fe80::1%eth0]"), v6("It has a zone index"));
    assert_eq!(
        reason("a@[IPv6:fe80::1%]"),
        v6(r#"Invalid IPv6 address: "'fe80::1%'""#)
    );
    assert_eq!(reason("a@[ipv6:::/1]"), v6("Unexpected '/' in '::/1'"));
    assert_eq!(
        reason("a@[IPv6:fe80'x]"),
        v6(r#"At least 3 parts expected in "fe80'x""#)
    );
    assert_eq!(
        reason("a@[IPv6:1::2::3]"),
        v6("At most one '::' permitted in '1::2::3'")
    );
    assert_eq!(
        reason("a@[IPv6:1:2:3:4:5:6:7::8]"),
        v6("Expected at most 7 other parts with '::' in '1:2:3:4:5:6:7::8'")
    );
    assert_eq!(
        reason("a@[IPv6:::1.2.3.x]"),
        v6("Only decimal digits permitted in 'x' in '1.2.3.x' in '::1.2.3.x'")
    );
    assert_eq!(
        reason("a@[IPv6:2001:db8::1]"),
        "A bracketed IP address after the @-sign is not allowed here."
    );
}

#[test]
fn explains_like_email_validator() {
    let reason = |s: &str| validate(s).unwrap_err();
    assert_eq!(
        reason("a\u{200b}@example.com"),
        "The email address contains unsafe characters: ZERO WIDTH SPACE."
    );
    assert_eq!(
        reason("a\tb@example.com"),
        "The email address contains invalid characters before the @-sign: U+0009."
    );
    assert_eq!(reason("a＠example.com"), "The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign.");
    assert_eq!(reason("a@ab--cd.com"), "An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.");
    assert_eq!(
        reason("a<b@example.com"),
        "An open angle bracket at the start of the email address has to be followed by a close angle bracket at the end."
    );
    assert_eq!(
        reason(&"x".repeat(2049)),
        "Length must not exceed 2048 characters"
    );
}

#[test]
fn plain_addresses_take_the_shortcut() {
    assert_eq!(plain_ascii("user@example.com"), Some(false));
    assert_eq!(plain_ascii("User@Example.COM"), Some(true));
    assert!(matches!(
        validate("user@example.com"),
        Ok(Cow::Borrowed("user@example.com"))
    ));
    assert_eq!(validate("User@Example.COM").unwrap(), "User@example.com");
    assert_eq!(check("User@Example.COM"), Ok(()));
    // Left to the full rules: mailbox names, Punycode, special-use and bare host names.
    for other in [
        "Info@example.com",
        "a@xn--bcher-kva.de",
        "a@x.test",
        "a@localhost",
    ] {
        assert!(plain_ascii(other).is_none(), "{other}");
    }
}

/// Addresses near every rule the shortcut restates: lengths, mailbox names, `--`, special-use
/// and dotless domains, and characters it must leave to the full rules.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~@<>\" \t()\\[\\]\u{e9}-]{0,24}",
        "(info|Abuse|POSTMASTER|[a-zA-Z0-9._%+=-]{1,12})@([a-zA-Z0-9-]{1,8}\\.){0,3}(xn--[a-z0-9]{2,6}|[a-zA-Z0-9-]{1,8}|test|LOCAL|onion|Localhost|arpa|invalid)",
        "[a-z]{1,70}@([a-z0-9-]{55,66}\\.){1,4}[a-zA-Z]{2,3}",
        "[a-z]{60,66}@[a-z]{1,3}\\.[a-z]{2}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The shortcut is only ever taken where the full rules give the very same address, and
    /// `check` says what the full rules say.
    #[test]
    fn plain_ascii_agrees_with_the_full_rules(value in address()) {
        let faithful = validate_faithfully(&value);
        if plain_ascii(&value).is_some() {
            prop_assert_eq!(validate(&value).map(Cow::into_owned), faithful.clone());
        }
        prop_assert_eq!(check(&value), faithful.map(drop));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// And it is taken for the plain addresses it describes, so that it cannot narrow unseen.
    #[test]
    fn plain_ascii_takes_plain_addresses(
        local in "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,8}(\\.[a-zA-Z0-9_+-]{1,5}){0,2}",
        labels in proptest::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9]|-[a-zA-Z0-9]){0,6}", 1..4),
        tld in "[a-zA-Z]{2,9}",
    ) {
        let special = ["arpa", "invalid", "local", "localhost", "onion", "test"];
        prop_assume!(!special.iter().any(|s| tld.eq_ignore_ascii_case(s)));
        prop_assume!(!CASE_INSENSITIVE_MAILBOX_NAMES.iter().any(|m| local.eq_ignore_ascii_case(m)));
        let domain = format!("{}.{tld}", labels.join("."));
        let value = format!("{local}@{domain}");
        let want = format!("{local}@{}", domain.to_ascii_lowercase());
        prop_assert_eq!(plain_ascii(&value), Some(domain.bytes().any(|b| b.is_ascii_uppercase())));
        prop_assert_eq!(validate(&value).map(Cow::into_owned), Ok(want));
    }
}

#[test]
fn atext_is_rfc_5322s() {
    for b in 0..=u8::MAX {
        let rfc = b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
        assert_eq!(ATEXT[usize::from(b)], rfc, "{b:#04x}");
    }
}

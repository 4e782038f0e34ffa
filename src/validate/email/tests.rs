#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

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

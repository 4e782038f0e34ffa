#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use super::*;

#[test]
fn unquote_plus_matches_python() {
    assert_eq!(unquote_plus(b"a+b%21"), "a b!");
    assert_eq!(unquote_plus(b"%zz%4"), "%zz%4");
    assert_eq!(unquote_plus(b"%ff"), "\u{FFFD}");
    // Raw non-ASCII bytes are latin-1 characters (Starlette decodes before unquoting).
    assert_eq!(unquote_plus("é".as_bytes()), "Ã©");
}

#[test]
fn options_header_like_python_multipart() {
    let (ct, params) = options_header("Multipart/Form-Data; Boundary=\"a;b\"; name*=x");
    assert_eq!(ct, "multipart/form-data");
    assert_eq!(params, vec![("boundary".to_owned(), "a;b".to_owned())]);
}

#[test]
fn too_many_fields_is_a_400() {
    let body = "a&".repeat(1001);
    assert!(matches!(
        urlencoded(body.as_bytes()),
        Err(Rejection::BadRequest(_))
    ));
    assert_eq!(
        urlencoded("a&".repeat(1000).as_bytes())
            .map(|i| i.len())
            .ok(),
        Some(1000)
    );
}

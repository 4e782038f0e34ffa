#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a test reports failure

use super::*;

fn err(s: &str) -> (&'static str, usize) {
    match loads(s.as_bytes()) {
        Err(DecodeError::Syntax { msg, pos }) => (msg, pos),
        other => panic!("{s:?}: {other:?}"),
    }
}

#[test]
fn messages_and_positions_match_cpython() {
    // Each pair was checked against CPython 3.11's json.loads.
    let cases = [
        (r#""\u""#, ("Invalid \\uXXXX escape", 2)),
        (r#""\u1234"#, ("Invalid \\uXXXX escape", 2)),
        (r#""\ud800\u12""#, ("Invalid \\uXXXX escape", 8)),
        (r#""\x""#, ("Invalid \\escape", 1)),
        ("\"abc", ("Unterminated string starting at", 0)),
        ("[1,]", ("Expecting value", 3)),
        ("{\"a\" 1}", ("Expecting ':' delimiter", 5)),
        ("[1 2]", ("Expecting ',' delimiter", 3)),
        ("-", ("Expecting value", 0)),
        ("1.", ("Extra data", 1)),
        ("1e", ("Extra data", 1)),
        ("01", ("Extra data", 1)),
        (
            "{",
            ("Expecting property name enclosed in double quotes", 1),
        ),
        ("  {\"a\":1} x", ("Extra data", 10)),
        ("Infinityx", ("Extra data", 8)),
        ("   ", ("Expecting value", 3)),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), want, "{text:?}");
    }
}

#[test]
fn python_extensions_and_duplicates() {
    assert_eq!(
        loads(b"-Infinity").unwrap(),
        Value::Float(f64::NEG_INFINITY)
    );
    assert!(matches!(loads(b"NaN").unwrap(), Value::Float(f) if f.is_nan()));
    let v = loads(br#"{"a":1,"b":2,"a":3}"#).unwrap();
    assert_eq!(
        v,
        Value::Object(vec![
            ("a".into(), Value::Int("3".into())),
            ("b".into(), Value::Int("2".into()))
        ])
    );
    assert_eq!(loads(b"-0").unwrap(), Value::Int("0".into()));
    assert_eq!(
        loads(br#""\ud83d\ude00""#).unwrap(),
        Value::Str("😀".into())
    );
}

/// CPython's `float()` is correctly rounded; serde_json's default parser is one step off on
/// this literal (found by the json fuzz target, kept in fuzz/seeds/json/float-correctly-rounded).
#[test]
fn floats_are_correctly_rounded_as_cpython_reads_them() {
    // struct.pack('>d', float('333333336.36663333333e33')).hex() in CPython
    let Value::Float(f) = loads(b"333333336.36663333333e33  ").unwrap() else {
        panic!("not a float");
    };
    assert_eq!(f.to_bits(), 0x488e_9ca1_0b2d_42de, "{f:e}");
    assert!(
        matches!(loads(b"-0.0").unwrap(), Value::Float(z) if z.to_bits() == (-0.0f64).to_bits())
    );
}

#[test]
fn refusals_that_are_not_syntax_errors() {
    assert_eq!(loads(br#""\ud800""#), Err(DecodeError::Unparsable));
    assert_eq!(loads(b"\xff"), Err(DecodeError::Unparsable));
    let deep = "[".repeat(MAX_DEPTH + 1);
    assert_eq!(loads(deep.as_bytes()), Err(DecodeError::Unparsable));
}

//! Strips the insignificant whitespace from a JSON text without reordering anything (a parse
//! and re-serialise through `serde_json::Value` would sort object keys, and Swagger UI shows
//! fields in document order).

/// `text` without whitespace outside strings. Assumes `text` is JSON; a unit test checks the
/// embedded document parses to the same value before and after.
pub fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn whitespace_inside_strings_and_escapes_survive() {
        let text = "{ \"a b\" : [ 1 , \"x\\\" y\" ],\n \"c\":\"\\\\\" }";
        assert_eq!(
            super::json(text),
            "{\"a b\":[1,\"x\\\" y\"],\"c\":\"\\\\\"}"
        );
    }
}

//! Renders FastAPI's `RequestValidationError` bodies (`{"detail":[...]}`), with our one
//! deliberate difference: an `input` that is, or holds, a secret is left out.

use super::echo;
use super::json::Value;
use super::Rejection;

/// Fields whose values the proxy never echoes in a 422 (they are secrets).
pub const SECRET_FIELDS: [&str; 3] = ["password", "client_secret", "refresh_token"];

/// Where an error points: `["body"]`, `["body", "field"]` or `["body", 17]`.
#[derive(Debug, Clone, Copy)]
pub enum Loc {
    Body,
    Field(&'static str),
    Position(usize),
}

/// The `input` member of one error.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Left out: the error concerns a secret, or the input holds one.
    Redacted,
    Null,
    EmptyObject,
    Value(&'a Value),
    Text(&'a str),
}

/// One entry of `detail`, in pydantic's key order: type, loc, msg, input, ctx.
#[derive(Debug)]
pub struct Entry<'a> {
    pub kind: &'static str,
    pub loc: Loc,
    pub msg: String,
    pub input: Input<'a>,
    /// A single `ctx` member (`reason`, `error` or `pattern`) and its text.
    pub ctx: Option<(&'static str, String)>,
}

impl<'a> Entry<'a> {
    /// `missing`: "Field required".
    pub fn missing(loc: Loc, input: Input<'a>) -> Self {
        Self::plain("missing", loc, "Field required", input)
    }

    /// `string_type`: a non-string where a string belongs.
    pub fn string_type(field: &'static str, input: &'a Value) -> Self {
        Self::plain(
            "string_type",
            Loc::Field(field),
            "Input should be a valid string",
            field_input(field, input),
        )
    }

    /// `model_attributes_type`: the body is not an object.
    pub fn not_an_object(input: Input<'a>) -> Self {
        let msg = "Input should be a valid dictionary or object to extract fields from";
        Self::plain("model_attributes_type", Loc::Body, msg, input)
    }

    pub fn plain(kind: &'static str, loc: Loc, msg: &str, input: Input<'a>) -> Self {
        Entry {
            kind,
            loc,
            msg: msg.to_owned(),
            input,
            ctx: None,
        }
    }
}

/// The input of an error about `field` itself: redacted when the field is a secret.
pub fn field_input<'a>(field: &str, value: &'a Value) -> Input<'a> {
    if SECRET_FIELDS.contains(&field) {
        Input::Redacted
    } else {
        Input::Value(value)
    }
}

/// The decoded body as an `input`: redacted when it is an object holding a secret field.
pub fn body_input(body: &Value) -> Input<'_> {
    match body {
        Value::Object(fields)
            if fields
                .iter()
                .any(|(k, _)| SECRET_FIELDS.contains(&k.as_str())) =>
        {
            Input::Redacted
        }
        _ => Input::Value(body),
    }
}

/// The 422 for these entries, serialised as Starlette does.
pub fn unprocessable(entries: &[Entry<'_>]) -> Rejection {
    let mut out = String::with_capacity(128);
    out.push_str("{\"detail\":[");
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        render(&mut out, e);
    }
    out.push_str("]}");
    Rejection::Unprocessable(out.into())
}

/// A 400 `{"detail":"..."}`.
pub fn bad_request(detail: &str) -> Rejection {
    let mut out = String::from("{\"detail\":");
    echo::string(&mut out, detail);
    out.push('}');
    Rejection::BadRequest(out.into())
}

/// FastAPI's 400 when decoding the body raised something other than `JSONDecodeError`.
pub fn unparsable_body() -> Rejection {
    bad_request("There was an error parsing the body")
}

fn render(out: &mut String, e: &Entry<'_>) {
    out.push_str("{\"type\":");
    echo::string(out, e.kind);
    out.push_str(",\"loc\":[\"body\"");
    match e.loc {
        Loc::Body => {}
        Loc::Field(name) => {
            out.push(',');
            echo::string(out, name);
        }
        Loc::Position(pos) => {
            out.push(',');
            out.push_str(&pos.to_string());
        }
    }
    out.push_str("],\"msg\":");
    echo::string(out, &e.msg);
    let about_secret = matches!(e.loc, Loc::Field(f) if SECRET_FIELDS.contains(&f));
    let input = if about_secret {
        Input::Redacted
    } else {
        e.input
    };
    match input {
        Input::Redacted => {}
        Input::Null => out.push_str(",\"input\":null"),
        Input::EmptyObject => out.push_str(",\"input\":{}"),
        Input::Value(v) => {
            out.push_str(",\"input\":");
            echo::value(out, v);
        }
        Input::Text(s) => {
            out.push_str(",\"input\":");
            echo::string(out, s);
        }
    }
    if let Some((key, text)) = &e.ctx {
        out.push_str(",\"ctx\":{");
        echo::string(out, key);
        out.push(':');
        echo::string(out, text);
        out.push('}');
    }
    out.push('}');
}

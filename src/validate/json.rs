//! A JSON decoder that accepts, rejects and reports exactly like CPython 3.11's `json.loads`.
//!
//! Only the slow path uses it (a request the fast serde path could not take), so it favours
//! fidelity over speed: positions are code-point indices (`JSONDecodeError.pos`), messages are
//! CPython's, `NaN`/`Infinity`/`-Infinity` are accepted, duplicate keys keep the first key's
//! position and the last value. Nesting is bounded: Python raises `RecursionError` near 1000
//! levels, which FastAPI turns into a 400, and so do we (see [`DecodeError::Unparsable`]).

use super::pytext;

/// Deepest nesting accepted. CPython's default recursion limit (1000) minus the frames an
/// ASGI stack already uses puts FastAPI's real limit between 950 and 1000.
pub const MAX_DEPTH: usize = 960;
/// CPython's `sys.int_info.default_max_str_digits`: longer integer literals raise `ValueError`.
const MAX_INT_DIGITS: usize = 4300;

/// A decoded JSON value, as Python holds it after `json.loads`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer, as canonical decimal digits (Python ints are unbounded).
    Int(String),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    /// Keys in first-seen order; a repeated key replaced the value in place (Python `dict`).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// `dict.get(key)` on an object; `None` for anything else or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why the body is not a Python JSON document.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// `json.JSONDecodeError`: FastAPI answers 422 `json_invalid` with this message and position.
    Syntax { msg: &'static str, pos: usize },
    /// Any other exception while decoding (`UnicodeDecodeError`, `RecursionError`, the int
    /// digit limit) or a lone surrogate we refuse to carry: FastAPI answers 400.
    Unparsable,
}

/// `json.loads(body)` for a body that is not empty.
pub fn loads(body: &[u8]) -> Result<Value, DecodeError> {
    let text = pytext::decode(body).map_err(|_| DecodeError::Unparsable)?;
    let mut parser = Parser {
        s: &text,
        depth: 0,
        lone_surrogate: false,
    };
    let start = parser.skip_ws(0);
    let (value, end) = parser.scan(start)?;
    let end = parser.skip_ws(end);
    if end != text.len() {
        return Err(syntax("Extra data", end));
    }
    if parser.lone_surrogate {
        // Python would carry the surrogate and fail later (500) or forward it; we refuse it.
        return Err(DecodeError::Unparsable);
    }
    Ok(value)
}

fn syntax(msg: &'static str, pos: usize) -> DecodeError {
    DecodeError::Syntax { msg, pos }
}

struct Parser<'a> {
    s: &'a [u32],
    depth: usize,
    lone_surrogate: bool,
}

type Scan = Result<(Value, usize), DecodeError>;

fn is_ws(c: u32) -> bool {
    matches!(c, 0x20 | 0x09 | 0x0A | 0x0D)
}

fn is_digit(c: Option<u32>) -> bool {
    matches!(c, Some(0x30..=0x39))
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<u32> {
        self.s.get(i).copied()
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    fn starts_with(&self, i: usize, lit: &str) -> bool {
        let lit = lit.as_bytes();
        self.s
            .get(i..i + lit.len())
            .is_some_and(|w| w.iter().zip(lit).all(|(&a, &b)| a == u32::from(b)))
    }

    /// CPython `scan_once`: one value starting exactly at `i`.
    fn scan(&mut self, i: usize) -> Scan {
        match self.at(i) {
            Some(0x22) => self.string(i + 1).map(|(s, end)| (Value::Str(s), end)),
            Some(0x7B) => self.nested(i, Self::object),
            Some(0x5B) => self.nested(i, Self::array),
            _ if self.starts_with(i, "null") => Ok((Value::Null, i + 4)),
            _ if self.starts_with(i, "true") => Ok((Value::Bool(true), i + 4)),
            _ if self.starts_with(i, "false") => Ok((Value::Bool(false), i + 5)),
            _ if self.starts_with(i, "NaN") => Ok((Value::Float(f64::NAN), i + 3)),
            _ if self.starts_with(i, "Infinity") => Ok((Value::Float(f64::INFINITY), i + 8)),
            _ if self.starts_with(i, "-Infinity") => Ok((Value::Float(f64::NEG_INFINITY), i + 9)),
            _ => self.number(i),
        }
    }

    fn nested(&mut self, i: usize, f: fn(&mut Self, usize) -> Scan) -> Scan {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::Unparsable);
        }
        self.depth += 1;
        let r = f(self, i + 1);
        self.depth -= 1;
        r
    }

    /// CPython `_match_number_unicode`; "Expecting value" when nothing matches.
    fn number(&self, start: usize) -> Scan {
        let mut i = start;
        if self.at(i) == Some(0x2D) {
            i += 1;
        }
        match self.at(i) {
            Some(0x31..=0x39) => {
                while is_digit(self.at(i)) {
                    i += 1;
                }
            }
            Some(0x30) => i += 1,
            _ => return Err(syntax("Expecting value", start)),
        }
        let int_end = i;
        if self.at(i) == Some(0x2E) && is_digit(self.at(i + 1)) {
            i += 2;
            while is_digit(self.at(i)) {
                i += 1;
            }
        }
        if matches!(self.at(i), Some(0x65 | 0x45)) {
            let mut j = i + 1;
            if matches!(self.at(j), Some(0x2B | 0x2D)) {
                j += 1;
            }
            let digits_from = j;
            while is_digit(self.at(j)) {
                j += 1;
            }
            if j > digits_from {
                i = j;
            }
        }
        let text: String = self
            .s
            .get(start..i)
            .unwrap_or_default()
            .iter()
            .filter_map(|&c| char::from_u32(c))
            .collect();
        if i == int_end {
            let digits = text.trim_start_matches('-');
            if digits.len() > MAX_INT_DIGITS {
                return Err(DecodeError::Unparsable);
            }
            let canonical = if digits == "0" {
                digits.to_owned()
            } else {
                text
            };
            return Ok((Value::Int(canonical), i));
        }
        // Python's float() of a JSON number literal: correctly rounded, overflow gives inf.
        let f = text.parse::<f64>().map_err(|_| DecodeError::Unparsable)?;
        Ok((Value::Float(f), i))
    }

    fn array(&mut self, mut i: usize) -> Scan {
        let mut items = Vec::new();
        i = self.skip_ws(i);
        if self.at(i) == Some(0x5D) {
            return Ok((Value::Array(items), i + 1));
        }
        loop {
            let (v, next) = self.scan(i)?;
            items.push(v);
            i = self.skip_ws(next);
            match self.at(i) {
                Some(0x5D) => return Ok((Value::Array(items), i + 1)),
                Some(0x2C) => i = self.skip_ws(i + 1),
                _ => return Err(syntax("Expecting ',' delimiter", i)),
            }
        }
    }

    fn object(&mut self, mut i: usize) -> Scan {
        let mut fields: Vec<(String, Value)> = Vec::new();
        i = self.skip_ws(i);
        if self.at(i) == Some(0x7D) {
            return Ok((Value::Object(fields), i + 1));
        }
        loop {
            if self.at(i) != Some(0x22) {
                return Err(syntax(
                    "Expecting property name enclosed in double quotes",
                    i,
                ));
            }
            let (key, next) = self.string(i + 1)?;
            i = self.skip_ws(next);
            if self.at(i) != Some(0x3A) {
                return Err(syntax("Expecting ':' delimiter", i));
            }
            i = self.skip_ws(i + 1);
            let (v, next) = self.scan(i)?;
            insert_last_wins(&mut fields, key, v);
            i = self.skip_ws(next);
            match self.at(i) {
                Some(0x7D) => return Ok((Value::Object(fields), i + 1)),
                Some(0x2C) => i = self.skip_ws(i + 1),
                _ => return Err(syntax("Expecting ',' delimiter", i)),
            }
        }
    }

    /// CPython `scanstring`, strict mode; `i` is just past the opening quote.
    fn string(&mut self, i: usize) -> Result<(String, usize), DecodeError> {
        let begin = i - 1;
        let mut out = String::new();
        let mut j = i;
        loop {
            let Some(c) = self.at(j) else {
                return Err(syntax("Unterminated string starting at", begin));
            };
            match c {
                0x22 => return Ok((out, j + 1)),
                0x5C => {
                    let (cp, next) = self.escape(j, begin)?;
                    self.push(&mut out, cp);
                    j = next;
                }
                0..=0x1F => return Err(syntax("Invalid control character at", j)),
                _ => {
                    self.push(&mut out, c);
                    j += 1;
                }
            }
        }
    }

    fn push(&mut self, out: &mut String, cp: u32) {
        if let Some(ch) = char::from_u32(cp) {
            out.push(ch);
        } else {
            self.lone_surrogate = true;
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }

    /// One backslash escape at `j`; returns the code point and the index after it.
    fn escape(&self, j: usize, begin: usize) -> Result<(u32, usize), DecodeError> {
        let Some(e) = self.at(j + 1) else {
            return Err(syntax("Unterminated string starting at", begin));
        };
        let simple = match e {
            0x22 | 0x5C | 0x2F => Some(e),
            0x62 => Some(0x08),
            0x66 => Some(0x0C),
            0x6E => Some(0x0A),
            0x72 => Some(0x0D),
            0x74 => Some(0x09),
            0x75 => None,
            _ => return Err(syntax("Invalid \\escape", j)),
        };
        if let Some(cp) = simple {
            return Ok((cp, j + 2));
        }
        let u = j + 1;
        // CPython requires a character after the four digits (`end >= len` check).
        if u + 5 >= self.s.len() {
            return Err(syntax("Invalid \\uXXXX escape", u));
        }
        let hi = self
            .hex4(u + 1)
            .ok_or(syntax("Invalid \\uXXXX escape", u))?;
        let after = u + 5;
        if (0xD800..=0xDBFF).contains(&hi)
            && after + 6 < self.s.len()
            && self.at(after) == Some(0x5C)
            && self.at(after + 1) == Some(0x75)
        {
            let lo = self
                .hex4(after + 2)
                .ok_or(syntax("Invalid \\uXXXX escape", after + 1))?;
            if (0xDC00..=0xDFFF).contains(&lo) {
                return Ok((0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), after + 6));
            }
        }
        Ok((hi, after))
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let w = self.s.get(i..i + 4)?;
        w.iter().try_fold(0u32, |acc, &c| {
            Some(acc * 16 + char::from_u32(c)?.to_digit(16)?)
        })
    }
}

/// Python `dict` semantics for a repeated key: the first key's slot, the last value.
fn insert_last_wins(fields: &mut Vec<(String, Value)>, key: String, v: Value) {
    if let Some(slot) = fields.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = v;
    } else {
        fields.push((key, v));
    }
}

#[cfg(test)]
mod tests;

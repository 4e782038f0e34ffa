//! `idna.decode` of the Python `idna` package (3.21), as email-validator 2.4 calls it on a
//! domain with a Punycode label: CPython's Punycode, the canonical-encoding check and IDNA
//! 2008's `check_label`, each failure worded as that package words it.

use std::fmt::Write as _;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};

use super::idna_tables as t;
use super::punycode;

type Reason = String;

/// The Unicode form of an ASCII domain (lower-case LDH labels, as email-validator has it by
/// then), or the `IDNAError` message.
pub fn decode(ascii: &str) -> Result<String, Reason> {
    let mut out = String::with_capacity(ascii.len() * 2);
    for (n, label) in ascii.split('.').enumerate() {
        if n > 0 {
            out.push('.');
        }
        let label = ulabel(&label.to_ascii_lowercase())?;
        if label.is_empty() {
            return Err("Empty label".to_owned());
        }
        // `check_label` refused every surrogate (none is PVALID), so each is a `char`.
        out.extend(label.into_iter().filter_map(char::from_u32));
    }
    Ok(out)
}

/// `idna.alabel(label)`: an ASCII label is checked as `ulabel` checks it (Punycode decoded
/// and validated if it is one) and kept as it is; any other is checked by `check_label` and
/// Punycode-encoded. Either way an A-label over 63 bytes is "Label too long".
pub fn alabel(label: &str) -> Result<String, Reason> {
    let ascii = if label.is_ascii() {
        ulabel(&label.to_ascii_lowercase())?;
        label.to_owned()
    } else {
        let code_points: Vec<u32> = label.chars().map(u32::from).collect();
        check_label(&code_points)?;
        let mut ascii = String::from("xn--");
        ascii.extend(punycode::encode(&code_points).into_iter().map(char::from));
        ascii
    };
    if ascii.len() > 63 {
        return Err("Label too long".to_owned());
    }
    Ok(ascii)
}

/// `ulabel` of an ASCII label.
fn ulabel(label: &str) -> Result<Vec<u32>, Reason> {
    let Some(code) = label.strip_prefix("xn--") else {
        let label: Vec<u32> = label.chars().map(u32::from).collect();
        check_label(&label)?;
        return Ok(label);
    };
    if code.is_empty() {
        return Err("Malformed A-label, no Punycode eligible content found".to_owned());
    }
    if code.ends_with('-') {
        return Err("A-label must not end with a hyphen".to_owned());
    }
    let decoded = punycode::decode(code.as_bytes()).ok_or("Invalid A-label")?;
    if punycode::encode(&decoded) != code.as_bytes() {
        return Err("A-label is not the canonical Punycode encoding of its U-label".to_owned());
    }
    check_label(&decoded)?;
    Ok(decoded)
}

fn contains(ranges: &[(u32, u32)], cp: u32) -> bool {
    let i = ranges.partition_point(|&(start, _)| start <= cp);
    i > 0 && ranges.get(i - 1).is_some_and(|&(_, end)| cp < end)
}

/// `unicodedata.bidirectional`; `""` for a code point that Python's Unicode does not know.
fn bidi(cp: u32) -> &'static str {
    let i = t::BIDI.partition_point(|&(start, _)| start <= cp);
    t::BIDI
        .get(i.wrapping_sub(1))
        .map_or("", |&(_, class)| class)
}

fn category(cp: u32) -> G {
    char::from_u32(cp).map_or(G::Surrogate, UnicodeGeneralCategory::general_category)
}

/// `check_label`: IDNA 2008 validity of one label.
fn check_label(label: &[u32]) -> Result<(), Reason> {
    if label.is_empty() {
        return Err("Empty Label".to_owned());
    }
    if is_ldh(label) {
        return Ok(());
    }
    if label.len() > 254 {
        return Err("Label too long".to_owned());
    }
    if !is_nfc(label) {
        return Err("Label must be in Normalization Form C".to_owned());
    }
    if label.get(2..4) == Some(&[0x2D, 0x2D]) {
        return Err("Label has disallowed hyphens in 3rd and 4th position".to_owned());
    }
    if label.first() == Some(&0x2D) || label.last() == Some(&0x2D) {
        return Err("Label must not start or end with a hyphen".to_owned());
    }
    if label.first().is_some_and(|&cp| {
        matches!(
            category(cp),
            G::NonspacingMark | G::SpacingMark | G::EnclosingMark
        )
    }) {
        return Err("Label begins with an illegal combining character".to_owned());
    }
    for (pos, &cp) in label.iter().enumerate() {
        let (u, at, text) = (unot(cp), pos + 1, repr(label));
        if contains(t::PVALID, cp) {
            continue;
        }
        if contains(t::CONTEXTJ, cp) {
            match valid_contextj(label, pos) {
                Err(()) => {
                    return Err(format!(
                        "Unknown codepoint adjacent to joiner {u} at position {at} in {text}"
                    ))
                }
                Ok(false) => {
                    return Err(format!("Joiner {u} not allowed at position {at} in {text}"))
                }
                Ok(true) => {}
            }
        } else if contains(t::CONTEXTO, cp) {
            if !valid_contexto(label, pos) {
                return Err(format!(
                    "Codepoint {u} not allowed at position {at} in {text}"
                ));
            }
        } else {
            return Err(format!(
                "Codepoint {u} at position {at} of {text} not allowed"
            ));
        }
    }
    check_bidi(label)
}

/// `_ldh_label_re`: `(?!..--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z`.
fn is_ldh(label: &[u32]) -> bool {
    let alnum = |cp: &u32| matches!(cp, 0x30..=0x39 | 0x61..=0x7A);
    label.len() <= 63
        && label.get(2..4) != Some(&[0x2D, 0x2D])
        && label.first().is_some_and(alnum)
        && label.last().is_some_and(alnum)
        && label.iter().all(|cp| alnum(cp) || *cp == 0x2D)
}

/// `unicodedata.normalize("NFC", label) == label`; a surrogate is a starter that composes
/// with nothing, so the runs between surrogates are normalised on their own.
fn is_nfc(label: &[u32]) -> bool {
    label.split(|&cp| char::from_u32(cp).is_none()).all(|run| {
        let chars = run.iter().filter_map(|&cp| char::from_u32(cp));
        chars.clone().nfc().eq(chars)
    })
}

/// `valid_contextj`; `Err` where Python's `_combining_class` raises (an unnamed character).
fn valid_contextj(label: &[u32], pos: usize) -> Result<bool, ()> {
    let virama_before = match pos.checked_sub(1).and_then(|p| label.get(p)) {
        Some(&before) => combining_class(before)? == 9,
        None => false,
    };
    match label.get(pos) {
        Some(0x200C) if virama_before => Ok(true),
        Some(0x200C) => {
            // The nearest character on each side that is not transparent (joining type T).
            let joins = |cp: Option<&u32>, sides: [&[(u32, u32)]; 2]| {
                cp.is_some_and(|&cp| sides.iter().any(|side| contains(side, cp)))
            };
            let not_t = |cp: &&u32| !contains(t::JOINING_T, **cp);
            let before = label.get(..pos).unwrap_or_default();
            let after = label.get(pos + 1..).unwrap_or_default();
            Ok(joins(
                before.iter().rev().find(not_t),
                [t::JOINING_L, t::JOINING_D],
            ) && joins(after.iter().find(not_t), [t::JOINING_R, t::JOINING_D]))
        }
        Some(0x200D) => Ok(virama_before),
        _ => Ok(false),
    }
}

/// `_combining_class`: Python raises for a class-0 character without a name.
fn combining_class(cp: u32) -> Result<u8, ()> {
    let c = char::from_u32(cp).ok_or(())?;
    let class = canonical_combining_class(c);
    if class == 0 && (bidi(cp).is_empty() || unicode_names2::name(c).is_none()) {
        return Err(());
    }
    Ok(class)
}

/// `valid_contexto`.
fn valid_contexto(label: &[u32], pos: usize) -> bool {
    let at = |p: Option<usize>| p.and_then(|p| label.get(p)).copied();
    let (before, after) = (at(pos.checked_sub(1)), at(pos.checked_add(1)));
    match label.get(pos) {
        Some(0x00B7) => before == Some(0x6C) && after == Some(0x6C),
        Some(0x0375) => after.is_some_and(|cp| contains(t::GREEK, cp)),
        Some(0x05F3 | 0x05F4) => before.is_some_and(|cp| contains(t::HEBREW, cp)),
        Some(0x30FB) => label.iter().any(|&cp| {
            cp != 0x30FB
                && [t::HIRAGANA, t::KATAKANA, t::HAN]
                    .iter()
                    .any(|script| contains(script, cp))
        }),
        Some(0x0660..=0x0669) => !label.iter().any(|cp| (0x06F0..=0x06F9).contains(cp)),
        Some(0x06F0..=0x06F9) => !label.iter().any(|cp| (0x0660..=0x0669).contains(cp)),
        _ => false,
    }
}

/// `check_bidi` (RFC 5893), applied only to a label with a right-to-left character.
fn check_bidi(label: &[u32]) -> Result<(), Reason> {
    let text = || repr(label);
    let mut rtl_label = false;
    for (idx, &cp) in label.iter().enumerate() {
        match bidi(cp) {
            "" => {
                return Err(format!(
                    "Unknown directionality in label {} at position {}",
                    text(),
                    idx + 1
                ))
            }
            "R" | "AL" | "AN" => rtl_label = true,
            _ => {}
        }
    }
    if !rtl_label {
        return Ok(());
    }
    let rtl = match label.first().map(|&cp| bidi(cp)) {
        Some("R" | "AL") => true,
        Some("L") => false,
        _ => {
            return Err(format!(
                "First codepoint in label {} must be directionality L, R or AL",
                text()
            ))
        }
    };
    let (mut valid_ending, mut number_type) = (false, None);
    for (idx, &cp) in label.iter().enumerate() {
        let direction = bidi(cp);
        let (allowed, ending): (&[&str], &[&str]) = if rtl {
            (
                &["R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"],
                &["R", "AL", "EN", "AN"],
            )
        } else {
            (
                &["L", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"],
                &["L", "EN"],
            )
        };
        if !allowed.contains(&direction) {
            let side = if rtl {
                "right-to-left"
            } else {
                "left-to-right"
            };
            return Err(format!(
                "Invalid direction for codepoint at position {} in a {side} label",
                idx + 1
            ));
        }
        if ending.contains(&direction) {
            valid_ending = true;
        } else if direction != "NSM" {
            valid_ending = false;
        }
        if rtl && matches!(direction, "AN" | "EN") {
            match number_type {
                None => number_type = Some(direction),
                Some(seen) if seen != direction => {
                    return Err("Can not mix numeral types in a right-to-left label".to_owned())
                }
                Some(_) => {}
            }
        }
    }
    if valid_ending {
        Ok(())
    } else {
        Err("Label ends with illegal codepoint directionality".to_owned())
    }
}

/// `_unot`: `U+` and at least four upper-case hex digits.
fn unot(cp: u32) -> String {
    format!("U+{cp:04X}")
}

/// Python's `repr` of a `str`: single quotes unless it holds one and no double quote,
/// printable characters as they are, others as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub(super) fn repr(label: &[u32]) -> String {
    let quote = if label.contains(&0x27) && !label.contains(&0x22) {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(label.len() + 2);
    out.push(quote);
    for &cp in label {
        match char::from_u32(cp) {
            Some(c) if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            Some('\t') => out.push_str("\\t"),
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some(c) if is_printable(cp) => out.push(c),
            // Writing to a `String` cannot fail.
            _ if cp < 0x100 => _ = write!(out, "\\x{cp:02x}"),
            _ if cp < 0x1_0000 => _ = write!(out, "\\u{cp:04x}"),
            _ => _ = write!(out, "\\U{cp:08x}"),
        }
    }
    out.push(quote);
    out
}

/// `str.isprintable` of one character: not in Cc, Cf, Cs, Co, Cn, Zl, Zp or Zs (but the
/// space). "Cn" is Python's Unicode's: a code point it has no bidirectional class for.
fn is_printable(cp: u32) -> bool {
    cp == 0x20
        || !(bidi(cp).is_empty()
            || matches!(
                category(cp),
                G::Control
                    | G::Format
                    | G::Surrogate
                    | G::PrivateUse
                    | G::Unassigned
                    | G::LineSeparator
                    | G::ParagraphSeparator
                    | G::SpaceSeparator
            ))
}

#[cfg(test)]
mod tests;

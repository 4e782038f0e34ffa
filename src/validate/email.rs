//! Pydantic's `EmailStr`: python-email-validator 2.4 syntax rules with deliverability checks
//! off, as wrapped by `pydantic.networks.validate_email` (length cap, CR/LF, "Name <addr>").
//! Returns the normalised address or the reason text that goes into `ctx.reason`.

use unicode_normalization::UnicodeNormalization;

use super::email_chars::{
    check_dot_atom, check_unsafe, combines_with_next, is_atext, is_atext_intl, is_py_space,
    length_reason, sorted_displays, ATEXT,
};
use super::email_domain;

const MAX_EMAIL_LENGTH: usize = 2048;
const EMAIL_MAX_LENGTH: usize = 254;
/// RFC 2142 mailbox names that are lower-cased.
const CASE_INSENSITIVE_MAILBOX_NAMES: [&str; 15] = [
    "info",
    "marketing",
    "sales",
    "support",
    "abuse",
    "noc",
    "security",
    "postmaster",
    "hostmaster",
    "usenet",
    "news",
    "webmaster",
    "www",
    "uucp",
    "ftp",
];

type Reason = String;

/// Validates an email address exactly as `EmailStr` does. The usual address is decided in one
/// pass without allocating ([`plain_ascii`]).
pub fn check(value: &str) -> Result<(), Reason> {
    if plain_ascii(value).is_some() {
        return Ok(());
    }
    validate_faithfully(value).map(drop)
}

/// The address as `EmailStr` normalises it (informative since contract v2: nothing forwards
/// it); borrows `value` when it is already normal.
#[cfg(test)]
pub fn validate(value: &str) -> Result<std::borrow::Cow<'_, str>, Reason> {
    use std::borrow::Cow;
    match plain_ascii(value) {
        Some(false) => Ok(Cow::Borrowed(value)),
        Some(true) => Ok(Cow::Owned(lower_case_domain(value))),
        None => validate_faithfully(value).map(Cow::Owned),
    }
}

/// A plain address with its domain lower-cased, as email-validator normalises it.
#[cfg(test)]
fn lower_case_domain(value: &str) -> String {
    let mut normalised = value.to_owned();
    if let Some(at) = normalised.find('@') {
        if let Some(domain) = normalised.get_mut(at + 1..) {
            domain.make_ascii_lowercase();
        }
    }
    normalised
}

/// The usual address, decided without the full rules: an ASCII dot-atom local part that is
/// not an RFC 2142 mailbox name, `@`, and a plain host name: LDH labels of at most 63 bytes
/// that neither start nor end with `-`, no `--` anywhere (so neither Punycode nor the "ab--"
/// rule applies), at least one dot, at most 253 bytes, ending in a letter, its top-level
/// label not special-use. Such an address is valid, and normalises to itself with a
/// lower-cased domain; `Some(true)` says its domain has an upper-case letter. One pass over
/// the bytes. `None` for anything else, valid or not: [`validate_faithfully`] decides those
/// and explains the invalid ones.
fn plain_ascii(value: &str) -> Option<bool> {
    let bytes = value.as_bytes();
    // ASCII throughout (checked below), so the length in bytes is the length in characters.
    if bytes.len() > EMAIL_MAX_LENGTH {
        return None;
    }
    let at = dot_atom_before_at(bytes)?;
    let local = bytes.get(..at)?;
    let domain = bytes.get(at + 1..)?;
    if local.len() <= LONGEST_MAILBOX_NAME
        && CASE_INSENSITIVE_MAILBOX_NAMES
            .iter()
            .any(|name| local.eq_ignore_ascii_case(name.as_bytes()))
    {
        return None;
    }
    plain_host_name(domain)
}

const LONGEST_MAILBOX_NAME: usize = 10;
// Kept in step with the list: a longer name added there would otherwise never be matched.
const _: () = {
    let mut i = 0;
    while i < CASE_INSENSITIVE_MAILBOX_NAMES.len() {
        assert!(CASE_INSENSITIVE_MAILBOX_NAMES[i].len() <= LONGEST_MAILBOX_NAME);
        i += 1;
    }
};

/// The index of the first `@`, when what comes before it is a dot-atom of ASCII `atext`.
fn dot_atom_before_at(bytes: &[u8]) -> Option<usize> {
    let mut after_dot = true; // at the start, as after a dot: a dot here is an error
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'@' if !after_dot => return Some(i),
            b'.' if !after_dot => after_dot = true,
            _ if ATEXT[usize::from(b)] => after_dot = false,
            _ => return None,
        }
    }
    None
}

/// Whether `domain` is a plain host name as [`plain_ascii`] describes it, and if so whether
/// it has an upper-case letter.
fn plain_host_name(domain: &[u8]) -> Option<bool> {
    const DOMAIN_MAX_LENGTH: usize = 253;
    const DNS_LABEL_LENGTH_LIMIT: usize = 63;
    if domain.len() > DOMAIN_MAX_LENGTH {
        return None;
    }
    let (mut label_start, mut prev, mut dots, mut has_upper) = (0, b'.', 0, false);
    for (i, &b) in domain.iter().enumerate() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => {}
            b'A'..=b'Z' => has_upper = true,
            b'-' if prev != b'.' && prev != b'-' => {}
            b'.' if prev != b'.' && prev != b'-' && i - label_start <= DNS_LABEL_LENGTH_LIMIT => {
                label_start = i + 1;
                dots += 1;
            }
            _ => return None,
        }
        prev = b;
    }
    let tld = domain.get(label_start..)?;
    let valid = dots > 0
        && prev.is_ascii_alphabetic()
        && tld.len() <= DNS_LABEL_LENGTH_LIMIT
        && !email_domain::SPECIAL_USE_DOMAIN_NAMES
            .iter()
            .any(|name| tld.eq_ignore_ascii_case(name.as_bytes()));
    valid.then_some(has_upper)
}

/// python-email-validator's rules, step by step as upstream takes them.
pub(crate) fn validate_faithfully(value: &str) -> Result<String, Reason> {
    if value.chars().count() > MAX_EMAIL_LENGTH {
        return Err(format!(
            "Length must not exceed {MAX_EMAIL_LENGTH} characters"
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err("Carriage return and line feed characters are not allowed".to_owned());
    }
    let addr = super::email_pretty::strip_display_name(value).unwrap_or(value);
    validate_email(addr.trim_matches(is_py_space))
}

/// The parts `split_email` returns.
struct Split {
    display_name: Option<String>,
    local: String,
    unquoted_local: String,
    quoted: bool,
    domain: String,
}

fn validate_email(email: &str) -> Result<String, Reason> {
    let split = split_email(email)?;
    let original = format!("{}@{}", split.local, split.domain);
    let mut local = validate_local(&split.unquoted_local, split.quoted)?;
    let nfc: String = if split.unquoted_local.is_ascii() {
        split.unquoted_local.clone() // ASCII is already NFC
    } else {
        split.unquoted_local.nfc().collect()
    };
    if nfc != split.unquoted_local {
        local = validate_local(&nfc, split.quoted)
            .map_err(|e| format!("After Unicode normalization: {e}"))?;
    }
    if split.quoted {
        return Err("Quoting the part before the @-sign is not allowed here.".to_owned());
    }
    let (mut local_part, ascii_local) = local;
    if ascii_local && CASE_INSENSITIVE_MAILBOX_NAMES.contains(&local_part.to_lowercase().as_str()) {
        local_part = local_part.to_lowercase();
    }
    if split.domain.is_empty() {
        return Err("There must be something after the @-sign.".to_owned());
    }
    let domain = if split.domain.starts_with('[')
        && split.domain.ends_with(']')
        && split.domain.len() >= 2
    {
        let inner = split
            .domain
            .get(1..split.domain.len() - 1)
            .unwrap_or_default();
        email_domain::validate_literal(inner)?;
        return Err("A bracketed IP address after the @-sign is not allowed here.".to_owned());
    } else {
        email_domain::validate_name(&split.domain)?
    };
    let normalized = format!("{local_part}@{}", domain.unicode);
    check_lengths(
        &original,
        &normalized,
        &format!("{local_part}@{}", domain.ascii),
    )?;
    if split.display_name.is_some() {
        return Err(
            "A display name and angle brackets around the email address are not permitted here."
                .to_owned(),
        );
    }
    Ok(normalized)
}

/// `validate_email_local_part`; returns the local part and whether it is plain ASCII.
fn validate_local(local: &str, quoted: bool) -> Result<(String, bool), Reason> {
    if local.is_empty() {
        return Err("There must be something before the @-sign.".to_owned());
    }
    if is_dot_atom(local, is_atext) {
        return Ok((local.to_owned(), true));
    }
    let valid_quoted = if is_dot_atom(local, is_atext_intl) {
        false
    } else if quoted {
        let bad = local
            .chars()
            .filter(|&c| !(('\u{20}'..='\u{7E}').contains(&c) || u32::from(c) >= 0x80));
        let shown = sorted_displays(bad);
        if !shown.is_empty() {
            return Err(format!(
                "The email address contains invalid characters in quotes before the @-sign: {shown}."
            ));
        }
        true
    } else {
        let shown = sorted_displays(local.chars().filter(|&c| !(is_atext_intl(c) || c == '.')));
        if !shown.is_empty() {
            return Err(format!(
                "The email address contains invalid characters before the @-sign: {shown}."
            ));
        }
        check_dot_atom(
            local,
            "An email address cannot start with a {}.",
            "An email address cannot have a {} immediately before the @-sign.",
            false,
        )?;
        return Err("The email address contains invalid characters before the @-sign.".to_owned());
    };
    check_unsafe(local, valid_quoted)?;
    let ascii = valid_quoted && local.chars().all(|c| ('\u{20}'..='\u{7E}').contains(&c));
    if valid_quoted {
        let escaped = local.replace('\\', "\\\\").replace('"', "\\\"");
        return Ok((format!("\"{escaped}\""), ascii));
    }
    Ok((local.to_owned(), false))
}

/// `[atext]+(\.[atext]+)*` over the whole string.
fn is_dot_atom(s: &str, atext: fn(char) -> bool) -> bool {
    s.split('.')
        .all(|part| !part.is_empty() && part.chars().all(atext))
}

fn split_email(email: &str) -> Result<Split, Reason> {
    let (left, right) = split_at_unquoted(email, &['@', '<'])?;
    let (display_name, local, domain) = if let Some(rest) = right.strip_prefix('<') {
        let (name, quoted) = unquote(left.trim_end_matches(is_py_space))?;
        super::email_pretty::check_display_name(&name, quoted)?;
        if !rest.contains('>') {
            return Err("An open angle bracket at the start of the email address has to be followed by a close angle bracket at the end.".to_owned());
        }
        let rest = rest.trim_end_matches(' ');
        let Some(addr) = rest.strip_suffix('>') else {
            return Err("There can't be anything after the email address.".to_owned());
        };
        let (local, domain) = split_at_unquoted(addr, &['@'])?;
        (Some(name), local, domain)
    } else {
        (None, left, right)
    };
    let domain = domain.strip_prefix('@').unwrap_or(domain).to_owned();
    let (unquoted_local, quoted) = unquote(local)?;
    Ok(Split {
        display_name,
        local: local.to_owned(),
        unquoted_local,
        quoted,
        domain,
    })
}

/// `split_string_at_unquoted_special`: the part before the first special character outside
/// quotes that does not combine with what follows, and the rest (starting with that special).
fn split_at_unquoted<'s>(text: &'s str, specials: &[char]) -> Result<(&'s str, &'s str), Reason> {
    let mut inside_quote = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if combines_with_next(text.get(i..).unwrap_or_default(), c) {
            continue;
        }
        if inside_quote {
            if c == '\\' && !escaped {
                escaped = true;
            } else if c == '"' && !escaped {
                inside_quote = false;
                escaped = false;
            } else {
                escaped = false;
            }
        } else if c == '"' {
            inside_quote = true;
        } else if specials.contains(&c) {
            return Ok(text.split_at(i));
        }
    }
    if text.contains('＠') {
        return Err("The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign.".to_owned());
    }
    if text.contains('﹫') {
        return Err("The email address has the \"small commercial at\" character instead of a regular at-sign.".to_owned());
    }
    Err("An email address must have an @-sign.".to_owned())
}

/// `unquote_quoted_string`: strips surrounding quotes and backslash escapes.
fn unquote(text: &str) -> Result<(String, bool), Reason> {
    let mut quoted = false;
    let mut escaped = false;
    let mut value = String::with_capacity(text.len());
    for (n, (i, c)) in text.char_indices().enumerate() {
        if quoted {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                let rest = text.get(i + 1..).unwrap_or_default();
                if !rest.is_empty() {
                    let shown: Vec<String> =
                        rest.chars().map(super::email_chars::display).collect();
                    return Err(format!(
                        "Extra character(s) found after close quote: {}",
                        shown.join(", ")
                    ));
                }
                break;
            } else {
                value.push(c);
            }
        } else if n == 0 && c == '"' {
            quoted = true;
        } else {
            value.push(c);
        }
    }
    Ok((value, quoted))
}

/// `validate_email_length`: the original, normalised and IDNA-ASCII forms, in UTF-8 bytes.
fn check_lengths(original: &str, normalized: &str, ascii: &str) -> Result<(), Reason> {
    let forms = [
        (original, None),
        (normalized, Some("after normalization")),
        (
            ascii,
            Some("when the part after the @-sign is converted to IDNA ASCII"),
        ),
    ];
    for (addr, why) in forms {
        let chars = addr.chars().count();
        let Some(diff) = addr.len().checked_sub(EMAIL_MAX_LENGTH).filter(|&d| d > 0) else {
            continue;
        };
        let s = if diff > 1 { "s" } else { "" };
        let reason = match why {
            None if chars == addr.len() => length_reason(chars, EMAIL_MAX_LENGTH),
            None => {
                let widest = addr.chars().map(char::len_utf8).max().unwrap_or(1);
                let least = (diff / widest).max(1);
                if least == diff {
                    format!("({diff} character{s} too many)")
                } else {
                    format!("({least}-{diff} character{s} too many)")
                }
            }
            Some(why) => format!("{why} ({diff} byte{s} too many)"),
        };
        return Err(format!("The email address is too long {reason}."));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

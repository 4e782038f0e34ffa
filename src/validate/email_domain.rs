//! The part after the @-sign: email-validator's `validate_email_domain_name` (UTS-46 mapping,
//! IDNA, length and special-use rules) and `validate_email_domain_literal`.

use icu_normalizer::uts46::Uts46Mapper;

use super::email_chars::{
    check_dot_atom, check_unsafe, is_hostname_char, length_reason, sorted_displays, uts46_valid,
};

const DOMAIN_MAX_LENGTH: usize = 253;
const DNS_LABEL_LENGTH_LIMIT: usize = 63;
/// email-validator's `SPECIAL_USE_DOMAIN_NAMES` (RFC 6761 and friends).
pub const SPECIAL_USE_DOMAIN_NAMES: [&str; 6] =
    ["arpa", "invalid", "local", "localhost", "onion", "test"];

/// A valid domain: its IDNA ASCII form and the Unicode form used in the normalised address.
pub struct Domain {
    pub ascii: String,
    pub unicode: String,
}

pub fn validate_name(domain: &str) -> Result<Domain, String> {
    let chars = domain.chars().count();
    if chars > DOMAIN_MAX_LENGTH {
        return Err(format!(
            "The email address is too long after the @-sign {}.",
            length_reason(chars, DOMAIN_MAX_LENGTH)
        ));
    }
    invalid_chars(domain, "")?;
    check_unsafe(domain, false)?;
    let bad = sorted_displays(domain.chars().filter(|&c| !uts46_valid(c)));
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    let mapped = remap(domain)?;
    invalid_chars(&mapped, " after Unicode normalization")?;
    check_dot_atom(
        &mapped,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
        true,
    )?;
    for label in mapped.split('.') {
        let b = label.as_bytes();
        if b.len() >= 4
            && b.get(2..4) == Some(b"--".as_slice())
            && !label.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("xn"))
        {
            return Err("An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.".to_owned());
        }
    }
    let ascii = if is_ascii_hostname(&mapped) {
        mapped
    } else {
        to_ascii(&mapped)?
    };
    check_ascii_lengths(&ascii, domain)?;
    if !ascii.contains('.') {
        return Err("The part after the @-sign is not valid. It should have a period.".to_owned());
    }
    if !ascii.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(
            "The part after the @-sign is not valid. It is not within a valid top-level domain."
                .to_owned(),
        );
    }
    if SPECIAL_USE_DOMAIN_NAMES
        .iter()
        .any(|d| ascii == *d || ascii.strip_suffix(d).is_some_and(|p| p.ends_with('.')))
    {
        return Err("The part after the @-sign is a special-use or reserved name that cannot be used with email.".to_owned());
    }
    if !ascii.contains("xn--") {
        return Ok(Domain {
            unicode: ascii.clone(),
            ascii,
        });
    }
    let unicode = super::email_idna::decode(&ascii)
        .map_err(|e| format!("The part after the @-sign is not valid IDNA ({e})."))?;
    invalid_chars(&unicode, "")?;
    check_unsafe(&unicode, false)?;
    Ok(Domain { ascii, unicode })
}

fn invalid_chars(s: &str, when: &str) -> Result<(), String> {
    let bad = sorted_displays(s.chars().filter(|&c| !is_hostname_char(c)));
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "The part after the @-sign contains invalid characters{when}: {bad}."
        ))
    }
}

/// `DOT_ATOM_TEXT_HOSTNAME`: LDH labels that neither start nor end with a hyphen.
fn is_ascii_hostname(s: &str) -> bool {
    s.split('.').all(|l| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    })
}

/// `idna.uts46_remap(domain, std3_rules=False, transitional=False)`: the UTS-46 mapping
/// (case folding, mapped and ignored code points, label separators turned into dots) and NFC,
/// nothing more. It validates no label and decodes no Punycode: that is `idna.alabel`'s
/// business, later ([`to_ascii`]), after the dot and hyphen rules, with its own messages.
fn remap(domain: &str) -> Result<String, String> {
    if domain.is_ascii() {
        return Ok(domain.to_ascii_lowercase());
    }
    let mapped: String = Uts46Mapper::new().map_normalize(domain.chars()).collect();
    // A disallowed code point comes out as U+FFFD (itself disallowed), where Python raises.
    if mapped.contains('\u{FFFD}') {
        return Err(
            "The part after the @-sign contains invalid characters (Codepoint not allowed)."
                .to_owned(),
        );
    }
    Ok(mapped)
}

/// `idna.alabel` on every label, as email-validator calls it.
fn to_ascii(mapped: &str) -> Result<String, String> {
    let mut ascii = String::with_capacity(mapped.len() + 8);
    for (n, label) in mapped.split('.').enumerate() {
        if n > 0 {
            ascii.push('.');
        }
        let label = super::email_idna::alabel(label)
            .map_err(|e| format!("The part after the @-sign is invalid ({e})."))?;
        ascii.push_str(&label);
    }
    if !is_ascii_hostname(&ascii) {
        return Err(
            "The email address contains invalid characters after the @-sign after IDNA encoding."
                .to_owned(),
        );
    }
    Ok(ascii)
}

fn check_ascii_lengths(ascii: &str, original: &str) -> Result<(), String> {
    if ascii.len() > DOMAIN_MAX_LENGTH {
        if ascii == original {
            return Err(format!(
                "The email address is too long after the @-sign {}.",
                length_reason(ascii.len(), DOMAIN_MAX_LENGTH)
            ));
        }
        let diff = ascii.len() - DOMAIN_MAX_LENGTH;
        let s = if diff == 1 { "" } else { "s" };
        return Err(format!("The email address is too long after the @-sign ({diff} byte{s} too many after IDNA encoding)."));
    }
    for label in ascii.split('.') {
        if label.len() > DNS_LABEL_LENGTH_LIMIT {
            return Err(format!(
                "After the @-sign, periods cannot be separated by so many characters {}.",
                length_reason(label.len(), DNS_LABEL_LENGTH_LIMIT)
            ));
        }
    }
    Ok(())
}

/// `validate_email_domain_literal`: the error, if any, for `[...]` (the caller then refuses
/// every literal, as `allow_domain_literal` is off).
pub fn validate_literal(literal: &str) -> Result<(), String> {
    if !literal.is_empty() && literal.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return ipv4(literal).map(drop).map_err(|e| {
            format!("The address in brackets after the @-sign is not valid: It is not an IPv4 address ({e}) or is missing an address literal tag.")
        });
    }
    if literal
        .get(..5)
        .is_some_and(|t| t.eq_ignore_ascii_case("ipv6:"))
    {
        let addr = literal.get(5..).unwrap_or_default();
        let invalid = |e: String| {
            format!("The IPv6 address in brackets after the @-sign is not valid ({e}).")
        };
        let scope_id = ipv6(addr).map_err(invalid)?;
        // Python accepts a zone index ("%eth0"); RFC 5321 4.1.3 does not.
        if scope_id.is_some() {
            return Err(invalid("It has a zone index".to_owned()));
        }
        return Ok(());
    }
    if !literal.contains(':') {
        return Err("The part after the @-sign in brackets is not an IPv4 address and has no address literal tag.".to_owned());
    }
    let bad = sorted_displays(
        literal
            .chars()
            .filter(|&c| !('\u{21}'..='\u{FA}').contains(&c)),
    );
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters in brackets: {bad}."
        ));
    }
    Err("The part after the @-sign contains an invalid address literal tag in brackets.".to_owned())
}

/// Python's `repr` of a `str`, as `ipaddress` quotes its input with `%r`.
fn py_repr(text: &str) -> String {
    super::email_idna::repr(&text.chars().map(u32::from).collect::<Vec<_>>())
}

/// CPython 3.11 `ipaddress.IPv4Address(text)`: the address, or its `AddressValueError`.
fn ipv4(text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err("Address cannot be empty".to_owned());
    }
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return Err(format!("Expected 4 octets in {}", py_repr(text)));
    }
    let in_text = |e: String| format!("{e} in {}", py_repr(text));
    let mut value = 0u32;
    for octet in octets {
        if octet.is_empty() {
            return Err(in_text("Empty octet not permitted".to_owned()));
        }
        if !octet.bytes().all(|b| b.is_ascii_digit()) {
            return Err(in_text(format!(
                "Only decimal digits permitted in {}",
                py_repr(octet)
            )));
        }
        if octet.len() > 3 {
            return Err(in_text(format!(
                "At most 3 characters permitted in {}",
                py_repr(octet)
            )));
        }
        if octet != "0" && octet.starts_with('0') {
            return Err(in_text(format!(
                "Leading zeros are not permitted in {}",
                py_repr(octet)
            )));
        }
        let n: u32 = octet.parse().unwrap_or(u32::MAX);
        if n > 255 {
            return Err(in_text(format!("Octet {n} (> 255) not permitted")));
        }
        value = value << 8 | n;
    }
    Ok(value)
}

/// CPython 3.11 `ipaddress.IPv6Address(text)`: its scope id (`%zone`), or its
/// `AddressValueError`, checked in its order and worded in its words.
fn ipv6(text: &str) -> Result<Option<&str>, String> {
    const HEXTETS: usize = 8;
    if text.contains('/') {
        return Err(format!("Unexpected '/' in {}", py_repr(text)));
    }
    let (ip, scope_id) = match text.split_once('%') {
        None => (text, None),
        Some((_, scope)) if scope.is_empty() || scope.contains('%') => {
            return Err(format!("Invalid IPv6 address: \"{}\"", py_repr(text)));
        }
        Some((ip, scope)) => (ip, Some(scope)),
    };
    if ip.is_empty() {
        return Err("Address cannot be empty".to_owned());
    }
    let quoted = py_repr(ip);
    let mut parts: Vec<String> = ip.split(':').map(str::to_owned).collect();
    if parts.len() < 3 {
        return Err(format!("At least 3 parts expected in {quoted}"));
    }
    if parts.last().is_some_and(|p| p.contains('.')) {
        let v4 = parts.pop().unwrap_or_default();
        let n = ipv4(&v4).map_err(|e| format!("{e} in {quoted}"))?;
        parts.push(format!("{:x}", n >> 16));
        parts.push(format!("{:x}", n & 0xFFFF));
    }
    if parts.len() > HEXTETS + 1 {
        return Err(format!("At most {HEXTETS} colons permitted in {quoted}"));
    }
    let n = parts.len();
    let empty = |i: usize| parts.get(i).is_some_and(String::is_empty);
    let mut skip_index = None;
    for i in 1..n - 1 {
        if empty(i) {
            if skip_index.is_some() {
                return Err(format!("At most one '::' permitted in {quoted}"));
            }
            skip_index = Some(i);
        }
    }
    let leading = || format!("Leading ':' only permitted as part of '::' in {quoted}");
    let trailing = || format!("Trailing ':' only permitted as part of '::' in {quoted}");
    let (hi, lo) = if let Some(skip) = skip_index {
        let (mut hi, mut lo) = (skip, n - skip - 1);
        if empty(0) {
            hi -= 1;
            if hi > 0 {
                return Err(leading());
            }
        }
        if empty(n - 1) {
            lo -= 1;
            if lo > 0 {
                return Err(trailing());
            }
        }
        if hi + lo >= HEXTETS {
            return Err(format!(
                "Expected at most {} other parts with '::' in {quoted}",
                HEXTETS - 1
            ));
        }
        (hi, lo)
    } else {
        if n != HEXTETS {
            return Err(format!(
                "Exactly {HEXTETS} parts expected without '::' in {quoted}"
            ));
        }
        if empty(0) {
            return Err(leading());
        }
        if empty(n - 1) {
            return Err(trailing());
        }
        (n, 0)
    };
    for hextet in parts.iter().take(hi).chain(parts.iter().skip(n - lo)) {
        if !hextet.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "Only hex digits permitted in {} in {quoted}",
                py_repr(hextet)
            ));
        }
        if hextet.len() > 4 {
            return Err(format!(
                "At most 4 characters permitted in {} in {quoted}",
                py_repr(hextet)
            ));
        }
        if hextet.is_empty() {
            return Err(format!(
                "invalid literal for int() with base 16: '' in {quoted}"
            ));
        }
    }
    Ok(scope_id)
}

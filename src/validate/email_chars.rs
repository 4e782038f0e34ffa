//! Character classes and messages shared by the email syntax rules, as python-email-validator
//! and Python's `unicodedata` define them.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
use GeneralCategory as G;

/// RFC 5322 `atext` (ASCII).
pub fn is_atext(c: char) -> bool {
    u8::try_from(c).is_ok_and(|b| ATEXT[usize::from(b)])
}

/// ASCII `atext` (RFC 5322) as a table: letters, digits and ``!#$%&'*+-/=?^_`{|}~``.
pub const ATEXT: [bool; 256] = {
    let mut table = [false; 256];
    let mut c: u8 = 0;
    loop {
        table[c as usize] = c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'/' | b'=' | b'?' | b'^'..=b'`' | b'{'..=b'~');
        if c == u8::MAX {
            break table;
        }
        c += 1;
    }
};

/// RFC 6531 `atext` for internationalised addresses: ASCII atext or any non-ASCII.
pub fn is_atext_intl(c: char) -> bool {
    is_atext(c) || u32::from(c) >= 0x80
}

/// `ATEXT_HOSTNAME_INTL`: letters, digits, hyphen, period, or any non-ASCII.
pub fn is_hostname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || u32::from(c) >= 0x80
}

/// Python `str.isspace()`.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// Python's `re` `\w` on `str`: `_` or a letter or number.
pub fn is_py_word(c: char) -> bool {
    c == '_'
        || matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
        )
}

/// `safe_character_display`: `repr(c)` for visible characters, else the Unicode name or `U+XXXX`.
pub fn display(c: char) -> String {
    if c == '\\' {
        return "\"\\\"".to_owned();
    }
    if is_visible(c) {
        return if c == '\'' {
            "\"'\"".to_owned()
        } else {
            format!("'{c}'")
        };
    }
    if let Some(name) = unicode_names2::name(c) {
        // unicode_names2 also names controls by alias; Python's unicodedata does not.
        if c.general_category() != GeneralCategory::Control {
            return name.to_string();
        }
    }
    let cp = u32::from(c);
    if cp < 0xFFFF {
        format!("U+{cp:04X}")
    } else {
        format!("U+{cp:08X}")
    }
}

/// Unicode categories L, N, P, S.
fn is_visible(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    )
}

/// `", ".join(sorted({display(c) for c in bad}))`: displays sorted as strings, deduplicated.
pub fn sorted_displays(bad: impl Iterator<Item = char>) -> String {
    let mut shown: Vec<String> = bad.map(display).collect();
    shown.sort_unstable();
    shown.dedup();
    shown.join(", ")
}

/// `check_unsafe_chars`: a leading mark, spaces (unless allowed), separators and C* categories.
pub fn check_unsafe(s: &str, allow_space: bool) -> Result<(), String> {
    let mut bad: Vec<char> = s
        .chars()
        .enumerate()
        .filter(|&(_, c)| !c.is_ascii_graphic())
        .filter(|&(i, c)| match c.general_category_group() {
            GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol => false,
            GeneralCategoryGroup::Mark => i == 0,
            GeneralCategoryGroup::Separator => {
                c.general_category() != GeneralCategory::SpaceSeparator || !allow_space
            }
            GeneralCategoryGroup::Other => true,
        })
        .map(|(_, c)| c)
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    // Here Python sorts the characters, then displays them (no deduplication of displays).
    bad.sort_unstable();
    bad.dedup();
    let shown: Vec<String> = bad.into_iter().map(display).collect();
    Err(format!(
        "The email address contains unsafe characters: {}.",
        shown.join(", ")
    ))
}

/// `unicodedata.normalize("NFC", text[i:i+32])[0] != c`: does `c` combine with what follows?
pub fn combines_with_next(window: &str, c: char) -> bool {
    // Two ASCII characters never compose; skip the normalisation on the common path.
    let next_is_ascii = window.chars().nth(1).is_none_or(|n| n.is_ascii());
    if c.is_ascii() && next_is_ascii {
        return false;
    }
    window.chars().take(32).nfc().next() != Some(c)
}

/// `get_length_reason`.
pub fn length_reason(len: usize, limit: usize) -> String {
    let diff = len.saturating_sub(limit);
    format!(
        "({diff} character{} too many)",
        if diff > 1 { "s" } else { "" }
    )
}

/// `check_dot_atom` (RFC 5322 3.2.3, RFC 952 for host names).
pub fn check_dot_atom(
    label: &str,
    start: &str,
    end: &str,
    is_hostname: bool,
) -> Result<(), String> {
    let fill = |template: &str, what: &str| template.replace("{}", what);
    if label.ends_with('.') {
        return Err(fill(end, "period"));
    }
    if label.starts_with('.') {
        return Err(fill(start, "period"));
    }
    if label.contains("..") {
        return Err("An email address cannot have two periods in a row.".to_owned());
    }
    if is_hostname {
        if label.ends_with('-') {
            return Err(fill(end, "hyphen"));
        }
        if label.starts_with('-') {
            return Err(fill(start, "hyphen"));
        }
        if label.contains(".-") || label.contains("-.") {
            return Err(
                "An email address cannot have a period and a hyphen next to each other.".to_owned(),
            );
        }
    }
    Ok(())
}

/// `uts46_valid_char`: characters idna's UTS-46 remap would reject, found empirically upstream.
pub fn uts46_valid(c: char) -> bool {
    if c.is_ascii() {
        return c != ' '; // the only ASCII character in a rejected category (Zs)
    }
    let cp = u32::from(c);
    if (0x80..=0x9F).contains(&cp) {
        return false;
    }
    if ((0x2010..=0x2060).contains(&cp)
        && !(0x2024..=0x2026).contains(&cp)
        && !(0x2028..=0x202E).contains(&cp))
        || matches!(cp, 0x00AD | 0x2064 | 0xFF0E)
        || (0x200B..=0x200D).contains(&cp)
        || (0x1BCA0..=0x1BCA3).contains(&cp)
    {
        return true;
    }
    if matches!(
        c.general_category(),
        G::Format
            | G::Unassigned
            | G::PrivateUse
            | G::Surrogate
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
    ) {
        return false;
    }
    // Characters whose (compatibility or canonical) decomposition contains a full stop.
    let mut one = [0u8; 4];
    let s: &str = c.encode_utf8(&mut one);
    !(s.nfkd().any(|d| d == '.') && c != '.')
}

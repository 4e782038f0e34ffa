//! The "Display Name <addr>" forms: Pydantic's `pretty_email_regex` (which takes the address
//! out of the brackets before email-validator sees it) and email-validator's display-name rules.

use super::email_chars::{check_unsafe, display, is_atext, is_py_space, is_py_word};

/// `pretty_email_regex.fullmatch(value)` group 3, if the whole value matches
/// `\s*(?:((?:N+\s+)*N+)|"((?:[^"]|\")+)")?\s*<(.+)>\s*`.
pub fn strip_display_name(value: &str) -> Option<&str> {
    let t = value.trim_start_matches(is_py_space);
    if let Some(quoted) = t.strip_prefix('"') {
        // The quoted name takes any characters; the regex backtracks from the longest name.
        return quoted
            .char_indices()
            .rev()
            .filter(|&(i, c)| c == '"' && i > 0)
            .find_map(|(i, _)| bracketed(quoted.get(i + 1..)?.trim_start_matches(is_py_space)));
    }
    let lt = t.find('<')?;
    let name = t.get(..lt)?;
    if name.chars().all(|c| is_name_char(c) || is_py_space(c)) {
        bracketed(t.get(lt..)?)
    } else {
        None
    }
}

/// `<(.+)>\s*` over the whole of `s`: the text up to the last `>` that only whitespace follows.
fn bracketed(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('<')?;
    let trimmed = inner.trim_end_matches(is_py_space);
    let addr = trimmed.strip_suffix('>')?;
    (!addr.is_empty()).then_some(addr)
}

/// The regex's unquoted-name class: `\w` and ``.!#$%&'*+-/=?^_`{|}~``.
fn is_name_char(c: char) -> bool {
    is_py_word(c) || ".!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// email-validator's checks of a display name before `<addr>`.
pub fn check_display_name(name: &str, quoted: bool) -> Result<(), String> {
    if !quoted {
        let mut bad: Vec<String> = name
            .chars()
            .filter(|&c| c == '.' || (!is_atext(c) && c != ' '))
            .map(display)
            .collect();
        bad.sort_unstable();
        bad.dedup();
        if !bad.is_empty() {
            return Err(format!(
                "The display name contains invalid characters when not quoted: {}.",
                bad.join(", ")
            ));
        }
    }
    check_unsafe(name, true)
}

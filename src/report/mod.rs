//! Reports of suite results: JUnit XML for CI, a terminal summary, a JSON document for machines,
//! and GitHub check runs.

pub mod github;
pub mod json;
pub mod junit;
pub mod summary;

/// Makes `s` safe for XML 1.0: control characters other than tab, newline and carriage return
/// become `\xNN`.
pub(crate) fn xml_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// At most `limit` bytes of `s`: its head and its tail, with a note of what was left out.
pub(crate) fn bounded(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let half = limit / 2;
    let mut head_end = half;
    while !s.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = s.len() - half;
    while !s.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    format!(
        "{}\n[… {} bytes left out …]\n{}",
        &s[..head_end],
        tail_start - head_end,
        &s[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(xml_safe("a\u{1b}[31mb\tc\n"), "a\\x1b[31mb\tc\n");
    }

    #[test]
    fn long_text_keeps_head_and_tail() {
        let s = format!("{}{}", "a".repeat(100), "é".repeat(100));
        let b = bounded(&s, 50);
        assert!(b.starts_with(&"a".repeat(25)));
        assert!(b.ends_with(&"é".repeat(12)));
        assert!(b.contains("bytes left out"));
        assert_eq!(bounded("short", 50), "short");
    }
}

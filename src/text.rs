//! Text for logs and for the AI: escaping what could forge or reorder a log
//! line, and cutting long values. Nothing here knows where the text goes.

/// `s` with control characters (but tabs) escaped as `\u{..}`: also for
/// the server log, where a newline in a caller's text could forge a line.
pub fn printable(s: &str) -> String {
    if !s.chars().any(unprintable) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if unprintable(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Control characters (but tab), the Unicode line and paragraph separators
/// (a new line to many viewers) and the bidirectional controls, which can
/// make a log line read as something other than what it holds.
fn unprintable(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

/// `printable(text)` in at most `max` characters (and a `…` when cut),
/// never cutting an escape in two.
pub fn printable_cut(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = printable(c.encode_utf8(&mut [0; 4]));
        used += piece.chars().count();
        if used > max {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{printable, printable_cut, short};

    #[test]
    fn printable_escapes_what_could_fake_or_reorder_a_line() {
        assert_eq!(printable("plain\ttext é"), "plain\ttext é");
        assert_eq!(printable("a\nb\rc"), "a\\u{a}b\\u{d}c");
        assert_eq!(printable("x\u{2028}y\u{2029}"), "x\\u{2028}y\\u{2029}");
        assert_eq!(printable("ok\u{202e}gnp.exe"), "ok\\u{202e}gnp.exe");
        assert_eq!(printable("\u{2066}a\u{2069}"), "\\u{2066}a\\u{2069}");
    }

    #[test]
    fn cuts_keep_escapes_whole() {
        assert_eq!(short("abcdef", 3), "abc…");
        assert_eq!(short("abc", 3), "abc");
        assert_eq!(printable_cut("a\nbc", 4), "a…");
        assert_eq!(printable_cut("abc", 3), "abc");
    }
}

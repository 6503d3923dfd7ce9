//! How deep `[` and `{` nest, judged before the YAML parser sees the file:
//! libyaml's scanner's work per token grows with the nesting (a 100 KB
//! file of `[` took 18 s), and serde stops at 128 levels of anything anyway.

use super::spans::Pos;

/// Deeper than this, `[`/`{` nesting is refused before parsing. libyaml's
/// scanner's work per token grows with the nesting (a 100 KB file of `[`
/// took 18 s); serde stops at 128 levels of anything anyway, so this only
/// keeps the parser from the depths that would cost it seconds.
pub(super) const MAX_FLOW_DEPTH: usize = 200;

/// Where `[`/`{` first nest past [`MAX_FLOW_DEPTH`]: counted on yaml-rust2's
/// tokens, so quotes, comments, tags and anchors are what YAML says they
/// are (a `]` inside `"]"` or after `#` closes nothing). Its scanner stops
/// at 255 levels, so this pass costs at most that per token. Should yaml-rust2
/// stop on a syntax error that libyaml might read past, the brackets are
/// counted blind: an over-count then needs hundreds of unclosed brackets
/// in text, which no agent file has.
pub(super) fn flow_too_deep(source: &str) -> Option<Pos> {
    use yaml_rust2::scanner::{Scanner, TokenType};
    let mut depth = 0usize;
    let mut scanner = Scanner::new(source.chars());
    for yaml_rust2::scanner::Token(at, kind) in &mut scanner {
        match kind {
            TokenType::FlowSequenceStart | TokenType::FlowMappingStart => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(Pos {
                        line: at.line(),
                        col: at.col() + 1,
                    });
                }
            }
            TokenType::FlowSequenceEnd | TokenType::FlowMappingEnd => {
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    // Tokens wait in yaml-rust2's queue while a `[` could still start a key,
    // so a deep run of them ends in its own limit (255 levels) instead.
    let error = scanner.get_error()?;
    if error.info() == "recursion limit exceeded" {
        return Some(Pos {
            line: error.marker().line(),
            col: error.marker().col() + 1,
        });
    }
    text_too_deep(source)
}

/// The fallback of [`flow_too_deep`], on the raw text, counted twice: blind,
/// and skipping quoted scalars and comments (a quote or `#` opens one only
/// where YAML lets it). Either past the limit refuses: the blind count is
/// fooled only by brackets hidden in quotes or comments, the other only by
/// a quote or `#` that YAML does not read as one.
fn text_too_deep(source: &str) -> Option<Pos> {
    let (mut blind, mut aware) = (0usize, 0usize);
    // What the aware count is skipping: a quote, or a comment (`#`).
    let mut skipping: Option<char> = None;
    // The last character outside quotes and comments.
    let mut before = '\n';
    let (mut line, mut col) = (1, 0);
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        col += 1;
        match c {
            '[' | '{' => blind += 1,
            ']' | '}' => blind = blind.saturating_sub(1),
            _ => {}
        }
        match skipping {
            Some('#') if c == '\n' => skipping = None,
            Some('"') if c == '\\' => {
                chars.next();
                col += 1;
            }
            Some('\'') if c == '\'' && chars.peek() == Some(&'\'') => {
                chars.next();
                col += 1;
            }
            Some(q) if q != '#' && c == q => skipping = None,
            Some(_) => {}
            None => match c {
                '#' if before.is_whitespace() => skipping = Some('#'),
                '"' | '\'' if before.is_whitespace() || "[{,:-?!&".contains(before) => {
                    skipping = Some(c);
                }
                '[' | '{' => aware += 1,
                ']' | '}' => aware = aware.saturating_sub(1),
                _ => {}
            },
        }
        if skipping.is_none() || c == '\n' {
            before = c;
        }
        if c == '\n' {
            (line, col) = (line + 1, 0);
        }
        if blind.max(aware) > MAX_FLOW_DEPTH {
            return Some(Pos { line, col });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_fallback_sees_past_quotes_and_comments() {
        // Where yaml-rust2 stops on a syntax error libyaml reads past (a
        // flow line at column 0), the raw text is judged.
        for unit in ["[ #]\n", "[ ']' #\n", "[\"]\",\n", "[!t \"]\",\n"] {
            let text = format!("z: {}", unit.repeat(300));
            assert!(super::text_too_deep(&text).is_some(), "{unit:?}");
            assert!(super::flow_too_deep(&text).is_some(), "{unit:?}");
        }
        let fine = "text: don't [stop] {ever} # [[[[\n".repeat(40);
        assert_eq!(super::text_too_deep(&fine), None);
    }

    #[test]
    fn flow_nesting_is_counted_past_quotes_that_hide_brackets() {
        let deep = |unit: &str| format!("params: {}\n", unit.repeat(300));
        // Real nesting, with a closing bracket in each quoted element.
        for unit in [
            r#"["]","#,
            "[']',",
            "{a: \"}\", b: ",
            "[\"\\\"]\",",
            "[ #]\n",
            r#"[!t "]","#,
            r#"[&a "]","#,
        ] {
            assert!(super::flow_too_deep(&deep(unit)).is_some(), "{unit}");
        }
        // Brackets in text are not nesting, quoted or not, nor apostrophes
        // inside words, nor a balanced document of any size.
        for fine in [
            format!("text: 'it''s [{}'\n", "[".repeat(100)),
            format!("text: \"{}\"\n", "[".repeat(300)),
            format!("text: x # {}\n", "[".repeat(300)),
            format!("params: {}{}\n", "[".repeat(150), "]".repeat(150)),
            "text: don't [stop] {ever}\n".repeat(100),
        ] {
            assert_eq!(super::flow_too_deep(&fine), None, "{fine:.60}");
        }
    }
}

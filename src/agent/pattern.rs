//! What an argument's `pattern` lets through, read as the validator runs it:
//! whether it is anchored at both ends, and which texts starting with `-` it
//! matches (an argv element a program would read as an option).
//!
//! Both translate the ECMA-262 pattern as jsonschema does
//! (`jsonschema-regex`), since ECMA-262 and Rust read some patterns
//! differently (`[[]|-]` is one class in Rust, not in ECMA-262).

use regex_automata::hybrid::dfa::DFA;
use regex_automata::hybrid::LazyStateID;
use regex_automata::Input;
use std::collections::HashMap;

/// Whether a JSON Schema `pattern` constrains the whole value: JSON Schema
/// patterns match anywhere in the string, so `[0-9]` lets `-rf 1` through.
/// Anchored means the whole pattern is one sequence from the start of the
/// text (`^`) to its end (`$`): not `^a|b$` (either side alone), not
/// `(?m)^a$` (any line), not a pattern this parser cannot read.
pub fn is_anchored(pattern: &str) -> bool {
    use regex_syntax::hir::{HirKind, Look};
    let Ok(translated) = jsonschema_regex::to_rust_regex(pattern) else {
        return false;
    };
    let Ok(hir) = regex_syntax::parse(&translated) else {
        return false;
    };
    let HirKind::Concat(items) = hir.kind() else {
        return false;
    };
    let is = |h: Option<&regex_syntax::hir::Hir>, look: Look| {
        h.is_some_and(|h| matches!(h.kind(), HirKind::Look(l) if *l == look))
    };
    is(items.first(), Look::Start) && is(items.last(), Look::End)
}

/// How far after the dash [`dash_led_matches`] looks: further than any
/// option name, and it bounds the work a hostile pattern can cause at load.
const MAX_LEN: usize = 256;
/// States kept per length, and transitions in all, before giving up.
const MAX_STATES: usize = 4096;
const MAX_STEPS: usize = 1 << 20;

/// Texts starting with `-` that `pattern` matches, found by walking the
/// pattern's automaton rather than guessing: for each length up to
/// [`MAX_LEN`] bytes that some text reaches, one such text, and each text
/// that contains a match padded out to longer lengths, so that the length
/// limits and formats elsewhere in the schema can be asked about them.
///
/// `Some(empty)` means no dash-led text of that length matches. `None` means
/// the pattern could not be walked: look-around (which only the validator's
/// backtracking engine runs), or an automaton too large for the budget.
pub fn dash_led_matches(pattern: &str) -> Option<Vec<String>> {
    let translated = jsonschema_regex::to_rust_regex(pattern).ok()?;
    let dfa = DFA::builder()
        .configure(DFA::config().cache_capacity(16 << 20))
        .build(&translated)
        .ok()?;
    let mut cache = dfa.create_cache();
    // Unanchored, as JSON Schema matches a pattern anywhere in the text.
    let start = dfa.start_state_forward(&mut cache, &Input::new("-")).ok()?;
    let first = dfa.next_state(&mut cache, start, b'-').ok()?;
    let bytes: Vec<u8> = dfa
        .byte_classes()
        .representatives(..)
        .filter_map(|unit| unit.as_u8())
        .collect();

    let mut found = Vec::new();
    let mut layer: HashMap<LazyStateID, Vec<u8>> = HashMap::from([(first, b"-".to_vec())]);
    let mut steps = 0;
    for len in 1..=MAX_LEN + 1 {
        let mut next: HashMap<LazyStateID, Vec<u8>> = HashMap::new();
        let mut ends_here = None;
        for (&state, text) in &layer {
            // A match state is entered one byte after the match ends, so
            // `text` already holds it: any continuation matches too.
            if state.is_match() {
                found.extend(padded(text));
                continue;
            }
            if ends_here.is_none() && dfa.next_eoi_state(&mut cache, state).ok()?.is_match() {
                ends_here = Some(text.clone());
            }
            if len > MAX_LEN {
                continue;
            }
            for &b in &bytes {
                steps += 1;
                if steps > MAX_STEPS {
                    return None;
                }
                let to = dfa.next_state(&mut cache, state, b).ok()?;
                if to.is_dead() || next.contains_key(&to) {
                    continue;
                }
                // A quit state stops the walk where the DFA gives up (a
                // Unicode word boundary before non-ASCII text).
                if to.is_quit() || to.is_unknown() || next.len() >= MAX_STATES {
                    return None;
                }
                let mut longer = text.clone();
                longer.push(b);
                next.insert(to, longer);
            }
        }
        found.extend(ends_here);
        if next.is_empty() {
            break;
        }
        layer = next;
    }
    // The walk's state ids are only good while the cache was never cleared.
    if cache.clear_count() > 0 {
        return None;
    }
    Some(
        found
            .into_iter()
            .filter_map(|text| String::from_utf8(text).ok())
            .collect(),
    )
}

/// A text that contains a match, and the same text with a few kinds of
/// character appended, up to 64 more: a `minLength` may want them longer.
fn padded(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![text.to_vec()];
    for fill in [b'a', b'0', b'-'] {
        for n in [1, 2, 4, 8, 16, 32, 64] {
            let mut t = text.to_vec();
            t.extend(std::iter::repeat_n(fill, n));
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pattern_from_start_to_end_is_anchored() {
        for p in ["^[0-9]{6,12}$", "^(a|b)$", "^[a-z]+@[a-z]+\\.com$"] {
            assert!(is_anchored(p), "{p}");
        }
        for p in [
            "[0-9]",
            "^[0-9]+",
            "[0-9]+$",
            "^[0-9]{6,12}|.*$",
            "^(?m)[0-9]{6,12}$",
            "(?m)^[0-9]+$",
            "^[0-9]+\\$",
            "^(",
            "",
            "^[[]|-]]$",
        ] {
            assert!(!is_anchored(p), "{p}");
        }
    }

    #[test]
    fn finds_the_dash_led_texts_a_pattern_matches() {
        let some = |p: &str| dash_led_matches(p).unwrap_or_else(|| panic!("{p}: not walked"));
        for (p, text) in [
            ("^-z$", "-z"),
            ("^(-qqqz|[a-z]+)$", "-qqqz"),
            ("^-q{100}$", &format!("-{}", "q".repeat(100))),
            ("[a-z]", "-a"),
            ("^[a-z-]{3}$", "---"),
            ("^\\-é$", "-é"),
            ("^(?:--)?[a-z]+$", "--a"),
        ] {
            let found = some(p);
            assert!(found.iter().any(|t| t == text), "{p}: {found:?}");
            assert!(found.iter().all(|t| t.starts_with('-')), "{p}: {found:?}");
        }
        for p in ["^[a-z]+$", "^[0-9]{4,8}$", "^[^-].*$", "^a-$", "^$"] {
            assert_eq!(some(p), Vec::<String>::new(), "{p}");
        }
    }

    #[test]
    fn a_pattern_it_cannot_walk_is_said_so() {
        // Look-around runs only in the validator's backtracking engine.
        assert_eq!(dash_led_matches("^(?!-).+$"), None);
        assert_eq!(dash_led_matches("^("), None);
    }
}

//! Where things are in an agent file: a map from a YAML path to line and column.
//!
//! serde gives typed values but no positions, so findings about meaning (an
//! undeclared argument, a literal secret) would have no place to point at. This
//! module reads the same text once more with yaml-rust2's event parser, which
//! marks every event, and records where each key and value starts. It runs only
//! after serde accepted the file (or refused it only for a repeated field), so
//! it never sees a file serde refused as junk or a bomb; aliases are not
//! expanded here, so it stays linear in the input.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Positions of the keys and values of one YAML document.
#[derive(Debug, Default)]
pub struct Spans {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
    /// Keys written twice in one mapping: (dotted path, first, repeat).
    /// serde keeps the last of them without a word for maps, so a second
    /// `functions.get_hours` would silently replace the first.
    duplicates: Vec<(String, Pos, Pos)>,
}

/// Joins a path the way [`Spans`] stores it: segments separated by a byte
/// that cannot occur in YAML keys written by hand.
pub fn key(path: &[&str]) -> String {
    path.join("\u{1f}")
}

impl Spans {
    /// Indexes `source`. A parse error leaves whatever was indexed before it.
    pub fn index(source: &str) -> Spans {
        let mut recv = Receiver::default();
        let mut parser = Parser::new_from_str(source);
        let _ = parser.load(&mut recv, false);
        recv.spans
    }

    /// Keys that appear twice in the same mapping: (dotted path, first, repeat).
    pub fn duplicates(&self) -> &[(String, Pos, Pos)] {
        &self.duplicates
    }

    /// Where the value at `path` starts, falling back to its nearest ancestor.
    pub fn value(&self, path: &[&str]) -> Pos {
        self.lookup(path, true)
    }

    /// Where the key of the entry at `path` starts (its value for list items),
    /// falling back to its nearest ancestor.
    pub fn key(&self, path: &[&str]) -> Pos {
        self.lookup(path, false)
    }

    fn lookup(&self, path: &[&str], value: bool) -> Pos {
        for len in (0..=path.len()).rev() {
            let k = key(&path[..len]);
            let found = if value {
                self.values.get(&k).or_else(|| self.keys.get(&k))
            } else {
                self.keys.get(&k).or_else(|| self.values.get(&k))
            };
            if let Some(pos) = found {
                return *pos;
            }
        }
        Pos { line: 1, col: 1 }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Receiver {
    stack: Vec<Frame>,
    path: Vec<String>,
    spans: Spans,
}

impl Receiver {
    fn pos(mark: Marker) -> Pos {
        // yaml-rust2 counts columns from 0.
        Pos {
            line: mark.line(),
            col: mark.col() + 1,
        }
    }

    /// Called when a value (scalar, alias, or collection start) begins.
    /// Returns the path of that value.
    fn begin_value(&mut self, mark: Marker) {
        let segment = match self.stack.last_mut() {
            Some(Frame::Seq { index }) => {
                let s = index.to_string();
                *index += 1;
                Some(s)
            }
            Some(Frame::Map { key }) => key.take(),
            None => None,
        };
        if let Some(s) = segment {
            self.path.push(s);
        }
        let k = self.path.join("\u{1f}");
        self.spans.values.entry(k).or_insert(Self::pos(mark));
    }

    fn end_value(&mut self) {
        if !self.stack.is_empty() {
            self.path.pop();
        }
    }

    /// True when the next scalar in the current mapping is a key.
    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None }))
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) if self.expects_key() => {
                let mut full = self.path.clone();
                full.push(text.clone());
                let here = Self::pos(mark);
                match self.spans.keys.entry(full.join("\u{1f}")) {
                    Entry::Occupied(first) => {
                        let first = *first.get();
                        let dotted = full.join(".");
                        // Keys under a repeated key repeat too; report the outermost only.
                        let inside_reported = self
                            .spans
                            .duplicates
                            .iter()
                            .any(|(d, ..)| dotted.starts_with(&format!("{d}.")));
                        if !inside_reported {
                            self.spans.duplicates.push((dotted, first, here));
                        }
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(here);
                    }
                }
                if let Some(Frame::Map { key }) = self.stack.last_mut() {
                    *key = Some(text);
                }
            }
            Event::Scalar(..) | Event::Alias(_) => {
                self.begin_value(mark);
                self.end_value();
            }
            Event::MappingStart(..) => {
                self.begin_value(mark);
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceStart(..) => {
                self.begin_value(mark);
                self.stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.end_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pos, Spans};

    #[test]
    fn finds_keys_and_values() {
        let src = "name: x\nfunctions:\n  f:\n    shell:\n      command: [\"a\", \"${args.q}\"]\n";
        let spans = Spans::index(src);
        assert_eq!(spans.key(&["functions", "f"]), Pos { line: 3, col: 3 });
        assert_eq!(
            spans.value(&["functions", "f", "shell", "command", "1"]),
            Pos { line: 5, col: 22 }
        );
        assert_eq!(spans.value(&["name"]), Pos { line: 1, col: 7 });
        assert!(spans.duplicates().is_empty());
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(
            spans.key(&["functions", "f", "nope"]),
            Pos { line: 3, col: 3 }
        );
    }

    #[test]
    fn reports_the_outermost_repeated_key() {
        let src = "functions:\n  f:\n    a: 1\n  f:\n    a: 2\nlist:\n  - k: 1\n  - k: 2\n";
        let spans = Spans::index(src);
        assert_eq!(
            spans.duplicates(),
            &[(
                "functions.f".to_string(),
                Pos { line: 2, col: 3 },
                Pos { line: 4, col: 3 }
            )]
        );
    }
}

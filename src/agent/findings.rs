//! Findings about an agent file, and how they are printed.
//!
//! A finding reads like a compiler diagnostic: `path:line:col: error: message`,
//! then the line and a caret. The same findings render as JSON (for scripts) and
//! as GitHub workflow commands (for annotations in pull requests).

use crate::text::printable;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::spans::Pos;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Finding {
    pub fn error(pos: Pos, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            line: pos.line,
            column: pos.col,
            message: message.into(),
        }
    }

    pub fn warning(pos: Pos, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(pos, message)
        }
    }
}

/// All findings for one file, with its text for context lines.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub source: String,
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when there is no error (and, with `strict`, no warning).
    pub fn passes(&self, strict: bool) -> bool {
        self.findings
            .iter()
            .all(|f| f.severity == Severity::Warning && !strict)
    }

    /// Compiler-style text, one block per finding. Control characters from
    /// the file are shown escaped, so a hostile file cannot drive the
    /// terminal (or a CI log viewer) that prints them.
    pub fn human(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(out, "{}", self.headline(f));
            if let Some(line) = self.source.lines().nth(f.line.saturating_sub(1)) {
                // A minified or junk file can have one enormous line: show a
                // window around the column, never the whole line.
                let skip = if line.chars().count() > 120 {
                    f.column.saturating_sub(60)
                } else {
                    0
                };
                let line: String =
                    printable(&line.chars().skip(skip).take(120).collect::<String>());
                let f = &Finding {
                    column: f.column - skip,
                    ..f.clone()
                };
                let number = f.line.to_string();
                let pad = " ".repeat(number.len());
                // Tabs keep their width so the caret lines up under them.
                let lead: String = line
                    .chars()
                    .take(f.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |\n{number} | {line}\n{pad} | {lead}^");
            }
        }
        out
    }

    /// One headline per finding, without the file's lines.
    pub fn headlines(&self) -> String {
        self.findings
            .iter()
            .map(|f| self.headline(f) + "\n")
            .collect()
    }

    /// `path:line:col: severity: message`, escaped like [`Report::human`].
    pub fn headline(&self, f: &Finding) -> String {
        format!(
            "{}:{}:{}: {}: {}",
            self.path.display(),
            f.line,
            f.column,
            f.severity.as_str(),
            printable(&f.message)
        )
    }

    /// GitHub Actions workflow commands.
    pub fn github(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "::{} file={},line={},col={}::{}",
                f.severity.as_str(),
                escape_property(&self.path.display().to_string()),
                f.line,
                f.column,
                escape_data(&f.message)
            );
        }
        out
    }

    /// The JSON object for this file.
    pub fn json(&self, strict: bool) -> serde_json::Value {
        serde_json::json!({
            "file": self.path.display().to_string(),
            "valid": self.passes(strict),
            "findings": self.findings,
        })
    }
}

// GitHub's workflow command escaping: data escapes %, CR, LF; properties also : and ,.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Shortens a path for messages when it is under the current directory.
pub fn display_path(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::{Finding, Report};
    use crate::agent::spans::Pos;

    #[test]
    fn human_points_at_the_column() {
        let report = Report {
            path: "a.yaml".into(),
            source: "name: x\nroute: nope\n".into(),
            findings: vec![Finding::error(
                Pos { line: 2, col: 8 },
                "`route` must start with `/`",
            )],
        };
        assert_eq!(
            report.human(),
            "a.yaml:2:8: error: `route` must start with `/`\n  |\n2 | route: nope\n  |        ^\n"
        );
        let hostile = Report {
            path: "a.yaml".into(),
            source: "name: \u{1b}[31mred\n".into(),
            findings: vec![Finding::error(Pos { line: 1, col: 7 }, "bad `\u{1b}[31m`")],
        };
        assert_eq!(
            hostile.human(),
            "a.yaml:1:7: error: bad `\\u{1b}[31m`\n  |\n1 | name: \\u{1b}[31mred\n  |       ^\n"
        );
        assert_eq!(
            report.github(),
            "::error file=a.yaml,line=2,col=8::`route` must start with `/`\n"
        );
    }
}

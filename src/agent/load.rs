//! Agent file → [`Agent`]: reading, parsing, and every check of meaning.
//!
//! This is the only place an agent file is understood. `validate`, `serve`,
//! `swml`, `call` and reload all come through [`load_report`], so a file that
//! `validate` passes is exactly a file that `serve` runs.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::check::{duplicate_finding, Checker, LoadOptions};
use super::depth::{flow_too_deep, MAX_FLOW_DEPTH};
use super::findings::{Finding, Report, Severity};
use super::model::AgentFile;
use super::spans::{Pos, Spans};
use super::{defaults, Agent};

/// Why an agent could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path could not be opened or read. Not a `source`: the message
    /// says it already, and a chain would say it twice.
    #[error("cannot read `{path}`: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but has errors; the report lists them.
    #[error("`{}` is not a valid agent file:\n{}", .report.path.display(), .report.human().trim_end())]
    Invalid { report: Box<Report> },
}

impl LoadError {
    /// The error without the file's lines, for the server log and the audit
    /// log: they outlive the terminal and travel further than the file.
    pub fn brief(&self) -> String {
        match self {
            LoadError::Read { .. } => self.to_string(),
            LoadError::Invalid { report } => format!(
                "`{}` is not a valid agent file (`swagent validate` shows the lines):\n{}",
                report.path.display(),
                report.headlines().trim_end()
            ),
        }
    }
}

/// Loads an agent, failing on any error finding. Warnings come back in the report.
pub fn load(path: &Path, opts: LoadOptions) -> Result<(Agent, Report), LoadError> {
    let (agent, report) = load_report(path, opts).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    match agent {
        Some(agent) if report.passes(opts.strict) => Ok((agent, report)),
        _ => Err(LoadError::Invalid {
            report: Box::new(report),
        }),
    }
}

/// Reads and checks an agent file. The agent is `Some` when there is no error.
/// Only an unreadable path is an `Err`; everything about the content is a finding.
pub fn load_report(path: &Path, opts: LoadOptions) -> std::io::Result<(Option<Agent>, Report)> {
    let mut report = Report {
        path: path.to_path_buf(),
        source: String::new(),
        findings: Vec::new(),
    };
    let start = Pos { line: 1, col: 1 };
    // A FIFO put in the file's place must not hang `serve` or its SIGHUP.
    let file = crate::files::open_regular(path)?;
    // Read one byte past the limit so an oversized file is refused without
    // reading all of it.
    let mut bytes = Vec::new();
    file.take(defaults::MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > defaults::MAX_FILE_SIZE {
        report.findings.push(Finding::error(
            start,
            format!(
                "file is larger than {} KiB: an agent file this big is not an agent file",
                defaults::MAX_FILE_SIZE / 1024
            ),
        ));
        return Ok((None, report));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        report
            .findings
            .push(Finding::error(start, "file is not UTF-8 text"));
        return Ok((None, report));
    };
    // A byte-order mark (Windows editors) is no part of the first key.
    report.source = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    };
    if report.source.trim().is_empty() {
        report.findings.push(Finding::error(
            start,
            "file is empty: an agent needs at least `name` and `prompt`",
        ));
        return Ok((None, report));
    }
    if let Some(at) = flow_too_deep(&report.source) {
        report.findings.push(Finding::error(
            at,
            format!("`[` and `{{` nest more than {MAX_FLOW_DEPTH} deep here: no agent needs that, and the YAML parser slows down with every level"),
        ));
        return Ok((None, report));
    }
    let raw: AgentFile = match serde_yaml::from_str(&report.source) {
        Ok(raw) => raw,
        Err(e) => {
            // serde points a repeated field at the start of its mapping; the
            // spans point at the repeat. Only for that error: the file is
            // then well-formed YAML, and yaml-rust2 reads it without
            // expanding aliases, so this costs one linear pass.
            let repeats = if e.to_string().contains("duplicate field `") {
                Spans::index(&report.source).duplicates().to_vec()
            } else {
                Vec::new()
            };
            if repeats.is_empty() {
                report.findings.push(yaml_finding(&e));
            }
            for (key, first, repeat) in repeats {
                report.findings.push(duplicate_finding(&key, first, repeat));
            }
            return Ok((None, report));
        }
    };
    // Absolute, so a program resolved against it stays right when the
    // handler's working directory is set to it.
    let dir = std::fs::canonicalize(crate::files::folder_of(path))?;
    let mut checker = Checker::new(&report.source, opts, dir.clone());
    checker.duplicates();
    let agent = checker.agent(raw, path, &dir);
    report.findings = checker.findings;
    report
        .findings
        .sort_by_key(|f| (f.line, f.column, f.severity == Severity::Warning));
    let has_error = report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error);
    Ok((if has_error { None } else { agent }, report))
}

/// serde's "expected struct ResetFile" names a Rust type: "a mapping".
fn without_struct_names(message: &str) -> String {
    let Some((head, rest)) = message.split_once("expected struct ") else {
        return message.to_owned();
    };
    let tail = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    format!("{head}expected a mapping{tail}")
}

/// serde's "unknown field `x`, expected one of ..." lists every key of the
/// mapping, twenty for a function: a likely misspelling is named instead.
fn closest_field(message: &str) -> Option<String> {
    let (head, list) = message.split_once(", expected one of ")?;
    let unknown = head.rsplit_once("unknown field `")?.1.strip_suffix('`')?;
    let known = list.split(", ").map(|k| k.trim_matches('`'));
    let (score, best) = known
        .map(|k| (strsim::jaro_winkler(k, unknown), k))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    (score > 0.8).then(|| format!("{head}; did you mean `{best}`?"))
}

fn yaml_finding(e: &serde_yaml::Error) -> Finding {
    let mut message = e.to_string();
    let pos = match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(i) = message.find(&suffix) {
                message.replace_range(i..i + suffix.len(), "");
            }
            Pos {
                line: loc.line(),
                col: loc.column(),
            }
        }
        None => Pos { line: 1, col: 1 },
    };
    // serde names our Rust types; the user wrote YAML.
    let message = message
        .replace(
            "struct AgentFile",
            "an agent (a mapping with `name`, `prompt`, ...)",
        )
        .replace("struct FunctionFile", "a function (a mapping)")
        .replace(
            "repetition limit exceeded",
            "aliases expand too much (a YAML bomb?)",
        )
        .replace("recursion limit exceeded", "nesting is too deep");
    let message = closest_field(&message).unwrap_or(message);
    let message = without_struct_names(&message);
    Finding::error(
        pos,
        format!("invalid agent file: {}", without_string_values(&message)),
    )
}

/// serde's message with each wrong string value (`string "..."`, Rust
/// debug-quoted) said as `a string`. The message reaches the server log
/// and the audit log on a failed reload, and a value put in the wrong
/// place may be a secret; the line and column say where it is.
fn without_string_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(&rest[..at]);
        out.push_str("a string");
        let quoted = &rest[at + "string \"".len()..];
        let mut escaped = false;
        let end = quoted.char_indices().find_map(|(i, c)| {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => return Some(i + 1),
                _ => escaped = false,
            }
            None
        });
        rest = &quoted[end.unwrap_or(quoted.len())..];
    }
    out.push_str(rest);
    out
}

/// Every `*.yaml` / `*.yml` file under `path` (or `path` itself), sorted.
pub fn agent_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    let mut seen = HashSet::new();
    while let Some(dir) = stack.pop() {
        // Symlink loops would otherwise walk forever.
        if !seen.insert(std::fs::canonicalize(&dir)?) {
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::without_string_values;

    #[test]
    fn string_values_are_left_out_of_serde_messages() {
        for (message, want) in [
            (
                r#"invalid type: string "hunter2", expected a boolean"#,
                "invalid type: a string, expected a boolean",
            ),
            (
                r#"invalid value: string "a \"q\" \\", expected x; string "b""#,
                "invalid value: a string, expected x; a string",
            ),
            (r#"cut short: string "abc"#, "cut short: a string"),
            (
                "unknown field `x`, expected `name`",
                "unknown field `x`, expected `name`",
            ),
        ] {
            assert_eq!(without_string_values(message), want);
        }
    }
}

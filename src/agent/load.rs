//! Agent file → [`Agent`]: reading, parsing, and every check of meaning.
//!
//! This is the only place an agent file is understood. `validate`, `serve`,
//! `swml`, `call` and reload all come through [`load_report`], so a file that
//! `validate` passes is exactly a file that `serve` runs.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use super::alert::AlertRule;
use super::findings::{Finding, Report, Severity};
use super::handlers::Slot;
use super::model::{
    AgentFile, FunctionFile, MaxFailuresFile, Method, RequiresVerificationFile, VerifiesCallerFile,
};
use super::spans::{Pos, Spans};
use super::{defaults, Agent, Function, Handler, Prompt, RateLimit, StaticSpec};

/// The most failures `max_failures` may allow per interval.
const MAX_FAILURES_COUNT: u32 = 20;
/// The most failures per hour `max_failures` may allow in the long run:
/// 10,000 four-digit PINs then take three weeks per replica.
const MAX_FAILURES_PER_HOUR: u64 = 20;
use super::parameters::platform_parameters;
use crate::guard::CONFIRMATION_ARG;

/// How strict loading is.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Warnings count as errors (`validate --strict`).
    pub strict: bool,
}

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

/// Deeper than this, `[`/`{` nesting is refused before parsing. libyaml's
/// scanner's work per token grows with the nesting (a 100 KB file of `[`
/// took 18 s); serde stops at 128 levels of anything anyway, so this only
/// keeps the parser from the depths that would cost it seconds.
const MAX_FLOW_DEPTH: usize = 200;

/// Where `[`/`{` first nest past [`MAX_FLOW_DEPTH`]: counted on yaml-rust2's
/// tokens, so quotes, comments, tags and anchors are what YAML says they
/// are (a `]` inside `"]"` or after `#` closes nothing). Its scanner stops
/// at 255 levels, so this pass costs at most that per token. Should yaml-rust2
/// stop on a syntax error that libyaml might read past, the brackets are
/// counted blind: an over-count then needs hundreds of unclosed brackets
/// in text, which no agent file has.
fn flow_too_deep(source: &str) -> Option<Pos> {
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
    let mut checker = Checker {
        spans: Spans::index(&report.source),
        source: &report.source,
        findings: Vec::new(),
        opts,
        dir: dir.clone(),
        env: HashMap::new(),
    };
    for (key, first, repeat) in checker.spans.duplicates().to_vec() {
        checker
            .findings
            .push(duplicate_finding(&key, first, repeat));
    }
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

fn duplicate_finding(key: &str, first: Pos, repeat: Pos) -> Finding {
    Finding::error(
        repeat,
        format!(
            "duplicate key `{key}` (first at line {}): each key may appear only once",
            first.line
        ),
    )
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

/// Walks a parsed file, collecting findings; the handler checks live in
/// [`super::handlers`].
pub(super) struct Checker<'a> {
    pub(super) spans: Spans,
    pub(super) source: &'a str,
    pub(super) findings: Vec<Finding>,
    pub(super) opts: LoadOptions,
    pub(super) dir: PathBuf,
    pub(super) env: HashMap<String, String>,
}

impl Checker<'_> {
    pub(super) fn error(&mut self, pos: Pos, msg: impl Into<String>) {
        self.findings.push(Finding::error(pos, msg));
    }

    pub(super) fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.findings.push(Finding::warning(pos, msg));
    }

    /// The position of `needle` on the line of `pos` at or after its column,
    /// so a finding about one template inside a long value points at it.
    pub(super) fn refine(&self, pos: Pos, needle: &str) -> Pos {
        let Some(line) = self.source.lines().nth(pos.line.saturating_sub(1)) else {
            return pos;
        };
        let from = line
            .char_indices()
            .nth(pos.col.saturating_sub(1))
            .map(|(i, _)| i)
            .unwrap_or(line.len());
        match line[from..].find(needle) {
            Some(i) => Pos {
                line: pos.line,
                col: line[..from + i].chars().count() + 1,
            },
            None => pos,
        }
    }

    fn agent(&mut self, raw: AgentFile, path: &Path, dir: &Path) -> Option<Agent> {
        if raw.name.trim().is_empty()
            || !raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            let pos = self.spans.value(&["name"]);
            self.error(pos, "`name` must be letters, digits, `_` or `-`");
        }
        let route = self.route(raw.route.as_deref());
        let token_ttl = match raw.token_ttl {
            None => defaults::TOKEN_TTL,
            Some(s) if (1..=7 * 86400).contains(&s) => std::time::Duration::from_secs(s),
            Some(_) => {
                let pos = self.spans.value(&["token_ttl"]);
                self.error(
                    pos,
                    "`token_ttl` must be between 1 and 604800 seconds (7 days)",
                );
                defaults::TOKEN_TTL
            }
        };
        let prompt = match (raw.prompt.text, raw.prompt.sections) {
            (Some(text), None) => Prompt::Text(text),
            (None, Some(sections)) if !sections.is_empty() => Prompt::Pom(sections),
            (Some(_), Some(_)) => {
                let pos = self.spans.key(&["prompt"]);
                self.error(
                    pos,
                    "`prompt` has both `text` and `sections`: use one of them",
                );
                Prompt::Text(String::new())
            }
            _ => {
                let pos = self.spans.key(&["prompt"]);
                self.error(pos, "`prompt` needs `text` or a non-empty `sections`");
                Prompt::Text(String::new())
            }
        };
        let confirm_ttl = raw.confirm_ttl.map_or(defaults::CONFIRM_TTL, |d| d.0);
        if confirm_ttl.is_zero() || confirm_ttl.as_secs() > 3600 {
            let pos = self.spans.value(&["confirm_ttl"]);
            self.error(pos, "`confirm_ttl` must be between 1s and 1h");
        }
        let verifiers: Vec<(String, Vec<String>)> = raw
            .functions
            .iter()
            .filter_map(|(name, f)| {
                let v = f.verifies_caller.as_ref().filter(|v| v.is_on())?;
                Some((name.clone(), v.binds()))
            })
            .collect();
        let has_verifier = !verifiers.is_empty();
        // One identity for the whole agent: a grant from any verifier must
        // mean the same thing to every function that requires one.
        let bound = verifiers.first().cloned().unwrap_or_default();
        // The declared type of each bound argument at the verifier: a
        // function whose argument has another type could never match.
        let bound_types: HashMap<String, String> = raw
            .functions
            .get(&bound.0)
            .and_then(|f| f.parameters.as_ref())
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object)
            .map(|props| {
                bound
                    .1
                    .iter()
                    .filter_map(|b| {
                        let ty = props.get(b)?.get("type")?.as_str()?;
                        Some((b.clone(), ty.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (name, binds) in verifiers.iter().skip(1) {
            if *binds != bound.1 {
                let pos = self.spans.value(&["functions", name, "verifies_caller"]);
                self.error(
                    pos,
                    format!(
                        "function `{name}`: every verifier must bind the same arguments; `{}` binds [{}], this one [{}]",
                        bound.0,
                        bound.1.join(", "),
                        binds.join(", ")
                    ),
                );
            }
        }
        let mut functions = IndexMap::new();
        for (name, f) in raw.functions {
            let (verifies, requires) = (f.verifies_caller.clone(), f.requires_verification.clone());
            if requires.as_ref().is_some_and(|r| r.is_on()) && !has_verifier {
                let pos = self
                    .spans
                    .value(&["functions", &name, "requires_verification"]);
                self.error(
                    pos,
                    format!("function `{name}`: `requires_verification` but no function in this agent has `verifies_caller: true`"),
                );
            }
            if let Some(mut function) = self.function(&name, f) {
                function.identity = self.identity(
                    &name,
                    verifies,
                    requires,
                    &function.parameters,
                    &bound,
                    &bound_types,
                );
                functions.insert(name, function);
            }
        }
        let names: Vec<&str> = functions.keys().map(String::as_str).collect();
        let mut alerts = Vec::new();
        for (i, a) in raw.alerts.iter().flatten().enumerate() {
            let checked = AlertRule::from_file(a, &names).and_then(|rule| {
                numeric_argument(&rule.rule, &functions)?;
                Ok(rule)
            });
            match checked {
                Ok(rule) => alerts.push(rule),
                Err(e) => {
                    let index = i.to_string();
                    let pos = self.spans.value(&["alerts", &index]);
                    self.error(pos, format!("alert {}: {e}", i + 1));
                }
            }
        }
        Some(Agent {
            alerts,
            name: raw.name,
            route,
            token_ttl,
            confirm_ttl,
            prompt,
            post_prompt: raw.post_prompt,
            params: raw.params.unwrap_or_default(),
            languages: raw.languages.unwrap_or_default(),
            hints: raw.hints.unwrap_or_default(),
            functions,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            env: std::mem::take(&mut self.env),
        })
    }

    fn route(&mut self, route: Option<&str>) -> String {
        let Some(route) = route else {
            return "/".into();
        };
        let ok = route.starts_with('/')
            && route
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c))
            && !route.contains("//");
        if !ok {
            let pos = self.spans.value(&["route"]);
            self.error(
                pos,
                "`route` must start with `/` and use only letters, digits and `/-_.~`",
            );
        }
        let trimmed = route.trim_end_matches('/');
        if trimmed.is_empty() {
            return "/".into();
        }
        if super::SERVER_PATHS.contains(&trimmed) {
            let pos = self.spans.value(&["route"]);
            let all = super::SERVER_PATHS.map(|p| format!("`{p}`")).join(", ");
            self.error(
                pos,
                format!(
                    "`route` `{trimmed}` is a path swagent serves itself ({all}); pick another"
                ),
            );
        }
        trimmed.to_owned()
    }

    /// What this function's side of a verification grant is bound to (see
    /// [`Function::identity`]); `bound` is the first verifier and what it binds.
    fn identity(
        &mut self,
        name: &str,
        verifies: Option<VerifiesCallerFile>,
        requires: Option<RequiresVerificationFile>,
        parameters: &Value,
        bound: &(String, Vec<String>),
        bound_types: &HashMap<String, String>,
    ) -> Vec<(String, String)> {
        let (verifier, names) = bound;
        // Which key a finding points at, and what to suggest.
        let (key, hint, pairs): (&str, &str, Vec<(String, String)>) = match (verifies, requires) {
            (Some(v @ VerifiesCallerFile::Binds(_)), _) => {
                let binds = v.binds();
                if binds.is_empty() {
                    let pos = self.spans.value(&["functions", name, "verifies_caller"]);
                    self.error(pos, format!("function `{name}`: `binds` needs at least one argument; or write `verifies_caller: true`"));
                }
                ("verifies_caller", "", binds.into_iter().map(|b| (b.clone(), b)).collect())
            }
            (_, Some(RequiresVerificationFile::Flag(true))) => (
                "requires_verification",
                "; or name the argument that carries it: `requires_verification: { NAME: ARGUMENT }`",
                names.iter().map(|b| (b.clone(), b.clone())).collect(),
            ),
            (_, Some(RequiresVerificationFile::Map(map))) => {
                let pos = self.spans.value(&["functions", name, "requires_verification"]);
                if names.is_empty() {
                    self.error(pos, format!("function `{name}`: `requires_verification` maps bound arguments, but no verifier binds any (`verifies_caller: {{ binds: [...] }}`)"));
                    return Vec::new();
                }
                for b in names {
                    if !map.contains_key(b) {
                        self.error(pos, format!("function `{name}`: `requires_verification` must name the argument that carries `{b}`, which `{verifier}` binds"));
                    }
                }
                for k in map.keys() {
                    if !names.contains(k) {
                        self.error(pos, format!("function `{name}`: `requires_verification` names `{k}`, which `{verifier}` does not bind"));
                    }
                }
                let mut pairs: Vec<(String, String)> =
                    map.into_iter().filter(|(k, _)| names.contains(k)).collect();
                pairs.sort();
                ("requires_verification", "", pairs)
            }
            _ => return Vec::new(),
        };
        let parameters = Some(parameters).filter(|p| !p.is_null());
        for (b, arg) in &pairs {
            let pos = self.spans.value(&["functions", name, key]);
            if let Some(problem) = identity_argument(parameters, arg) {
                let msg = if key == "verifies_caller" {
                    format!("function `{name}`: `binds` names `{arg}`, which {problem}")
                } else {
                    format!("function `{name}`: the verified `{b}` must be in argument `{arg}`, which {problem}{}", hint.replace("NAME", b))
                };
                self.error(pos, msg);
                continue;
            }
            let here = parameters
                .and_then(|p| {
                    p.pointer(&format!(
                        "/properties/{}/type",
                        arg.replace('~', "~0").replace('/', "~1")
                    ))
                })
                .and_then(Value::as_str);
            if let (Some(here), Some(there)) = (here, bound_types.get(b)) {
                if key != "verifies_caller" && here != there {
                    self.error(pos, format!("function `{name}`: the verified `{b}` is `type: {there}` at `{verifier}`, but argument `{arg}` is `type: {here}`; no grant could ever match"));
                }
            }
        }
        pairs
    }

    fn function(&mut self, name: &str, f: FunctionFile) -> Option<Function> {
        let at = ["functions", name];
        if !crate::template::is_name(name) {
            let pos = self.spans.key(&at);
            self.error(
                pos,
                format!("function `{name}`: names must match `^[a-zA-Z_][a-zA-Z0-9_]*$`"),
            );
        }
        if name == "post_prompt" {
            let pos = self.spans.key(&at);
            self.error(
                pos,
                "function `post_prompt`: the name is reserved for the summary webhook",
            );
        }
        let (parameters, validator) = self.parameters(name, f.parameters)?;
        let declared = parameters
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let secure = f.secure.unwrap_or(true);
        let confirm = f.confirm.unwrap_or(false);
        let verifies_caller = f.verifies_caller.as_ref().is_some_and(|v| v.is_on());
        let requires_verification = f.requires_verification.as_ref().is_some_and(|r| r.is_on());
        let max_failures = self.max_failures(name, f.verifies_caller.as_ref());
        if confirm && declared.contains_key(CONFIRMATION_ARG) {
            let pos = self.spans.key(&[
                "functions",
                name,
                "parameters",
                "properties",
                CONFIRMATION_ARG,
            ]);
            self.error(
                pos,
                format!("function `{name}`: `{CONFIRMATION_ARG}` is reserved for the confirmation code of `confirm: true`"),
            );
        }
        if verifies_caller && requires_verification {
            let pos = self
                .spans
                .value(&["functions", name, "requires_verification"]);
            self.error(
                pos,
                format!("function `{name}`: a verifier cannot itself require verification"),
            );
        }
        if verifies_caller && f.static_reply.is_some() {
            let pos = self.spans.value(&["functions", name, "verifies_caller"]);
            self.error(
                pos,
                format!("function `{name}`: a static reply cannot verify a caller; use a shell or http handler"),
            );
        }
        let verified_field = f.http.as_ref().and_then(|h| h.verified_field.clone());
        if verifies_caller && f.http.is_some() && verified_field.is_none() {
            let pos = self.spans.value(&["functions", name, "verifies_caller"]);
            self.error(
                pos,
                format!("function `{name}`: `verifies_caller` with an http handler needs `http.verified_field` (the response field that is `true` on a match)"),
            );
        }
        if !verifies_caller && verified_field.is_some() {
            let pos = self
                .spans
                .key(&["functions", name, "http", "verified_field"]);
            self.error(
                pos,
                format!("function `{name}`: `verified_field` needs `verifies_caller: true`"),
            );
        }
        let handlers = [
            f.shell.is_some(),
            f.http.is_some(),
            f.static_reply.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if handlers != 1 {
            let pos = self.spans.key(&at);
            self.error(
                pos,
                format!(
                    "function `{name}`: needs exactly one handler (`shell`, `http` or `static`), found {handlers}"
                ),
            );
            return None;
        }
        let handler = if let Some(shell) = f.shell {
            Handler::Shell(self.shell(name, shell, &declared)?)
        } else if let Some(http) = f.http {
            Handler::Http(self.http(name, http, &declared)?)
        } else {
            let s = f.static_reply?;
            let path = [&at[..], &["static", "response"]].concat();
            let response = self.template(name, &s.response, &path, Slot::StaticReply, &declared)?;
            Handler::Static(StaticSpec {
                response,
                action: s.action.unwrap_or_default(),
            })
        };
        let changes_something =
            confirm || matches!(&handler, Handler::Http(h) if h.method != Method::Get);
        if !secure && changes_something {
            let pos = self.spans.value(&["functions", name, "secure"]);
            self.warn(
                pos,
                format!(
                    "function `{name}`: `secure: false` on a function that changes something; anyone who can reach the server can call it"
                ),
            );
        }
        let rate_limit = match f.rate_limit {
            None => RateLimit::default(),
            Some(r) => {
                if r.per_call.is_none() && r.global.is_none() {
                    let pos = self.spans.key(&["functions", name, "rate_limit"]);
                    self.warn(
                        pos,
                        format!("function `{name}`: `rate_limit` sets neither `per_call` nor `global`, so it limits nothing"),
                    );
                }
                RateLimit {
                    per_call: r.per_call.map(|r| r.0),
                    global: r.global.map(|r| r.0),
                }
            }
        };
        let mut swml_parameters = platform_parameters(&parameters);
        if confirm {
            if let Some(props) = swml_parameters
                .get_mut("properties")
                .and_then(Value::as_object_mut)
            {
                props.insert(
                    CONFIRMATION_ARG.into(),
                    serde_json::json!({
                        "type": "string",
                        "description": "Leave empty at first. After the caller explicitly said yes to the details you read back, pass the confirmation code you were given, exactly as given."
                    }),
                );
            }
        }
        Some(Function {
            name: name.to_owned(),
            description: f.description,
            secure,
            confirm,
            confirm_reason: f.reason,
            verifies_caller,
            requires_verification,
            identity: Vec::new(),
            parameters,
            swml_parameters,
            validator: Arc::new(validator),
            handler,
            rate_limit,
            max_failures,
        })
    }

    /// The lock-out of a verifier that binds arguments: there is an account
    /// to count failures for. (A whole-call verifier has none; its
    /// `rate_limit` is what holds it back.)
    fn max_failures(
        &mut self,
        name: &str,
        verifies: Option<&VerifiesCallerFile>,
    ) -> Option<crate::agent::units::Rate> {
        let VerifiesCallerFile::Binds(b) = verifies? else {
            return None;
        };
        match b.max_failures {
            None | Some(MaxFailuresFile::Flag(true)) => Some(super::default_max_failures()),
            Some(MaxFailuresFile::Rate(r)) => {
                let rate = r.0;
                let (count, per) = (rate.count.get(), rate.per.as_secs());
                // Outside these, the "lock-out" locks nothing a guesser
                // would notice, or locks an honest caller out for days.
                // `count` failures, a lock for the interval, `count` more:
                // the rate a patient guesser keeps up for as long as he likes.
                let per_hour = u64::from(count) * 3600 / per.max(1);
                let problem = if count > MAX_FAILURES_COUNT {
                    Some(format!("allows {count} failures; at most {MAX_FAILURES_COUNT} keep a PIN from being guessed"))
                } else if per_hour > MAX_FAILURES_PER_HOUR {
                    Some(format!("lets a guesser try {per_hour} times an hour on one account, without end; at most {MAX_FAILURES_PER_HOUR} keep a PIN from being guessed"))
                } else if per > 86_400 {
                    Some(
                        "locks for more than a day; an honest caller would be locked out too long"
                            .into(),
                    )
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let pos =
                        self.spans
                            .value(&["functions", name, "verifies_caller", "max_failures"]);
                    self.error(
                        pos,
                        format!("function `{name}`: `max_failures` `{rate}` {problem}; use e.g. `5/15m`"),
                    );
                }
                Some(rate)
            }
            Some(MaxFailuresFile::Flag(false)) => {
                let pos = self
                    .spans
                    .value(&["functions", name, "verifies_caller", "max_failures"]);
                self.warn(
                    pos,
                    format!("function `{name}`: `max_failures: false` lets a caller guess the secret of one account over as many calls as they like"),
                );
                None
            }
        }
    }

    fn parameters(
        &mut self,
        name: &str,
        parameters: Option<Value>,
    ) -> Option<(Value, jsonschema::Validator)> {
        let at = ["functions", name, "parameters"];
        let parameters =
            parameters.unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
        if parameters.get("type").and_then(Value::as_str) != Some("object") {
            let pos = self.spans.value(&at);
            self.error(
                pos,
                format!(
                    "function `{name}`: `parameters` must be a JSON Schema with `type: object`"
                ),
            );
            return None;
        }
        if let Err(e) = jsonschema::meta::validate(&parameters) {
            let path: Vec<String> = e
                .instance_path()
                .as_str()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let mut full: Vec<&str> = at.to_vec();
            full.extend(path.iter().map(String::as_str));
            let pos = self.spans.value(&full);
            self.error(
                pos,
                format!("function `{name}`: `parameters` is not a valid JSON Schema: {e}"),
            );
            return None;
        }
        for path in crate::audit::unredacted_markers(&parameters) {
            let mut full: Vec<&str> = at.to_vec();
            full.extend(path.iter().map(String::as_str));
            let pos = self.spans.key(&full);
            self.error(
                pos,
                format!(
                    "function `{name}`: `sensitive` at `{}` is out of the audit log redaction's reach, which follows only `properties` and `items` from the top; the value would be logged",
                    path.join(".")
                ),
            );
        }
        for (path, why) in super::parameters::mistyped_properties(&parameters) {
            let mut full: Vec<&str> = at.to_vec();
            full.extend(path.iter().map(String::as_str));
            let pos = self.spans.key(&full);
            self.error(
                pos,
                format!(
                    "function `{name}`: the argument at `{}` {why}",
                    path.join(".")
                ),
            );
        }
        match super::schema_validator(&parameters) {
            Ok(v) => Some((parameters, v)),
            Err(e) => {
                let pos = self.spans.value(&at);
                let text = e.to_string();
                // The library's wording points at its own options.
                let msg = match text
                    .strip_prefix("Unknown format: '")
                    .and_then(|rest| rest.split_once('\''))
                {
                    Some((format, _)) => format!(
                        "function `{name}`: unknown `format` `{format}`: swagent enforces `format`, so it must be one JSON Schema defines (`date`, `date-time`, `email`, `hostname`, `ipv4`, `ipv6`, `uri`, `uuid`, ...); use a `pattern` for others"
                    ),
                    None => format!("function `{name}`: `parameters` is not a valid JSON Schema: {text}"),
                };
                self.error(pos, msg);
                None
            }
        }
    }
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

/// An `argument`/`above` rule compares a JSON number: on an argument that is
/// not declared as one, it would never fire, and `block: true` would block
/// nothing without a word.
fn numeric_argument(
    rule: &crate::agent::alert::Rule,
    functions: &IndexMap<String, Function>,
) -> Result<(), String> {
    let crate::agent::alert::Rule::LargeArgument {
        function, argument, ..
    } = rule
    else {
        return Ok(());
    };
    let declared = functions
        .get(function)
        .and_then(|f| f.parameters.get("properties"))
        .and_then(|p| p.get(argument));
    let numeric = |t: &Value| matches!(t.as_str(), Some("number" | "integer"));
    let ok = declared
        .and_then(|d| d.get("type"))
        .is_some_and(|t| match t {
            Value::Array(types) => {
                types.iter().any(numeric) && types.iter().all(|t| numeric(t) || t == "null")
            }
            t => numeric(t),
        });
    if ok && declared.and_then(|d| d.get("sensitive")) == Some(&Value::Bool(true)) {
        // An alert says the value it saw, in the log and the audit log.
        return Err(format!(
            "`argument` `{argument}` of `{function}` is `sensitive`: an alert would write its value to the logs"
        ));
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`argument` `{argument}` must be an argument of `{function}` declared with `type: number` or `integer`; on anything else the rule never fires"
        ))
    }
}

/// Why `arg` cannot carry a verified identity, if it cannot: it must be a
/// declared, required string or integer, so it is always there and compares
/// exactly (no `1` against `1.0`).
fn identity_argument(parameters: Option<&Value>, arg: &str) -> Option<&'static str> {
    let Some(schema) = parameters
        .and_then(|p| p.get("properties"))
        .and_then(|p| p.get(arg))
    else {
        return Some("is not a declared argument");
    };
    let required = parameters
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|v| v == arg));
    if !required {
        return Some("is not in `required`");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string" | "integer") => None,
        _ => Some("is not declared `type: string` or `integer`"),
    }
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

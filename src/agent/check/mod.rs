//! The checks of meaning: a parsed agent file ([`super::model`]) walked
//! into a validated [`Agent`], each problem a finding with its `line:col`.
//! One file per part of the file: the agent's own keys here, then
//! [`function`], [`verification`], and the handlers' [`shell`], [`http`]
//! (with its [`output`]) and the [`template`]s they hold.

mod action_list;
mod actions;
mod ai;
mod around;
mod contexts;
mod function;
mod http;
pub mod lifecycle;
mod output;
mod shell;
mod stray;
mod template;
mod verification;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::alert::AlertRule;
use super::findings::Finding;
use super::model::{AgentFile, AlertFile, FunctionFile};
use super::spans::{Pos, Spans};
use super::units::DurationSpec;
use super::{defaults, Agent, Function};

/// How strict loading is.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Warnings count as errors (`validate --strict`).
    pub strict: bool,
}

/// Upper bounds of handler limits: beyond them a value is a typo or a way
/// to exhaust the host, never a need.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_BYTES: u64 = 16 * 1024 * 1024;
const MAX_CONCURRENCY: u32 = 1024;

/// Walks a parsed file, collecting findings.
pub(super) struct Checker<'a> {
    spans: Spans,
    source: &'a str,
    pub(super) findings: Vec<Finding>,
    opts: LoadOptions,
    dir: PathBuf,
    env: HashMap<String, String>,
    /// The file's function, step and context names, as written: what an
    /// action may toggle or move to.
    names: Names,
    /// Checking a call hook: what its templates may name besides the file's.
    hook: Option<lifecycle::Hook>,
}

/// The names a file declares, read before any part of it is checked.
#[derive(Default)]
pub(super) struct Names {
    pub functions: Vec<String>,
    pub steps: Vec<String>,
    pub contexts: Vec<String>,
}

impl<'a> Checker<'a> {
    /// A checker of `source`, whose relative paths start at `dir`.
    pub(super) fn new(source: &'a str, opts: LoadOptions, dir: PathBuf) -> Checker<'a> {
        Checker {
            spans: Spans::index(source),
            source,
            findings: Vec::new(),
            opts,
            dir,
            env: HashMap::new(),
            names: Names::default(),
            hook: None,
        }
    }

    /// Keys given twice: an error at each repeat.
    pub(super) fn duplicates(&mut self) {
        for (key, first, repeat) in self.spans.duplicates().to_vec() {
            self.findings.push(duplicate_finding(&key, first, repeat));
        }
    }
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

    /// A handler's `concurrency`, within 1 and [`MAX_CONCURRENCY`]: each run
    /// holds descriptors (`server::descriptors`), and none at all would
    /// refuse every call.
    fn concurrency(
        &mut self,
        function: &str,
        at: &[&str],
        value: Option<u32>,
        default: u32,
    ) -> u32 {
        let concurrency = value.unwrap_or(default);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            let pos = self.spans.value(&[at, &["concurrency"]].concat());
            self.error(
                pos,
                format!(
                    "function `{function}`: `concurrency` must be between 1 and {MAX_CONCURRENCY}"
                ),
            );
        }
        concurrency.clamp(1, MAX_CONCURRENCY)
    }

    /// A handler's `timeout`, within 1 ms and [`MAX_TIMEOUT`]: zero would fail
    /// every call, and the AI is waiting on the phone meanwhile.
    fn timeout(&mut self, function: &str, at: &[&str], value: Option<Duration>) -> Duration {
        let Some(value) = value else {
            return defaults::TIMEOUT;
        };
        if value.is_zero() || value > MAX_TIMEOUT {
            let pos = self.spans.value(&[at, &["timeout"]].concat());
            self.error(
                pos,
                format!("function `{function}`: `timeout` must be between 1ms and 5m"),
            );
            return defaults::TIMEOUT;
        }
        value
    }

    /// A byte limit (`max_output`, `max_response`), within 1 byte and
    /// [`MAX_BYTES`]: each running call may hold that much in memory.
    fn size(
        &mut self,
        function: &str,
        at: &[&str],
        field: &str,
        value: Option<u64>,
        default: u64,
    ) -> u64 {
        let Some(value) = value else {
            return default;
        };
        if value == 0 || value > MAX_BYTES {
            let pos = self.spans.value(&[at, &[field]].concat());
            self.error(
                pos,
                format!("function `{function}`: `{field}` must be between 1B and 16MiB"),
            );
            return default;
        }
        value
    }

    /// The agent of a parsed file; `None` when nothing could be built.
    pub(super) fn agent(&mut self, mut raw: AgentFile, path: &Path, dir: &Path) -> Option<Agent> {
        self.name(&raw.name);
        self.names = Names {
            functions: raw.functions.keys().cloned().collect(),
            steps: raw
                .contexts
                .iter()
                .flatten()
                .flat_map(|(_, c)| c.steps.iter().map(|s| s.name.clone()))
                .collect(),
            contexts: raw
                .contexts
                .iter()
                .flat_map(|c| c.keys().cloned())
                .collect(),
        };
        let route = self.route(raw.route.as_deref());
        let token_ttl = self.token_ttl(raw.token_ttl);
        let ai = self.ai(&mut raw);
        let around = self.around(&mut raw);
        let prompt = self.prompt("prompt", raw.prompt);
        let post_prompt = self.post_prompt(raw.post_prompt);
        let confirm_ttl = self.confirm_ttl(raw.confirm_ttl);
        let functions = self.functions(raw.functions);
        let contexts = match raw.contexts {
            Some(c) => {
                let own: Vec<&str> = functions.keys().map(String::as_str).collect();
                self.reserved_names(&own);
                // A step may offer any function the AI can call: the agent's,
                // the platform's own, other servers' and the contexts' own.
                let callable: Vec<&str> = own
                    .into_iter()
                    .chain(ai.native_functions.iter().map(String::as_str))
                    .chain(
                        ai.includes
                            .iter()
                            .flat_map(|i| i.functions.iter().map(String::as_str)),
                    )
                    .chain(contexts::RESERVED)
                    .collect();
                let mut moves = crate::agent::contexts::ActionMoves::of(&functions);
                if raw.on_call_start.is_some() {
                    // Its lookup may start a call in any context.
                    moves.contexts.add(None);
                }
                Some(self.contexts(c, &callable, &moves)?)
            }
            None => None,
        };
        self.action_targets(&functions, contexts.as_ref());
        let alerts = self.alerts(raw.alerts.as_deref().unwrap_or_default(), &functions);
        let on_call_start = self.on_call_start(raw.on_call_start.take());
        let mut ai = ai;
        let on_call_end = self.on_call_end(raw.on_call_end.take(), &mut ai.params);
        let summary = self.summary(raw.summary.take(), post_prompt.is_some(), &mut ai.params);
        self.stray_env();
        Some(Agent {
            alerts,
            name: raw.name,
            route,
            token_ttl,
            confirm_ttl,
            prompt,
            post_prompt,
            contexts,
            ai,
            around,
            on_call_start,
            on_call_end,
            summary,
            functions,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            env: std::mem::take(&mut self.env),
        })
    }

    fn name(&mut self, name: &str) {
        if name.trim().is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            let pos = self.spans.value(&["name"]);
            self.error(pos, "`name` must be letters, digits, `_` or `-`");
        }
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

    fn token_ttl(&mut self, ttl: Option<u64>) -> Duration {
        match ttl {
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
        }
    }

    fn confirm_ttl(&mut self, ttl: Option<DurationSpec>) -> Duration {
        let confirm_ttl = ttl.map_or(defaults::CONFIRM_TTL, |d| d.0);
        if confirm_ttl.is_zero() || confirm_ttl.as_secs() > 3600 {
            let pos = self.spans.value(&["confirm_ttl"]);
            self.error(pos, "`confirm_ttl` must be between 1s and 1h");
        }
        confirm_ttl
    }

    /// The functions, with what each verification grant is bound to.
    fn functions(&mut self, raw: IndexMap<String, FunctionFile>) -> IndexMap<String, Function> {
        let bound = self.verifiers(&raw);
        let mut functions = IndexMap::new();
        for (name, f) in raw {
            let (verifies, requires) = (f.verifies_caller.clone(), f.requires_verification.clone());
            if requires.as_ref().is_some_and(|r| r.is_on()) && bound.verifiers == 0 {
                let pos = self
                    .spans
                    .value(&["functions", &name, "requires_verification"]);
                self.error(
                    pos,
                    format!("function `{name}`: `requires_verification` but no function in this agent has `verifies_caller: true`"),
                );
            }
            if let Some(mut function) = self.function(&name, f) {
                function.identity =
                    self.identity(&name, verifies, requires, &function.parameters, &bound);
                functions.insert(name, function);
            }
        }
        functions
    }

    /// The alert rules, each checked against the functions it names.
    fn alerts(
        &mut self,
        raw: &[AlertFile],
        functions: &IndexMap<String, Function>,
    ) -> Vec<AlertRule> {
        let names: Vec<&str> = functions.keys().map(String::as_str).collect();
        let mut alerts = Vec::new();
        for (i, a) in raw.iter().enumerate() {
            let checked = AlertRule::from_file(a, &names).and_then(|rule| {
                numeric_argument(&rule.rule, functions)?;
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
        alerts
    }
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

/// A key given again, at the repeat.
pub(super) fn duplicate_finding(key: &str, first: Pos, repeat: Pos) -> Finding {
    Finding::error(
        repeat,
        format!(
            "duplicate key `{key}` (first at line {}): each key may appear only once",
            first.line
        ),
    )
}

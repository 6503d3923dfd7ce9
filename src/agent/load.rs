//! Agent file → [`Agent`]: reading, parsing, and every check of meaning.
//!
//! This is the only place an agent file is understood. `validate`, `serve`,
//! `swml`, `call` and reload all come through [`load_report`], so a file that
//! `validate` passes is exactly a file that `serve` runs.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use super::findings::{Finding, Report, Severity};
use super::model::{AgentFile, FunctionFile, HttpFile, Method, ShellFile};
use super::spans::{Pos, Spans};
use super::{
    defaults, Agent, Function, Handler, HttpSpec, JsonTemplate, Prompt, ShellSpec, StaticSpec,
};
use crate::swml::platform_parameters;
use crate::template::{Template, Var};

/// How strict loading is.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Warnings count as errors (`validate --strict`).
    pub strict: bool,
}

/// Why an agent could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path could not be opened or read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but has errors; the report lists them.
    #[error("`{}` is not a valid agent file:\n{}", .report.path.display(), .report.human().trim_end())]
    Invalid { report: Box<Report> },
}

/// Loads an agent, failing on any error finding. Warnings come back in the report.
pub fn load(path: &Path, opts: LoadOptions) -> Result<(Agent, Report), LoadError> {
    let (agent, report) = load_report(path, opts).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
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
    let file = std::fs::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
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
    report.source = text;
    if report.source.trim().is_empty() {
        report.findings.push(Finding::error(
            start,
            "file is empty: an agent needs at least `name` and `prompt`",
        ));
        return Ok((None, report));
    }
    let raw: AgentFile = match serde_yaml::from_str(&report.source) {
        Ok(raw) => raw,
        Err(e) => {
            report.findings.push(yaml_finding(&e));
            return Ok((None, report));
        }
    };
    // Absolute, so a program resolved against it stays right when the
    // handler's working directory is set to it.
    let dir = std::fs::canonicalize(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let mut checker = Checker {
        spans: Spans::index(&report.source),
        source: &report.source,
        findings: Vec::new(),
        opts,
        dir: dir.clone(),
        env: HashMap::new(),
    };
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
    Finding::error(pos, format!("invalid agent file: {message}"))
}

/// Where a template sits decides which variables it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    ShellArg,
    HttpRequest,
    HttpOutput,
    StaticReply,
}

const SECRET_WORDS: [&str; 6] = ["password", "passwd", "secret", "token", "api_key", "apikey"];

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    k == "authorization"
        || k == "proxy_authorization"
        || k == "x_api_key"
        || SECRET_WORDS.iter().any(|w| k.contains(w))
}

struct Checker<'a> {
    spans: Spans,
    source: &'a str,
    findings: Vec<Finding>,
    opts: LoadOptions,
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, msg: impl Into<String>) {
        self.findings.push(Finding::error(pos, msg));
    }

    fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.findings.push(Finding::warning(pos, msg));
    }

    /// The position of `needle` on the line of `pos` at or after its column,
    /// so a finding about one template inside a long value points at it.
    fn refine(&self, pos: Pos, needle: &str) -> Pos {
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
        let mut functions = IndexMap::new();
        for (name, f) in raw.functions {
            if let Some(function) = self.function(&name, f) {
                functions.insert(name, function);
            }
        }
        Some(Agent {
            name: raw.name,
            route,
            token_ttl,
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
            "/".into()
        } else {
            trimmed.to_owned()
        }
    }

    fn function(&mut self, name: &str, f: FunctionFile) -> Option<Function> {
        let at = ["functions", name];
        let valid_name = {
            let mut c = name.chars();
            matches!(c.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !valid_name {
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
        let swml_parameters = platform_parameters(&parameters);
        Some(Function {
            name: name.to_owned(),
            description: f.description,
            secure,
            confirm,
            parameters,
            swml_parameters,
            validator: Arc::new(validator),
            handler,
        })
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
                .instance_path
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
        match jsonschema::validator_for(&parameters) {
            Ok(v) => Some((parameters, v)),
            Err(e) => {
                let pos = self.spans.value(&at);
                self.error(
                    pos,
                    format!("function `{name}`: `parameters` is not a valid JSON Schema: {e}"),
                );
                None
            }
        }
    }

    /// Parses one template and checks what it names against where it sits.
    fn template(
        &mut self,
        function: &str,
        text: &str,
        path: &[&str],
        slot: Slot,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<Template> {
        let pos = self.spans.value(path);
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.error(pos, format!("function `{function}`: {e}"));
                return None;
            }
        };
        let mut ok = true;
        for (var, source) in template.vars() {
            let at = self.refine(pos, source);
            match var {
                Var::Args(arg, _) if !declared.contains_key(arg) => {
                    self.error(
                        at,
                        format!(
                            "function `{function}`: template names `{source}` but no such argument is declared"
                        ),
                    );
                    ok = false;
                }
                Var::Response(_) if slot != Slot::HttpOutput => {
                    self.error(
                        at,
                        format!(
                            "function `{function}`: `{source}` is only available in http `output`"
                        ),
                    );
                    ok = false;
                }
                Var::Env(name) if slot != Slot::HttpRequest => {
                    self.error(
                        at,
                        format!(
                            "function `{function}`: `${{env:{name}}}` is only allowed in http `url`, `query`, `headers`, `body` and `form` (its value must never reach the caller)"
                        ),
                    );
                    ok = false;
                }
                Var::Env(name) => match std::env::var(name) {
                    Ok(value) => {
                        self.env.insert(name.clone(), value);
                    }
                    Err(_) => {
                        let msg = format!(
                            "function `{function}`: environment variable `{name}` is not set"
                        );
                        if self.opts.strict {
                            self.error(at, msg);
                        } else {
                            self.warn(at, msg);
                        }
                    }
                },
                _ => {}
            }
        }
        ok.then_some(template)
    }

    /// A literal value under a key that names a credential is an error.
    fn literal_secret(&mut self, function: &str, key: &str, template: &Template, path: &[&str]) {
        if looks_secret(key) && template.is_literal() && !template.to_string().is_empty() {
            let pos = self.spans.value(path);
            self.error(
                pos,
                format!(
                    "function `{function}`: `{key}` holds a literal credential; secrets never live in the agent file, use `${{env:NAME}}`"
                ),
            );
        }
    }

    fn shell(
        &mut self,
        name: &str,
        s: ShellFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<ShellSpec> {
        let at = ["functions", name, "shell"];
        let Some(program) = s.command.first() else {
            let pos = self.spans.value(&[&at[..], &["command"]].concat());
            self.error(
                pos,
                format!("function `{name}`: `command` needs at least the program"),
            );
            return None;
        };
        let program_path = [&at[..], &["command", "0"]].concat();
        if program.contains("${") {
            let pos = self.spans.value(&program_path);
            self.error(
                pos,
                format!(
                    "function `{name}`: the program (`command[0]`) must be literal, not a template"
                ),
            );
            return None;
        }
        let program = self.resolve_program(name, program, &program_path)?;
        let mut args = Vec::new();
        let mut after_dashdash = false;
        for (i, arg) in s.command.iter().enumerate().skip(1) {
            let index = i.to_string();
            let path = [&at[..], &["command", index.as_str()]].concat();
            let t = self.template(name, arg, &path, Slot::ShellArg, declared)?;
            if let Some(Var::Args(arg_name, _)) = t.as_single_var() {
                let constrained = declared
                    .get(arg_name)
                    .is_some_and(|p| p.get("pattern").is_some() || p.get("enum").is_some());
                if !after_dashdash && !constrained {
                    let pos = self.spans.value(&path);
                    self.warn(
                        pos,
                        format!(
                            "function `{name}`: `{arg}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `{arg_name}` a `pattern` or `enum`, put `--` before it, or write `--opt={arg}`"
                        ),
                    );
                }
            }
            if let Some((flag, _)) = arg.split_once('=') {
                self.literal_secret(name, flag.trim_start_matches('-'), &t, &path);
            }
            after_dashdash |= arg == "--";
            args.push(t);
        }
        for var in s.env.iter().flatten() {
            if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                let pos = self.spans.value(&[&at[..], &["env"]].concat());
                self.error(
                    pos,
                    format!("function `{name}`: `{var}` is not a variable name"),
                );
            }
        }
        let concurrency = s.concurrency.unwrap_or(defaults::CONCURRENCY);
        if concurrency == 0 {
            let pos = self.spans.value(&[&at[..], &["concurrency"]].concat());
            self.error(
                pos,
                format!("function `{name}`: `concurrency` must be at least 1"),
            );
        }
        Some(ShellSpec {
            program,
            args,
            timeout: s.timeout.map_or(defaults::TIMEOUT, |d| d.0),
            env: s.env.unwrap_or_default(),
            max_output: s.max_output.map_or(defaults::MAX_OUTPUT, |b| b.0),
            concurrency: concurrency.max(1),
        })
    }

    fn resolve_program(&mut self, name: &str, program: &str, path: &[&str]) -> Option<PathBuf> {
        let pos = self.spans.value(path);
        let resolved = if program.contains('/') {
            let p = Path::new(program);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.dir.join(p)
            }
        } else {
            let found = std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(program))
                    .find(|c| c.is_file())
            });
            match found {
                Some(p) => p,
                None => {
                    self.error(
                        pos,
                        format!("function `{name}`: program `{program}` is not on PATH"),
                    );
                    return None;
                }
            }
        };
        match std::fs::metadata(&resolved) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Some(resolved),
            Ok(m) if m.is_file() => {
                self.error(
                    pos,
                    format!("function `{name}`: `{program}` is not executable (try `chmod +x`)"),
                );
                None
            }
            _ => {
                self.error(
                    pos,
                    format!(
                        "function `{name}`: `{program}` does not exist (relative paths start at the agent file's folder)"
                    ),
                );
                None
            }
        }
    }

    fn http(
        &mut self,
        name: &str,
        h: HttpFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<HttpSpec> {
        let at = ["functions", name, "http"];
        let url_path = [&at[..], &["url"]].concat();
        let url = self.template(name, &h.url, &url_path, Slot::HttpRequest, declared)?;
        self.check_url(name, &url, &url_path)?;
        let pairs = |this: &mut Self, field: &str, map: Option<IndexMap<String, String>>| {
            let mut out = Vec::new();
            for (k, v) in map.unwrap_or_default() {
                let path = [&at[..], &[field, k.as_str()]].concat();
                let t = this.template(name, &v, &path, Slot::HttpRequest, declared)?;
                this.literal_secret(name, &k, &t, &path);
                out.push((k, t));
            }
            Some(out)
        };
        let query = pairs(self, "query", h.query);
        let headers = pairs(self, "headers", h.headers);
        let form = pairs(self, "form", h.form);
        let body = match h.body {
            Some(b) => {
                let mut path: Vec<String> = at.iter().map(|s| s.to_string()).collect();
                path.push("body".into());
                Some(self.json_template(name, &b, &mut path, declared)?)
            }
            None => None,
        };
        let (query, headers, form) = (query?, headers?, form?);
        if body.is_some() && !form.is_empty() {
            let pos = self.spans.key(&[&at[..], &["form"]].concat());
            self.error(
                pos,
                format!("function `{name}`: use `body` or `form`, not both"),
            );
            return None;
        }
        let output = match h.output {
            Some(o) => {
                let path = [&at[..], &["output"]].concat();
                Some(self.template(name, &o, &path, Slot::HttpOutput, declared)?)
            }
            None => None,
        };
        let method = h.method.unwrap_or(Method::Get);
        let retries = h.retries.unwrap_or(0);
        if retries > 0 && method != Method::Get {
            let pos = self.spans.value(&[&at[..], &["retries"]].concat());
            self.error(
                pos,
                format!("function `{name}`: `retries` is for GET only; retrying a {} could repeat what it changes", method.as_str()),
            );
        }
        if retries > 10 {
            let pos = self.spans.value(&[&at[..], &["retries"]].concat());
            self.error(pos, format!("function `{name}`: `retries` is at most 10"));
        }
        Some(HttpSpec {
            url,
            method,
            query,
            headers,
            body,
            form,
            timeout: h.timeout.map_or(defaults::TIMEOUT, |d| d.0),
            retries,
            output,
            error_keys: h.error_keys.unwrap_or_default(),
            max_response: h.max_response.map_or(defaults::MAX_RESPONSE, |b| b.0),
        })
    }

    /// Scheme, host and port must be literal, so no argument can choose where
    /// a request goes.
    fn check_url(&mut self, name: &str, url: &Template, path: &[&str]) -> Option<()> {
        let pos = self.spans.value(path);
        let literal_prefix = match url.parts().first() {
            Some(crate::template::Part::Lit(s)) => s.as_str(),
            _ => "",
        };
        let authority_done = literal_prefix
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains(['/', '?']) || url.is_literal());
        if !authority_done {
            self.error(
                pos,
                format!("function `{name}`: the scheme, host and port of `url` must be literal (no template before the path)"),
            );
            return None;
        }
        // Parse with every variable replaced by a harmless value.
        let probe: String = url
            .parts()
            .iter()
            .map(|p| match p {
                crate::template::Part::Lit(s) => s.as_str(),
                crate::template::Part::Var(..) => "x",
            })
            .collect();
        match url::Url::parse(&probe) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                if u.host_str().is_none_or(str::is_empty) {
                    self.error(pos, format!("function `{name}`: `url` has no host"));
                    return None;
                }
                if !u.username().is_empty() || u.password().is_some() {
                    self.error(
                        pos,
                        format!("function `{name}`: `url` holds credentials; secrets never live in the agent file, use a header with `${{env:NAME}}`"),
                    );
                    return None;
                }
                Some(())
            }
            Ok(u) => {
                self.error(
                    pos,
                    format!(
                        "function `{name}`: `url` scheme `{}` is not http or https",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.error(pos, format!("function `{name}`: `url` does not parse: {e}"));
                None
            }
        }
    }

    fn json_template(
        &mut self,
        name: &str,
        value: &Value,
        path: &mut Vec<String>,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<JsonTemplate> {
        Some(match value {
            Value::String(s) => {
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                let t = self.template(name, s, &refs, Slot::HttpRequest, declared)?;
                if let Some(key) = path.last() {
                    let key = key.clone();
                    self.literal_secret(name, &key, &t, &refs);
                }
                if t.is_literal() {
                    JsonTemplate::Literal(value.clone())
                } else {
                    JsonTemplate::Text(t)
                }
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    let r = self.json_template(name, item, path, declared);
                    path.pop();
                    out.push(r?);
                }
                JsonTemplate::Array(out)
            }
            Value::Object(map) => {
                let mut out = Vec::new();
                for (k, v) in map {
                    path.push(k.clone());
                    let r = self.json_template(name, v, path, declared);
                    path.pop();
                    out.push((k.clone(), r?));
                }
                JsonTemplate::Object(out)
            }
            other => JsonTemplate::Literal(other.clone()),
        })
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

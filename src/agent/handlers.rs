//! The checks of handlers and templates: shell programs and argv, http
//! URLs, headers and bodies, and what each `${...}` may name where it sits.
//!
//! Part of loading ([`super::load`]): these are methods of its `Checker`,
//! kept apart so each file stays about one thing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::load::Checker;
use super::model::{HttpFile, Method, ShellFile};
use super::{defaults, HttpSpec, JsonTemplate, ShellSpec};
use crate::template::{Part, Template, Var};

/// Where a template sits decides which variables it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    ShellArg,
    HttpRequest,
    HttpOutput,
    StaticReply,
}

const SECRET_WORDS: [&str; 6] = ["password", "passwd", "secret", "token", "api_key", "apikey"];

/// Whether an argument's schema refuses every value that starts with `-`.
/// The schema itself is asked about candidates: negative numbers, the
/// dash-led members of any `enum` or `const`, the dash-led texts each
/// `pattern` matches (found by walking its automaton, so `^-z$` and
/// `^[a-z0-9-]{8,64}$` do not pass), and probes for what the walk cannot
/// see: formats (`format: email` takes `-@a.b`), patterns with look-around,
/// and `-` or `--` followed by runs of one character of each common class.
fn refuses_leading_dash(schema: &Value) -> bool {
    let Ok(validator) = super::schema_validator(schema) else {
        return false;
    };
    let numbers = [Value::from(-1), Value::from(-1.5)];
    if numbers.iter().any(|n| validator.is_valid(n)) {
        return false;
    }
    let mut listed = Vec::new();
    let mut walked = Vec::new();
    dash_led_candidates(schema, &mut listed, &mut walked);
    if listed.iter().any(|v| validator.is_valid(v))
        || walked
            .iter()
            .any(|t| validator.is_valid(&Value::from(t.as_str())))
    {
        return false;
    }
    let mixed = [
        "-@a.b",
        "-a@b.c",
        "-x@y",
        "-oProxyCommand=x@a.b",
        "-a1",
        "-1a",
        "-x=1",
        "-a.b",
        "-a_b",
        "--a-b",
        "-a/b",
        "-a:b",
        "-a b",
        "--help",
        "-rf",
    ];
    if mixed.iter().any(|p| validator.is_valid(&Value::from(*p))) {
        return false;
    }
    let lengths = (0..=64).chain([95, 127, 191, 255]);
    !lengths
        .flat_map(|n| {
            ["-", "--"].into_iter().flat_map(move |lead| {
                ['a', 'A', '0', 'f', 'x', '_', '-', '.', '=']
                    .into_iter()
                    .map(move |c| {
                        let mut probe = String::from(lead);
                        probe.extend(std::iter::repeat_n(c, n));
                        probe
                    })
            })
        })
        .any(|probe| validator.is_valid(&Value::String(probe)))
}

/// A value that reaches argv starting with `-`.
fn dash_led(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with('-'),
        Value::Number(n) => n.to_string().starts_with('-'),
        _ => false,
    }
}

/// Every dash-led `enum` and `const` value, and the dash-led texts of every
/// `pattern`, anywhere in `schema` (under `anyOf`, `items`, ...): whichever
/// the whole schema accepts is a value a caller can send.
fn dash_led_candidates(schema: &Value, listed: &mut Vec<Value>, walked: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("enum", Value::Array(items)) => {
                        listed.extend(items.iter().filter(|v| dash_led(v)).cloned())
                    }
                    ("const", v) if dash_led(v) => listed.push(v.clone()),
                    ("pattern", Value::String(p)) => {
                        walked.extend(super::pattern::dash_led_matches(p).unwrap_or_default())
                    }
                    _ => dash_led_candidates(value, listed, walked),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| dash_led_candidates(i, listed, walked)),
        _ => {}
    }
}

/// Upper bounds of handler limits: beyond them a value is a typo or a way
/// to exhaust the host, never a need.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_BYTES: u64 = 16 * 1024 * 1024;
const MAX_CONCURRENCY: u32 = 1024;

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    k == "authorization"
        || k == "proxy_authorization"
        || k == "x_api_key"
        || SECRET_WORDS.iter().any(|w| k.contains(w))
}

impl Checker<'_> {
    /// Parses one template and checks what it names against where it sits.
    pub(super) fn template(
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
                Var::Env(name) if crate::config::env::is_own_variable(name) => {
                    self.error(
                        at,
                        format!(
                            "function `{function}`: `${{env:{name}}}` is swagent's own setting; its secrets never leave swagent"
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
    pub(super) fn literal_secret(
        &mut self,
        function: &str,
        key: &str,
        template: &Template,
        path: &[&str],
    ) {
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

    /// A header the agent file sets must be one the request can carry on
    /// every call: a valid name, no line breaks or other control characters
    /// in its literal text, not one the HTTP client owns (framing and
    /// connection headers, which a wrong value turns into a broken or
    /// smuggled request), and a `Host` only when literal, like the url's host.
    fn check_header(&mut self, function: &str, key: &str, template: &Template, path: &[&str]) {
        const OWNED: [&str; 9] = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-connection",
            "expect",
        ];
        let lower = key.to_ascii_lowercase();
        let problem = if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err() {
            format!("`{key}` is not a valid header name")
        } else if OWNED.contains(&lower.as_str()) {
            format!("header `{key}` is set by the HTTP client; remove it")
        } else if lower == "host" && !template.is_literal() {
            "header `Host` must be literal, like the url's host, so no argument can choose it"
                .to_owned()
        } else if template.parts().iter().any(
            |p| matches!(p, Part::Lit(text) if text.chars().any(|c| c.is_control() && c != '\t')),
        ) {
            format!("header `{key}` has a line break or control character in its text")
        } else {
            return;
        };
        let pos = self.spans.key(path);
        self.error(pos, format!("function `{function}`: {problem}"));
    }

    pub(super) fn shell(
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
            self.exec_limits(name, i, &t, &path);
            if let Some(Var::Args(arg_name, _)) = t.as_single_var() {
                let constrained = declared.get(arg_name).is_some_and(refuses_leading_dash);
                if !after_dashdash && !constrained {
                    let pos = self.spans.value(&path);
                    self.warn(
                        pos,
                        format!(
                            "function `{name}`: `{arg}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `{arg_name}` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt={arg}`"
                        ),
                    );
                }
            }
            for (var, _) in t.vars() {
                let Var::Args(arg_name, _) = var else {
                    continue;
                };
                let sensitive = declared.get(arg_name).and_then(|d| d.get("sensitive"))
                    == Some(&Value::Bool(true));
                if sensitive {
                    // The audit log redacts it; the process table does not.
                    let pos = self.spans.value(&path);
                    self.warn(
                        pos,
                        format!(
                            "function `{name}`: the sensitive argument `{arg_name}` is on the command line, where any user on this host can read it while the program runs (`ps`); the program gets it as `SWAIG_ARG_{}` and on stdin",
                            arg_name.to_ascii_uppercase()
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
            let problem = if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                "is not a variable name"
            } else if crate::config::env::is_own_variable(var) {
                "is swagent's own setting; its secrets never reach a handler"
            } else if var.starts_with("SWAIG_") {
                "is set by swagent for each call (`SWAIG_ARG_*`, `SWAIG_FUNCTION`, `SWAIG_CALL_ID`)"
            } else if var.starts_with("LD_")
                || ["BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "IFS"].contains(&var.as_str())
            {
                "changes how programs load or shells start; set it in the program instead"
            } else {
                continue;
            };
            let pos = self.spans.value(&[&at[..], &["env"]].concat());
            self.error(pos, format!("function `{name}`: `{var}` {problem}"));
        }
        let arg_env = self.arg_env(name, declared);
        Some(ShellSpec {
            program,
            args,
            arg_env,
            timeout: self.timeout(name, &at, s.timeout.map(|d| d.0)),
            env: s.env.unwrap_or_default(),
            max_output: self.size(
                name,
                &at,
                "max_output",
                s.max_output.map(|b| b.0),
                defaults::MAX_OUTPUT,
            ),
            concurrency: self.concurrency(name, &at, s.concurrency, defaults::CONCURRENCY),
        })
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

    /// The `SWAIG_ARG_*` variables of the declared arguments whose names can
    /// be variable names. Two names that upper-case alike are an error: one
    /// variable cannot hold both.
    fn arg_env(
        &mut self,
        name: &str,
        declared: &serde_json::Map<String, Value>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for arg in declared.keys().filter(|k| crate::template::is_name(k)) {
            let var = format!("SWAIG_ARG_{}", arg.to_ascii_uppercase());
            if let Some((first, _)) = out.iter().find(|(_, v)| *v == var) {
                let pos =
                    self.spans
                        .key(&["functions", name, "parameters", "properties", arg.as_str()]);
                self.error(
                    pos,
                    format!("function `{name}`: arguments `{first}` and `{arg}` would both be `{var}`; rename one"),
                );
                continue;
            }
            out.push((arg.clone(), var));
        }
        out
    }

    /// What no value can mend: the argument's own text already holds a NUL
    /// or is too long to `exec`, so every call would fail.
    fn exec_limits(&mut self, name: &str, index: usize, t: &Template, path: &[&str]) {
        let literal = || {
            t.parts().iter().filter_map(|p| match p {
                Part::Lit(text) => Some(text.as_str()),
                Part::Var(..) => None,
            })
        };
        let why = if literal().any(|text| text.contains('\0')) {
            "holds a NUL byte, which no argument can carry".to_owned()
        } else {
            let len: usize = literal().map(str::len).sum();
            if len < super::MAX_ARG_STRLEN {
                return;
            }
            format!(
                "is {len} bytes before any value is filled in, and an argument may hold at most {}",
                super::MAX_ARG_STRLEN - 1
            )
        };
        let pos = self.spans.value(path);
        self.error(pos, format!("function `{name}`: argument {index} {why}"));
    }

    pub(super) fn resolve_program(
        &mut self,
        name: &str,
        program: &str,
        path: &[&str],
    ) -> Option<PathBuf> {
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

    pub(super) fn http(
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
        if let Some(headers) = &headers {
            let mut seen = std::collections::HashSet::new();
            for (k, t) in headers {
                let path = [&at[..], &["headers", k.as_str()]].concat();
                if !seen.insert(k.to_ascii_lowercase()) {
                    let pos = self.spans.key(&path);
                    self.error(
                        pos,
                        format!("function `{name}`: header `{k}` is set twice (header names ignore case)"),
                    );
                }
                self.check_header(name, k, t, &path);
            }
        }
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
        let verified_field = match &h.verified_field {
            Some(field) => match crate::template::parse_path(field) {
                Ok(steps) => Some(steps),
                Err(e) => {
                    let pos = self.spans.value(&[&at[..], &["verified_field"]].concat());
                    self.error(pos, format!("function `{name}`: `verified_field`: {e}"));
                    return None;
                }
            },
            None => None,
        };
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
            timeout: self.timeout(name, &at, h.timeout.map(|d| d.0)),
            retries,
            output,
            error_keys: h.error_keys.unwrap_or_default(),
            max_response: self.size(
                name,
                &at,
                "max_response",
                h.max_response.map(|b| b.0),
                defaults::MAX_RESPONSE,
            ),
            concurrency: self.concurrency(name, &at, h.concurrency, defaults::HTTP_CONCURRENCY),
            verified_field,
        })
    }

    /// Scheme, host and port must be literal, so no argument can choose where
    /// a request goes.
    pub(super) fn check_url(&mut self, name: &str, url: &Template, path: &[&str]) -> Option<()> {
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
                // `?api_key=sk_live_...` written into the url is a literal
                // credential as much as one in `query:` is. Variables become
                // U+0001 here, which no literal text holds, to tell them apart.
                let marked: String = url
                    .parts()
                    .iter()
                    .map(|p| match p {
                        crate::template::Part::Lit(s) => s.as_str(),
                        crate::template::Part::Var(..) => "\u{1}",
                    })
                    .collect();
                let pairs: Vec<(String, String)> = url::Url::parse(&marked)
                    .map(|m| m.query_pairs().into_owned().collect())
                    .unwrap_or_default();
                for (key, value) in pairs {
                    if looks_secret(&key) && !value.is_empty() && !value.contains('\u{1}') {
                        self.error(
                            pos,
                            format!("function `{name}`: `url` holds a literal credential in `{key}`; secrets never live in the agent file, use `${{env:NAME}}`"),
                        );
                        return None;
                    }
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

    pub(super) fn json_template(
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

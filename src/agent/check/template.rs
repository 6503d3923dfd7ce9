//! The checks of templates: which variables each slot may use (`${env:...}`
//! never where a caller hears it, `${response...}` only in http `output`,
//! `${item...}` and `${list}` only in a `foreach` output's `each` and
//! `text`), undeclared arguments, swagent's own variables, and literal
//! secrets.

use serde_json::Value;

use super::Checker;
use crate::agent::spans::Pos;
use crate::agent::JsonTemplate;
use crate::template::{Template, Var};

/// Where a template sits decides which variables it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    ShellArg,
    HttpRequest,
    /// http `output` as one template, or a `foreach` output's `empty`.
    HttpOutput,
    /// A `foreach` output's `each`: `${item...}` besides what `output` may use.
    ForeachEach,
    /// A `foreach` output's `text`: `${list}` besides what `output` may use.
    ForeachText,
    StaticReply,
    /// An action's text or data: `${response...}` with an http handler,
    /// `${output...}` with a shell one; never `${env:...}`.
    Action {
        http: bool,
        shell: bool,
    },
}

const SECRET_WORDS: [&str; 6] = ["password", "passwd", "secret", "token", "api_key", "apikey"];

pub(super) fn looks_secret(key: &str) -> bool {
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
            if let Some(problem) = self.refusal(var, source, slot, declared) {
                self.error(at, format!("function `{function}`: {problem}"));
                ok = false;
            } else if let Var::Env(name) = var {
                self.read_env(function, name, at);
            }
        }
        ok.then_some(template)
    }

    /// Why `var` may not stand in `slot`, if it may not.
    fn refusal(
        &self,
        var: &Var,
        source: &str,
        slot: Slot,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<String> {
        use super::lifecycle::Hook;
        Some(match var {
            Var::Args(arg, _) if !declared.contains_key(arg) => {
                format!("template names `{source}` but no such argument is declared")
            }
            Var::Response(_)
                if !matches!(
                    slot,
                    Slot::HttpOutput
                        | Slot::ForeachEach
                        | Slot::ForeachText
                        | Slot::Action { http: true, .. }
                ) =>
            {
                format!("`{source}` is only available in http `output` and the actions of a function with an http handler")
            }
            Var::Output(_) if !matches!(slot, Slot::Action { shell: true, .. }) => {
                format!("`{source}` is only available in the actions of a function with a shell handler")
            }
            Var::Call(_) if self.hook.is_none() => {
                format!(
                    "`{source}` is only available in `on_call_start`, `on_call_end` and `summary`"
                )
            }
            Var::GlobalData(_) if self.hook == Some(Hook::Start) => {
                format!("`{source}` is always empty in `on_call_start`: the call has no data yet (the file's own `global_data` is known when you write it)")
            }
            Var::MetaData(_) if self.hook.is_some() => {
                format!("`{source}` is always empty in a call hook: it has no `meta_data`")
            }
            Var::Hangup(_) if self.hook != Some(Hook::End) => {
                format!("`{source}` is only available in `on_call_end`")
            }
            Var::Summary(_) if self.hook != Some(Hook::Summary) => {
                format!("`{source}` is only available in `summary`")
            }
            Var::Item(_) if slot != Slot::ForeachEach => {
                format!("`{source}` is only available in `each` of an http `output` with `foreach`")
            }
            Var::List if slot != Slot::ForeachText => {
                format!("`{source}` is only available in `text` of an http `output` with `foreach`")
            }
            Var::Env(name) if slot != Slot::HttpRequest => {
                format!("`${{env:{name}}}` is only allowed in http `url`, `query`, `headers`, `body` and `form` (its value must never reach the caller)")
            }
            Var::Env(name) if crate::config::env::is_own_variable(name) => {
                format!(
                    "`${{env:{name}}}` is swagent's own setting; its secrets never leave swagent"
                )
            }
            _ => return None,
        })
    }

    /// Reads `${env:NAME}` now, once; unset is a warning (an error when strict).
    fn read_env(&mut self, function: &str, name: &str, at: Pos) {
        match std::env::var(name) {
            Ok(value) => {
                self.env.insert(name.to_owned(), value);
            }
            Err(_) => {
                let msg =
                    format!("function `{function}`: environment variable `{name}` is not set");
                if self.opts.strict {
                    self.error(at, msg);
                } else {
                    self.warn(at, msg);
                }
            }
        }
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

    pub(super) fn json_template(
        &mut self,
        name: &str,
        value: &Value,
        path: &mut Vec<String>,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<JsonTemplate> {
        self.json_template_in(name, value, path, declared, Slot::HttpRequest)
    }

    /// [`Self::json_template`] for a `slot` other than an http request.
    pub(super) fn json_template_in(
        &mut self,
        name: &str,
        value: &Value,
        path: &mut Vec<String>,
        declared: &serde_json::Map<String, Value>,
        slot: Slot,
    ) -> Option<JsonTemplate> {
        Some(match value {
            Value::String(s) => {
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                let t = self.template(name, s, &refs, slot, declared)?;
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
                    let r = self.json_template_in(name, item, path, declared, slot);
                    path.pop();
                    out.push(r?);
                }
                JsonTemplate::Array(out)
            }
            Value::Object(map) => {
                let mut out = Vec::new();
                for (k, v) in map {
                    path.push(k.clone());
                    let r = self.json_template_in(name, v, path, declared, slot);
                    path.pop();
                    out.push((k.clone(), r?));
                }
                JsonTemplate::Object(out)
            }
            other => JsonTemplate::Literal(other.clone()),
        })
    }
}

//! The checks of one function: its name, its argument schema (which the
//! server enforces whole, and the platform is told in its own terms), its
//! guards, its one handler and its rate limit.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::template::Slot;
use super::Checker;
use crate::agent::model::{FunctionFile, HttpFile, RateLimitFile, ShellFile, StaticFile};
use crate::agent::parameters::platform_parameters;
use crate::agent::{Function, FunctionOptions, Handler, Method, RateLimit, StaticSpec};
use crate::guard::CONFIRMATION_ARG;

/// Names the platform gives its own internal functions (the SDK's list in
/// `ContextBuilder`'s `functions`): one of the file's would be called by it.
const PLATFORM_OWN: [&str; 5] = [
    "startup_hook",
    "hangup_hook",
    "summarize_conversation",
    "check_for_input",
    "get_ideal_strategy",
];

impl Checker<'_> {
    /// One function; `None` when its schema or handler cannot be built.
    pub(super) fn function(&mut self, name: &str, mut f: FunctionFile) -> Option<Function> {
        self.function_name(name);
        let (parameters, validator) = self.parameters(name, f.parameters.take())?;
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
        self.guards(name, &f, &declared);
        let options = self.options(name, &mut f);
        let output_actions = self.output_actions(name, f.actions_from_output.take());
        let slot = Slot::Action {
            http: f.http.is_some(),
            shell: f.shell.is_some(),
        };
        let actions = self.actions(name, f.actions.take().unwrap_or_default(), &declared, slot);
        let post_process = f.post_process.unwrap_or(false);
        let outcomes = self.outcomes(name, f.outcomes.take().unwrap_or_default(), &declared, slot);
        let handler = self.handler(name, f.shell, f.http, f.static_reply, &declared)?;
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
        let rate_limit = self.rate_limit(name, f.rate_limit);
        Some(Function {
            name: name.to_owned(),
            description: f.description,
            secure,
            confirm,
            confirm_reason: f.reason,
            verifies_caller,
            requires_verification,
            identity: Vec::new(),
            swml_parameters: served(&parameters, confirm),
            parameters,
            validator: Arc::new(validator),
            handler,
            rate_limit,
            max_failures,
            options,
            output_actions,
            actions,
            post_process,
            outcomes,
        })
    }

    /// What the platform is told besides the schema: fillers in one
    /// language, a wait file that is an http(s) URL, `active`, `meta_data`.
    fn options(&mut self, name: &str, f: &mut FunctionFile) -> FunctionOptions {
        let fillers = f
            .fillers
            .take()
            .and_then(|raw| self.fillers(&["functions", name, "fillers"], raw, true));
        let wait_file = f.wait_file.take().filter(|url| {
            let ok = reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                let pos = self.spans.value(&["functions", name, "wait_file"]);
                self.error(
                    pos,
                    format!(
                        "function `{name}`: `wait_file` must be an http(s) URL of an audio file"
                    ),
                );
            }
            ok
        });
        FunctionOptions {
            fillers,
            wait_file,
            wait_file_loops: f.wait_file_loops,
            wait_for_fillers: f.wait_for_fillers,
            skip_fillers: f.skip_fillers,
            active: f.active,
            meta_data: f.meta_data.take(),
        }
    }

    fn function_name(&mut self, name: &str) {
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
        if PLATFORM_OWN.contains(&name) {
            let pos = self.spans.key(&at);
            let hint = match name {
                crate::agent::HANGUP_HOOK => ": use `on_call_end`",
                _ => "",
            };
            self.error(
                pos,
                format!("function `{name}`: the platform calls a function of this name itself, never at the AI's choice{hint}"),
            );
        }
    }

    /// The guards' flags agree with each other and with the handler.
    fn guards(&mut self, name: &str, f: &FunctionFile, declared: &Map<String, Value>) {
        let confirm = f.confirm.unwrap_or(false);
        let verifies_caller = f.verifies_caller.as_ref().is_some_and(|v| v.is_on());
        let requires_verification = f.requires_verification.as_ref().is_some_and(|r| r.is_on());
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
    }

    /// Exactly one handler, checked.
    fn handler(
        &mut self,
        name: &str,
        shell: Option<ShellFile>,
        http: Option<HttpFile>,
        static_reply: Option<StaticFile>,
        declared: &Map<String, Value>,
    ) -> Option<Handler> {
        let at = ["functions", name];
        let handlers = [shell.is_some(), http.is_some(), static_reply.is_some()]
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
        Some(if let Some(shell) = shell {
            Handler::Shell(self.shell(name, shell, declared)?)
        } else if let Some(http) = http {
            Handler::Http(self.http(name, http, declared)?)
        } else {
            let s = static_reply?;
            let path = [&at[..], &["static", "response"]].concat();
            let response = self.template(name, &s.response, &path, Slot::StaticReply, declared)?;
            let action = s.action.unwrap_or_default();
            for (i, a) in action.iter().enumerate() {
                if !crate::swml::schema::action_conforms(a) {
                    let pos = self
                        .spans
                        .value(&[&at[..], &["static", "action", &i.to_string()]].concat());
                    self.error(pos, format!("function `{name}`: this action is not one the platform takes (the SWML schema's `Action` union, or the SDK's form of it)"));
                } else if a.get("SWML").is_some_and(holds_variable) {
                    let pos = self
                        .spans
                        .value(&[&at[..], &["static", "action", &i.to_string()]].concat());
                    self.error(pos, format!("function `{name}`: a static `SWML` action may not hold `${{...}}` or `%{{...}}`: the platform fills them from the call, so a caller could steer where it dials or texts (toll fraud); write it under `actions:`, whose destinations come from the file"));
                }
            }
            Handler::Static(StaticSpec { response, action })
        })
    }

    fn rate_limit(&mut self, name: &str, rate_limit: Option<RateLimitFile>) -> RateLimit {
        match rate_limit {
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
        for (path, why) in crate::agent::parameters::mistyped_properties(&parameters) {
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
        match crate::agent::schema_validator(&parameters) {
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

/// What the platform is told of the arguments; a `confirm: true` function
/// also takes the confirmation code.
fn served(parameters: &Value, confirm: bool) -> Value {
    let mut swml_parameters = platform_parameters(parameters);
    if confirm {
        if let Some(props) = swml_parameters
            .get_mut("properties")
            .and_then(Value::as_object_mut)
        {
            props.insert(
                CONFIRMATION_ARG.into(),
                serde_json::json!({
                    "type": "string",
                    "description": crate::call::say::CONFIRMATION_ARGUMENT
                }),
            );
        }
    }
    swml_parameters
}

/// Whether a value holds a SWML variable (`${...}`, `%{...}`) anywhere.
fn holds_variable(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${") || s.contains("%{"),
        Value::Array(items) => items.iter().any(holds_variable),
        Value::Object(map) => map.values().any(holds_variable),
        _ => false,
    }
}

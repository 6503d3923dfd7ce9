//! The checks of the call's hooks. `on_call_start`: one http or shell
//! handler whose templates may name the call (`${call.from}`, ...) but no
//! argument, a short timeout (2 s by default, at most 10 s: the caller is
//! waiting for the first word), and what a failed lookup answers when it is
//! `required`. `on_call_end`: one handler whose templates may also name the
//! hangup payload (`${hangup.X}`), and the `params` its payload needs.
//! `summary`: one handler that may name the summary (`${summary.X}`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::Checker;
use crate::agent::actions::OutputActions;
use crate::agent::model::{CallEndFile, CallStartFile, HttpFile, ShellFile, SummaryFile};
use crate::agent::{
    CallEnd, CallStart, Function, FunctionOptions, Handler, RateLimit, SummaryDelivery, HANGUP_HOOK,
};

/// The lookup's timeout unless it says otherwise, and its most.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// The name the lookup goes by in logs, metrics and messages.
pub const CALL_START: &str = "on_call_start";
/// The key of the notification when the call ends, in messages.
const CALL_END: &str = "on_call_end";
/// The key of the summary's delivery, and its handler's name.
pub const SUMMARY: &str = "summary";
/// How long a summary is retried unless the file says, and at most.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const MAX_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The hook whose handler is being checked: what its templates may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hook {
    /// `${call.X}`.
    Start,
    /// `${call.X}` and `${hangup.X}`.
    End,
    /// `${call.X}` and `${summary.X}`.
    Summary,
}

impl Hook {
    fn key(self) -> &'static str {
        match self {
            Hook::Start => CALL_START,
            Hook::End => CALL_END,
            Hook::Summary => SUMMARY,
        }
    }
}

impl Checker<'_> {
    pub(super) fn on_call_start(&mut self, raw: Option<CallStartFile>) -> Option<CallStart> {
        let raw = raw?;
        let handler = self.call_start_handler(raw.shell, raw.http);
        let handler =
            handler.map(|h| lookup(h, CALL_START, "The lookup when the call starts.", false));
        let required = raw.required.unwrap_or(false);
        let after_failure = match (required, raw.after_failure) {
            (true, Some(verbs)) if !verbs.is_empty() => self.verbs(
                &[CALL_START, "after_failure"],
                verbs,
                &super::around::AI_VERBS,
            ),
            (true, _) => {
                let pos = self.spans.value(&[CALL_START, "required"]);
                self.error(pos, "`on_call_start`: `required: true` needs `after_failure`, the verbs a call gets when the lookup fails (a message, a hangup)");
                return None;
            }
            (false, Some(_)) => {
                let pos = self.spans.key(&[CALL_START, "after_failure"]);
                self.error(pos, "`on_call_start`: `after_failure` is used only with `required: true`; without it a failed lookup answers with the file's own `global_data`");
                return None;
            }
            (false, None) => Vec::new(),
        };
        Some(CallStart {
            function: handler?,
            required,
            after_failure,
        })
    }

    /// `on_call_end`: the hook's handler as the platform's `hangup_hook`,
    /// and the `params` its payload needs turned on.
    pub(super) fn on_call_end(
        &mut self,
        raw: Option<CallEndFile>,
        params: &mut indexmap::IndexMap<String, Value>,
    ) -> Option<CallEnd> {
        let raw = raw?;
        let call_log = raw.call_log.unwrap_or(false);
        let mut wanted = vec![("swaig_post_swml_vars", "the call's `to` and `direction`")];
        if call_log {
            wanted.push(("swaig_post_conversation", "the call log"));
        }
        for (param, what) in wanted {
            match params.get(param) {
                None => {
                    params.insert(param.into(), Value::Bool(true));
                }
                Some(Value::Bool(false)) => {
                    let pos = self.spans.value(&["params", param]);
                    self.warn(
                        pos,
                        format!("`params.{param}: false`: `on_call_end` will not get {what}"),
                    );
                }
                Some(_) => {}
            }
        }
        let (handler, _) = self.hook_handler(Hook::End, raw.shell, raw.http)?;
        Some(CallEnd {
            function: lookup(
                handler,
                HANGUP_HOOK,
                "Internal: fires when the call ends.",
                true,
            ),
            call_log,
        })
    }

    /// `summary`: its handler, and how long a summary is retried. It needs
    /// a `post_prompt`: without one the platform sends no summary.
    pub(super) fn summary(
        &mut self,
        raw: Option<SummaryFile>,
        has_post_prompt: bool,
        params: &mut indexmap::IndexMap<String, Value>,
    ) -> Option<SummaryDelivery> {
        let raw = raw?;
        if !has_post_prompt {
            let pos = self.spans.key(&[SUMMARY]);
            self.error(pos, "`summary` needs a `post_prompt`: without one the platform sends no summary to deliver");
        }
        let max_age = raw.max_age.map_or(DEFAULT_MAX_AGE, |d| d.0);
        if max_age > MAX_MAX_AGE || max_age.is_zero() {
            let pos = self.spans.value(&[SUMMARY, "max_age"]);
            self.error(pos, "`summary.max_age` is more than 0 and at most 7d");
        }
        // What `${call.to}` and `${call.direction}` read, as for `on_call_end`.
        params
            .entry("swaig_post_swml_vars".to_owned())
            .or_insert(Value::Bool(true));
        let (handler, _) = self.hook_handler(Hook::Summary, raw.shell, raw.http)?;
        Some(SummaryDelivery {
            function: lookup(
                handler,
                SUMMARY,
                "The delivery of the call's summary.",
                false,
            ),
            max_age: max_age.min(MAX_MAX_AGE),
        })
    }

    /// `on_call_start`'s handler, with its timeout within [`MAX_TIMEOUT`]
    /// (2 s unless it says otherwise).
    fn call_start_handler(
        &mut self,
        shell: Option<ShellFile>,
        http: Option<HttpFile>,
    ) -> Option<Handler> {
        let (mut handler, timeout) = self.hook_handler(Hook::Start, shell, http)?;
        if timeout.is_some_and(|t| t > MAX_TIMEOUT) {
            let kind = match handler {
                Handler::Shell(_) => "shell",
                _ => "http",
            };
            let pos = self.spans.value(&[CALL_START, kind, "timeout"]);
            self.error(pos, "`on_call_start`: `timeout` is at most 10s: the caller hears nothing until the lookup ends");
            return None;
        }
        let t = timeout.unwrap_or(DEFAULT_TIMEOUT);
        match &mut handler {
            Handler::Shell(s) => s.timeout = t,
            Handler::Http(h) => h.timeout = t,
            Handler::Static(_) => {}
        }
        Some(handler)
    }

    /// A hook's one handler, checked with what `hook` may name in reach of
    /// its templates, and the timeout it gave.
    fn hook_handler(
        &mut self,
        hook: Hook,
        shell: Option<ShellFile>,
        http: Option<HttpFile>,
    ) -> Option<(Handler, Option<Duration>)> {
        let no_arguments = Map::new();
        let key = hook.key();
        self.hook = Some(hook);
        let checked = match (shell, http) {
            (Some(s), None) => {
                let timeout = s.timeout.map(|t| t.0);
                let spec = self.shell_at(&[key, "shell"], key, s, &no_arguments);
                Some((spec.map(Handler::Shell), timeout))
            }
            (None, Some(h)) => {
                let timeout = h.timeout.map(|t| t.0);
                let spec = self.http_at(&[key, "http"], key, h, &no_arguments);
                Some((spec.map(Handler::Http), timeout))
            }
            _ => None,
        };
        self.hook = None;
        let Some((handler, timeout)) = checked else {
            let pos = self.spans.key(&[key]);
            self.error(
                pos,
                format!("`{key}` needs exactly one handler: `shell` or `http`"),
            );
            return None;
        };
        Some((handler?, timeout))
    }
}

/// A hook as a function the runtime can run: no arguments, no guards but
/// the token when `secure`.
fn lookup(handler: Handler, name: &str, description: &str, secure: bool) -> Function {
    let parameters = json!({"type": "object", "properties": {}});
    let validator = crate::agent::schema_validator(&parameters).expect("an empty schema compiles");
    Function {
        name: name.into(),
        description: description.into(),
        secure,
        confirm: false,
        confirm_reason: None,
        verifies_caller: false,
        requires_verification: false,
        identity: Vec::new(),
        swml_parameters: parameters.clone(),
        parameters,
        validator: std::sync::Arc::new(validator),
        handler,
        rate_limit: RateLimit::default(),
        max_failures: None,
        options: FunctionOptions::default(),
        output_actions: OutputActions::default(),
        actions: Vec::new(),
        post_process: false,
        outcomes: Default::default(),
    }
}

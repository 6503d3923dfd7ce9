//! The checks of `on_call_start`: one http or shell handler whose templates
//! may name the call (`${call.from}`, ...) but no argument, a short
//! timeout (2 s by default, at most 10 s: the caller is waiting for the
//! first word), and what a failed lookup answers when it is `required`.

use std::time::Duration;

use serde_json::{json, Map};

use super::Checker;
use crate::agent::actions::OutputActions;
use crate::agent::model::CallStartFile;
use crate::agent::{CallStart, Function, FunctionOptions, Handler, RateLimit};

/// The lookup's timeout unless it says otherwise, and its most.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// The name the lookup goes by in logs, metrics and messages.
pub const CALL_START: &str = "on_call_start";

impl Checker<'_> {
    pub(super) fn on_call_start(&mut self, raw: Option<CallStartFile>) -> Option<CallStart> {
        let raw = raw?;
        let handler = self.call_start_handler(raw.shell, raw.http);
        let required = raw.required.unwrap_or(false);
        let after_failure = match (required, raw.after_failure) {
            (true, Some(verbs)) if !verbs.is_empty() => {
                self.verbs(&[CALL_START, "after_failure"], verbs, false)
            }
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
            function: lookup(handler?),
            required,
            after_failure,
        })
    }

    /// Exactly one handler, with the call in reach of its templates and
    /// its timeout within [`MAX_TIMEOUT`].
    fn call_start_handler(
        &mut self,
        shell: Option<crate::agent::model::ShellFile>,
        http: Option<crate::agent::model::HttpFile>,
    ) -> Option<Handler> {
        let no_arguments = Map::new();
        self.lifecycle = true;
        let (handler, timeout, kind) = match (shell, http) {
            (Some(s), None) => {
                let timeout = s.timeout.map(|t| t.0);
                let spec = self.shell_at(&[CALL_START, "shell"], CALL_START, s, &no_arguments);
                (spec.map(Handler::Shell), timeout, "shell")
            }
            (None, Some(h)) => {
                let timeout = h.timeout.map(|t| t.0);
                let spec = self.http_at(&[CALL_START, "http"], CALL_START, h, &no_arguments);
                (spec.map(Handler::Http), timeout, "http")
            }
            _ => {
                self.lifecycle = false;
                let pos = self.spans.key(&[CALL_START]);
                self.error(
                    pos,
                    "`on_call_start` needs exactly one handler: `shell` or `http`",
                );
                return None;
            }
        };
        self.lifecycle = false;
        if timeout.is_some_and(|t| t > MAX_TIMEOUT) {
            let pos = self.spans.value(&[CALL_START, kind, "timeout"]);
            self.error(pos, "`on_call_start`: `timeout` is at most 10s: the caller hears nothing until the lookup ends");
            return None;
        }
        let mut handler = handler?;
        let t = timeout.unwrap_or(DEFAULT_TIMEOUT);
        match &mut handler {
            Handler::Shell(s) => s.timeout = t,
            Handler::Http(h) => h.timeout = t,
            Handler::Static(_) => {}
        }
        Some(handler)
    }
}

/// The lookup as a function the runtime can run: no arguments, no guards.
fn lookup(handler: Handler) -> Function {
    let parameters = json!({"type": "object", "properties": {}});
    let validator = crate::agent::schema_validator(&parameters).expect("an empty schema compiles");
    Function {
        name: CALL_START.into(),
        description: "The lookup when the call starts.".into(),
        secure: false,
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

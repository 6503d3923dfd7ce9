//! The agent: the validated, compiled form of an agent file.
//!
//! [`model`] mirrors the YAML; [`load`] checks it and builds the types here,
//! with templates parsed, argument schemas compiled and `${env:...}` resolved,
//! so serving a request never touches YAML or re-parses anything.

pub mod actions;
pub mod ai;
pub mod alert;
mod check;
pub mod contexts;
mod depth;
pub mod findings;
pub mod load;
pub mod model;
pub mod parameters;
mod pattern;
pub mod spans;
pub mod units;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use crate::template::Template;
pub use ai::{Ai, Around, Content, FunctionOptions, Language, Llm, Prompt, PromptBody, Section};
pub use check::LoadOptions;
pub use contexts::Contexts;
pub use load::{load, load_report, LoadError};
pub use model::Method;
pub use pattern::is_anchored;

/// Paths the server answers itself, whatever the agent: an agent `route`
/// that took one would be shadowed by it (and `/health` and `/ready` need no
/// credentials), so the loader refuses them.
pub const SERVER_PATHS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// A validated agent, ready to serve.
#[derive(Debug)]
pub struct Agent {
    pub name: String,
    /// Starts with `/` and has no trailing slash, except `/` itself.
    pub route: String,
    pub token_ttl: Duration,
    pub confirm_ttl: Duration,
    pub prompt: Prompt,
    pub post_prompt: Option<Prompt>,
    /// The conversation's contexts and steps, when it has them.
    pub contexts: Option<Contexts>,
    /// The rest of the `ai` verb's settings.
    pub ai: Ai,
    /// The verbs around the `ai` verb.
    pub around: Around,
    /// The lookup when the call starts.
    pub on_call_start: Option<CallStart>,
    /// The notification when the call ends.
    pub on_call_end: Option<CallEnd>,
    /// Where the call's summary is delivered.
    pub summary: Option<SummaryDelivery>,
    pub functions: IndexMap<String, Function>,
    /// The agent file, and the folder shell commands run in.
    pub path: PathBuf,
    pub dir: PathBuf,
    /// `${env:NAME}` values, read once when the agent loaded.
    pub env: HashMap<String, String>,
    /// Alert rules.
    pub alerts: Vec<crate::agent::alert::AlertRule>,
}

impl Agent {
    /// The path under the route: `/swaig` for route `/`, `/bank/swaig` for `/bank`.
    pub fn sub_path(&self, leaf: &str) -> String {
        if self.route == "/" {
            format!("/{leaf}")
        } else {
            format!("{}/{leaf}", self.route)
        }
    }

    /// The function the platform calls by `name`: one of the file's, or
    /// `on_call_end`'s hook; with its index in [`Agent::hooked`] order.
    pub fn callable(&self, name: &str) -> Option<(usize, &Function)> {
        if let Some((index, _, function)) = self.functions.get_full(name) {
            return Some((index, function));
        }
        let end = self.on_call_end.as_ref().filter(|_| name == HANGUP_HOOK)?;
        Some((self.functions.len(), &end.function))
    }

    /// Every function the platform may call: the file's, then the hook.
    pub fn hooked(&self) -> impl Iterator<Item = &Function> {
        let end = self.on_call_end.iter().map(|e| &e.function);
        self.functions.values().chain(end)
    }

    /// Every handler swagent may run: [`Agent::hooked`], then the lookup
    /// of `on_call_start`, then the summary's delivery.
    pub fn handlers(&self) -> impl Iterator<Item = &Function> {
        let start = self.on_call_start.iter().map(|s| &s.function);
        let summary = self.summary.iter().map(|s| &s.function);
        self.hooked().chain(start).chain(summary)
    }

    /// Looks up an `${env:...}` value resolved at load.
    pub fn env_value(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// The validator for an argument schema, as swagent runs every one:
/// `format` is enforced (draft 2020-12 makes it a mere annotation by
/// default, and a `format: email` that let anything through would be a
/// constraint in name only), and an unknown format is an error, not ignored.
pub fn schema_validator(
    schema: &serde_json::Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'_>> {
    jsonschema::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(schema)
}

/// `on_call_start`: a lookup whose JSON object joins the call's initial
/// `global_data`.
#[derive(Debug)]
pub struct CallStart {
    /// Its handler, as a function with no arguments and no guards.
    pub function: Function,
    /// A failed lookup answers with [`CallStart::after_failure`] alone.
    pub required: bool,
    pub after_failure: Vec<Value>,
}

/// `on_call_end`: the platform's `hangup_hook`, told the hangup payload.
#[derive(Debug)]
pub struct CallEnd {
    /// Its handler, as the secure function [`HANGUP_HOOK`] with no arguments.
    pub function: Function,
    /// The payload keeps the call log (`call_log`, `raw_call_log`).
    pub call_log: bool,
}

/// `summary`: the delivery of the post-prompt summary, through the outbox.
#[derive(Debug)]
pub struct SummaryDelivery {
    /// Its handler, as a function with no arguments and no guards.
    pub function: Function,
    /// Give up after this long.
    pub max_age: Duration,
}

/// The name the platform calls when the call ends, and gives no other function.
pub const HANGUP_HOOK: &str = "hangup_hook";

/// A validated SWAIG function.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    pub description: String,
    pub secure: bool,
    pub confirm: bool,
    /// Why `confirm: false` is right for a function that changes something.
    pub confirm_reason: Option<String>,
    pub verifies_caller: bool,
    pub requires_verification: bool,
    /// What a verification grant is bound to, as (bound name, this
    /// function's argument carrying it), sorted by name: for a verifier the
    /// arguments it `binds`, for a function that requires verification the
    /// arguments that must hold the verified values. Empty: the whole call.
    pub identity: Vec<(String, String)>,
    /// The full JSON Schema of the arguments, as written.
    pub parameters: Value,
    /// What the platform is sent: the subset SWML allows, limits put into words.
    pub swml_parameters: Value,
    /// `parameters`, compiled once.
    pub validator: Arc<jsonschema::Validator>,
    pub handler: Handler,
    /// Runs allowed per call id and over all calls (`None`: unlimited).
    pub rate_limit: RateLimit,
    /// For a verifier that binds arguments: failed checks allowed for the
    /// same values before they are locked out (`None`: no lock-out).
    pub max_failures: Option<crate::agent::units::Rate>,
    /// What the platform is told besides the schema: fillers, wait file, `active`.
    pub options: FunctionOptions,
    /// The actions its handler's output may carry.
    pub output_actions: actions::OutputActions,
    /// The file's actions, taken in order when the handler succeeds.
    pub actions: Vec<actions::Action>,
    /// The AI says the response before the actions run.
    pub post_process: bool,
    /// Named lists of actions the handler's output may pick instead.
    pub outcomes: IndexMap<String, Vec<actions::Action>>,
}

impl Function {
    /// How the agent file names it: a hook by its key (`on_call_end`).
    pub fn key_in_file(&self) -> &str {
        match self.name.as_str() {
            HANGUP_HOOK => "on_call_end",
            name => name,
        }
    }
}

/// `max_failures` of a verifier that binds arguments, unless it says
/// otherwise: five wrong PINs for one account in a row lock it for 15
/// minutes. A guesser gets at most five every 15 minutes, so trying all
/// 10,000 four-digit PINs of one account takes three weeks per replica,
/// where a `global: 60/min` rate limit alone lets it through in three hours.
pub fn default_max_failures() -> crate::agent::units::Rate {
    crate::agent::units::Rate::new(5, std::time::Duration::from_secs(15 * 60))
        .expect("a valid rate")
}

/// A function's rate limits, from `rate_limit` in the agent file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub per_call: Option<crate::agent::units::Rate>,
    pub global: Option<crate::agent::units::Rate>,
}

/// What a function does when called.
#[derive(Debug)]
pub enum Handler {
    Shell(ShellSpec),
    Http(HttpSpec),
    Static(StaticSpec),
}

impl Handler {
    /// `shell`, `http` or `static`.
    pub fn kind(&self) -> &'static str {
        match self {
            Handler::Shell(_) => "shell",
            Handler::Http(_) => "http",
            Handler::Static(_) => "static",
        }
    }

    /// How many calls may run at once; `None` for a static reply, which
    /// holds nothing while it runs.
    pub fn concurrency(&self) -> Option<u32> {
        match self {
            Handler::Shell(s) => Some(s.concurrency),
            Handler::Http(h) => Some(h.concurrency),
            Handler::Static(_) => None,
        }
    }

    /// The templates that decide what the handler does: a shell command
    /// line, an http request. (Not what it answers: `output`, a static reply.)
    pub fn action_templates(&self) -> Vec<&Template> {
        fn collect<'a>(t: &'a JsonTemplate, out: &mut Vec<&'a Template>) {
            match t {
                JsonTemplate::Text(t) => out.push(t),
                JsonTemplate::Array(items) => items.iter().for_each(|i| collect(i, out)),
                JsonTemplate::Object(fields) => fields.iter().for_each(|(_, v)| collect(v, out)),
                JsonTemplate::Literal(_) => {}
            }
        }
        let mut out = Vec::new();
        match self {
            Handler::Shell(s) => out.extend(s.args.iter()),
            Handler::Http(h) => {
                out.push(&h.url);
                out.extend(h.query.iter().map(|(_, t)| t));
                out.extend(h.headers.iter().map(|(_, t)| t));
                out.extend(h.form.iter().map(|(_, t)| t));
                if let Some(body) = &h.body {
                    collect(body, &mut out);
                }
            }
            Handler::Static(_) => {}
        }
        out
    }
}

/// A shell handler: a program and its templated arguments.
#[derive(Debug)]
pub struct ShellSpec {
    /// Resolved against the agent's folder when relative.
    pub program: PathBuf,
    pub args: Vec<Template>,
    /// Declared arguments exported as variables: (argument, `SWAIG_ARG_*` name).
    /// Only declared ones: a caller's extra key `ACCOUNT` would otherwise
    /// replace the checked `account` in `SWAIG_ARG_ACCOUNT`.
    pub arg_env: Vec<(String, String)>,
    pub timeout: Duration,
    pub env: Vec<String>,
    pub max_output: u64,
    pub concurrency: u32,
}

/// Linux refuses to `exec` with any one argument or `NAME=value` string of
/// 32 pages (`MAX_ARG_STRLEN`, with its NUL) or more: E2BIG.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// An http handler, with every templated piece parsed.
#[derive(Debug)]
pub struct HttpSpec {
    pub url: Template,
    /// `url` parsed once, when it has no `${...}`: the same on every request.
    /// Boxed, so that every [`Handler`] does not grow by its size.
    pub fixed_url: Option<Box<url::Url>>,
    pub method: Method,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<JsonTemplate>,
    pub form: Vec<(String, Template)>,
    pub timeout: Duration,
    pub retries: u32,
    pub output: Option<HttpOutput>,
    pub error_keys: Vec<String>,
    pub max_response: u64,
    pub concurrency: u32,
    /// For verifiers: where the response says the caller matched.
    pub verified_field: Option<Vec<crate::template::Step>>,
    /// Carries the `webhook-*` signature headers when a secret is set.
    pub sign: bool,
}

/// What an http handler answers with.
#[derive(Debug)]
pub enum HttpOutput {
    /// One template over the response.
    Text(Template),
    /// A list read out element by element; boxed, so that every
    /// [`Handler`] does not grow by its size.
    Foreach(Box<Foreach>),
}

/// An http `output` with `foreach`, checked: its templates parsed, its
/// path split into steps.
#[derive(Debug)]
pub struct Foreach {
    /// The array, inside the response (empty: the response itself).
    pub path: Vec<crate::template::Step>,
    /// One element's text, with `${item...}`.
    pub each: Template,
    pub join: String,
    /// At most this many elements are read out.
    pub max: usize,
    /// The reply when there is no element to read out.
    pub empty: Template,
    /// The reply around the list, with `${list}`; `None`: the list alone.
    pub text: Option<Template>,
}

/// A JSON value whose strings are templates.
#[derive(Debug, Clone)]
pub enum JsonTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// The value with each template rendered as data (a lone template
    /// keeps its JSON type).
    pub fn render(
        &self,
        ctx: &crate::template::Context<'_>,
    ) -> Result<Value, crate::template::RenderError> {
        Ok(match self {
            JsonTemplate::Literal(v) => v.clone(),
            JsonTemplate::Text(t) => t.render_json(ctx)?,
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(ctx))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(ctx)?)))
                    .collect::<Result<_, crate::template::RenderError>>()?,
            ),
        })
    }
}

/// A static handler.
#[derive(Debug)]
pub struct StaticSpec {
    pub response: Template,
    pub action: Vec<Value>,
}

/// Defaults of the format, in one place.
pub mod defaults {
    use std::time::Duration;

    pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
    pub const CONFIRM_TTL: Duration = Duration::from_secs(300);
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    pub const MAX_OUTPUT: u64 = 64 * 1024;
    pub const MAX_RESPONSE: u64 = 1024 * 1024;
    /// A shell run is a process and three descriptors.
    pub const CONCURRENCY: u32 = 16;
    /// An http request is a socket, waiting on the upstream: a busy agent's
    /// lookups overlap more than its programs.
    pub const HTTP_CONCURRENCY: u32 = 64;
    /// Elements a `foreach` output reads out unless it says `max`, and the
    /// most it may say: a caller listens to every one.
    pub const FOREACH_MAX: u64 = 10;
    pub const FOREACH_MAX_LIMIT: u64 = 100;
    /// Between the elements of a `foreach` output unless it says `join`.
    pub const FOREACH_JOIN: &str = ", ";
    /// Agent files larger than this are refused before parsing.
    pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
}

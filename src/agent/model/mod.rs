//! The agent file as written: serde types that mirror the YAML, one to one.
//!
//! These types only say what is *typed*. Whether it *means* anything valid
//! (unique names, declared arguments, a reachable step, values the platform
//! takes) is decided in [`super::check`], which turns them into
//! [`super::Agent`]. The JSON Schema in `schemas/agent.schema.json` is
//! generated from these types (`swagent schema`), so editors and swagent
//! always agree on the format. Keys keep their SWML names.

pub mod actions;
pub mod contexts;
pub mod function;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::units::DurationSpec;
pub use actions::{
    ActionFile, DestinationFile, KeysFile, OutputActionsFile, PlayBackgroundFile, StopRecordFile,
    TargetsFile,
};
pub use contexts::{
    ContextFile, GatherInfoFile, History, QuestionFile, ResetFile, StepFile, StepFunctions,
    StepSection,
};
pub use function::{
    BindsFile, ForeachFile, FunctionFile, HttpFile, MaxFailuresFile, Method, OutputFile,
    RateLimitFile, RequiresVerificationFile, ShellFile, StaticFile, VerifiesCallerFile,
};

/// A voice-AI agent: its prompt and the SWAIG functions it may call.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    /// The agent's name, used in logs and the audit trail.
    pub name: String,
    /// HTTP path the SWML document is served at; `/swaig` and `/post_prompt` sit under it.
    /// Not `/health`, `/ready` or `/metrics`: swagent serves those itself.
    #[serde(default)]
    pub route: Option<String>,
    /// Seconds a function token lives (default 3600).
    #[serde(default)]
    pub token_ttl: Option<u64>,
    /// How long a confirmation code of a `confirm: true` function lives (default 5m).
    #[serde(default)]
    pub confirm_ttl: Option<DurationSpec>,
    /// The system prompt: `text`, or POM `sections`, and the model's settings.
    pub prompt: PromptFile,
    /// What the AI is asked at the end of the call; the answer is posted to
    /// `/post_prompt`. Text, or `{ text (or sections), temperature, ... }`.
    #[serde(default)]
    pub post_prompt: Option<PostPromptFile>,
    /// Contexts and their steps (SWML `prompt.contexts`); `default` is required.
    #[serde(default)]
    pub contexts: Option<IndexMap<String, ContextFile>>,
    /// SWML `ai.params`: each key the official schema knows is checked.
    #[serde(default)]
    pub params: Option<IndexMap<String, Value>>,
    /// The languages the agent speaks (SWML `ai.languages`).
    #[serde(default)]
    pub languages: Option<Vec<LanguageFile>>,
    /// SWML `ai.multilingual`, as the official schema has it.
    #[serde(default)]
    pub multilingual: Option<Value>,
    /// Words that help speech recognition: text, or `{ hint, pattern, replace, ignore_case }`.
    #[serde(default)]
    pub hints: Option<Vec<HintFile>>,
    /// How the AI says words: `{ replace, with, ignore_case }`.
    #[serde(default)]
    pub pronounce: Option<Vec<PronounceFile>>,
    /// The call's initial `global_data`.
    #[serde(default)]
    pub global_data: Option<Map<String, Value>>,
    /// The platform's own functions to offer (`check_time`, `wait_seconds`, ...).
    #[serde(default)]
    pub native_functions: Option<Vec<String>>,
    /// Functions served by another SWAIG server: `{ url, functions, meta_data }`.
    #[serde(default)]
    pub includes: Option<Vec<IncludeFile>>,
    /// What the AI says while the platform's own functions run, per function
    /// and language (SWML `SWAIG.internal_fillers`).
    #[serde(default)]
    pub internal_fillers: Option<Map<String, Value>>,
    /// The `answer` verb's settings.
    #[serde(default)]
    pub answer: Option<AnswerFile>,
    /// Record the call: a `record_call` verb before the AI (`{ format, stereo, ... }`).
    #[serde(default)]
    pub record_call: Option<Map<String, Value>>,
    /// SWML verbs before the AI, after `answer`: `[{ play: { url: ... } }]`.
    #[serde(default)]
    pub before_ai: Option<Vec<Value>>,
    /// SWML verbs after the AI ends: `[{ hangup: {} }]`.
    #[serde(default)]
    pub after_ai: Option<Vec<Value>>,
    /// A lookup when the call starts (a CRM, a customer record): its JSON
    /// object is merged into the call's initial `global_data`.
    #[serde(default)]
    pub on_call_start: Option<CallStartFile>,
    /// A notification when the call ends (the platform's `hangup_hook`):
    /// the hangup payload to a backend; its output is ignored.
    #[serde(default)]
    pub on_call_end: Option<CallEndFile>,
    /// Where the call's summary is delivered (a CRM, a ticket), through the
    /// outbox: never lost once received.
    #[serde(default)]
    pub summary: Option<SummaryFile>,
    /// SWAIG functions, by name.
    #[serde(default)]
    pub functions: IndexMap<String, FunctionFile>,
    /// Thresholds that raise an `alert` audit event (and may block).
    #[serde(default)]
    pub alerts: Option<Vec<AlertFile>>,
}

/// One alert rule. Exactly one shape:
/// `{function, max_per_minute}`, `{auth_failures_per_minute}`,
/// `{calls_per_minute}`, `{business_hours, functions?, block?}`,
/// `{function, argument, above, block?}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertFile {
    /// A name for the rule in alerts (default: a description of it).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub function: Option<String>,
    /// Calls of `function` per minute (all calls together).
    #[serde(default)]
    pub max_per_minute: Option<u64>,
    /// Failed authentications per minute (all clients together).
    #[serde(default)]
    pub auth_failures_per_minute: Option<u64>,
    /// Calls started (SWML fetched) per minute.
    #[serde(default)]
    pub calls_per_minute: Option<u64>,
    /// A window such as `Mon-Fri 08:00-18:00 Europe/Berlin`; one that ends
    /// before it starts (`22:00-06:00`) runs past midnight.
    #[serde(default)]
    pub business_hours: Option<String>,
    /// Functions the business-hours rule covers (default: all).
    #[serde(default)]
    pub functions: Option<Vec<String>>,
    /// With `function` and `above`: the numeric argument to watch.
    #[serde(default)]
    pub argument: Option<String>,
    #[serde(default)]
    pub above: Option<f64>,
    /// Refuse the call as well as alerting (business hours, large amounts).
    #[serde(default)]
    pub block: Option<bool>,
}

/// A prompt (the system prompt, or the post prompt as an object): `text`
/// or `sections` (not both), and the model's settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptFile {
    /// A plain-text prompt.
    #[serde(default)]
    pub text: Option<String>,
    /// A Prompt Object Model prompt.
    #[serde(default)]
    pub sections: Option<Vec<Section>>,
    /// 0 to 1.5.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// 0 to 1.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// How sure speech recognition must be, 0 to 1.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// -2 to 2.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// -2 to 2.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// 0 to 4096.
    #[serde(default)]
    pub max_tokens: Option<i64>,
}

/// The post prompt: text, or a prompt of its own (`text` or `sections`)
/// with the model's settings.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum PostPromptFile {
    Text(String),
    Full(PromptFile),
}

impl<'de> Deserialize<'de> for PostPromptFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PostPromptFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("text, or `{ text, temperature, ... }`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PostPromptFile, E> {
                Ok(PostPromptFile::Text(s.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<PostPromptFile, A::Error> {
                PromptFile::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(PostPromptFile::Full)
            }
        }
        d.deserialize_any(V)
    }
}

/// A POM section: a `body` or `bullets` (or both), an optional title.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub bullets: Option<Vec<String>>,
    #[serde(default)]
    pub numbered: Option<bool>,
    #[serde(default)]
    pub numbered_bullets: Option<bool>,
    #[serde(default)]
    pub subsections: Option<Vec<Section>>,
}

/// A language the agent speaks (SWML `ai.languages` entry).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageFile {
    pub name: String,
    pub code: String,
    /// Required: the platform refuses a language without one. May use `${env:NAME}`.
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default)]
    pub engine: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// `auto`: the voice's emotion follows the conversation.
    #[serde(default)]
    pub emotion: Option<String>,
    /// `auto`: the voice's speed follows the conversation.
    #[serde(default)]
    pub speed: Option<String>,
    /// The voice's `stability` and `similarity`, 0 to 1.
    #[serde(default)]
    pub params: Option<VoiceParamsFile>,
    #[serde(default)]
    pub speech_fillers: Option<Vec<String>>,
    #[serde(default)]
    pub function_fillers: Option<Vec<String>>,
}

/// A language's voice settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceParamsFile {
    #[serde(default)]
    pub stability: Option<f64>,
    #[serde(default)]
    pub similarity: Option<f64>,
}

/// A hint: a word, or a pattern and what it is replaced with.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum HintFile {
    Word(String),
    Pattern(PatternHintFile),
}

/// `{ hint, pattern, replace, ignore_case }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternHintFile {
    pub hint: String,
    pub pattern: String,
    pub replace: String,
    #[serde(default)]
    pub ignore_case: Option<bool>,
}

impl<'de> Deserialize<'de> for HintFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = HintFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a word, or `{ hint, pattern, replace, ignore_case }`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HintFile, E> {
                Ok(HintFile::Word(s.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<HintFile, A::Error> {
                PatternHintFile::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(HintFile::Pattern)
            }
        }
        d.deserialize_any(V)
    }
}

/// How the AI says a word.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PronounceFile {
    pub replace: String,
    pub with: String,
    #[serde(default)]
    pub ignore_case: Option<bool>,
}

/// Functions of another SWAIG server, offered to the AI as its own.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncludeFile {
    /// The server's URL; may use `${env:NAME}` (sent in the SWML).
    pub url: String,
    /// The names of its functions to offer.
    pub functions: Vec<String>,
    #[serde(default)]
    pub meta_data: Option<Map<String, Value>>,
}

/// The `answer` verb.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerFile {
    /// The longest the call may last, in seconds (the platform's default: 14400).
    #[serde(default)]
    pub max_duration: Option<u32>,
}

/// `on_call_start`: an http or shell handler run when the platform fetches
/// the SWML. Its templates may use `${call.from}`, `${call.to}`,
/// `${call.call_id}`, `${call.direction}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallStartFile {
    #[serde(default)]
    pub shell: Option<ShellFile>,
    #[serde(default)]
    pub http: Option<HttpFile>,
    /// `true`: when the lookup fails, answer with `after_failure` instead of
    /// the file's own `global_data` (default `false`).
    #[serde(default)]
    pub required: Option<bool>,
    /// With `required: true`: the SWML verbs the call gets when the lookup
    /// fails, e.g. `[{ play: { url: "say:..." } }, { hangup: {} }]`.
    #[serde(default)]
    pub after_failure: Option<Vec<Value>>,
}

/// `on_call_end`: an http or shell handler run when the call ends. Its
/// templates may use `${hangup.FIELD}`, `${call.from}`, `${call.to}`,
/// `${call.call_id}`, `${call.direction}` and `${global_data.KEY}`; a
/// program gets the hangup payload on stdin.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallEndFile {
    #[serde(default)]
    pub shell: Option<ShellFile>,
    #[serde(default)]
    pub http: Option<HttpFile>,
    /// `true`: the payload carries the call log (`call_log`,
    /// `raw_call_log`), and `params.swaig_post_conversation` is turned on.
    #[serde(default)]
    pub call_log: Option<bool>,
}

/// `summary`: an http or shell handler that delivers the post-prompt
/// summary. Its templates may use `${summary.text}`, `${summary.parsed}`,
/// `${summary.id}`, `${call.from}`, ... and `${global_data.KEY}`; a program
/// gets the summary and the request on stdin.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryFile {
    #[serde(default)]
    pub shell: Option<ShellFile>,
    #[serde(default)]
    pub http: Option<HttpFile>,
    /// Give up delivering after this long, with an audit event (default
    /// 24h, at most 7d).
    #[serde(default)]
    pub max_age: Option<DurationSpec>,
}

/// The JSON Schema of the agent file format, as committed in `schemas/`.
pub fn schema_json() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<AgentFile>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

//! The agent file as written: serde types that mirror the YAML, one to one.
//!
//! These types only say what is *typed*. Whether it *means* anything valid
//! (unique names, declared arguments, a reachable script) is decided in
//! [`super::load`], which turns them into [`super::Agent`]. The JSON Schema in
//! `schemas/agent.schema.json` is generated from these types (`swagent schema`),
//! so editors and swagent always agree on the format.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::units::{ByteSize, DurationSpec, RateSpec};

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
    /// The system prompt: `text`, or POM `sections`.
    pub prompt: PromptFile,
    /// What the AI is asked at the end of the call; the answer is posted to `/post_prompt`.
    #[serde(default)]
    pub post_prompt: Option<String>,
    /// Passed through to SWML `ai.params`.
    #[serde(default)]
    pub params: Option<IndexMap<String, Value>>,
    /// Passed through to SWML `ai.languages`.
    #[serde(default)]
    pub languages: Option<Vec<Language>>,
    /// Words that help speech recognition (SWML `ai.hints`).
    #[serde(default)]
    pub hints: Option<Vec<String>>,
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

/// The prompt: either `text` or `sections`, not both.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptFile {
    /// A plain-text prompt.
    #[serde(default)]
    pub text: Option<String>,
    /// A Prompt Object Model prompt.
    #[serde(default)]
    pub sections: Option<Vec<Section>>,
}

/// A POM section.
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
pub struct Language {
    pub name: String,
    pub code: String,
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default)]
    pub engine: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub speech_fillers: Option<Vec<String>>,
    #[serde(default)]
    pub function_fillers: Option<Vec<String>>,
}

/// `verifies_caller`: a flag, or the arguments the grant is bound to.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum VerifiesCallerFile {
    Flag(bool),
    Binds(BindsFile),
}

impl VerifiesCallerFile {
    pub fn is_on(&self) -> bool {
        !matches!(self, VerifiesCallerFile::Flag(false))
    }

    /// The bound argument names, sorted and without repeats.
    pub fn binds(&self) -> Vec<String> {
        let mut out = match self {
            VerifiesCallerFile::Flag(_) => Vec::new(),
            VerifiesCallerFile::Binds(b) => b.binds.clone(),
        };
        out.sort();
        out.dedup();
        out
    }
}

impl RequiresVerificationFile {
    pub fn is_on(&self) -> bool {
        !matches!(self, RequiresVerificationFile::Flag(false))
    }
}

/// `verifies_caller: { binds: [...] }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindsFile {
    /// Arguments of this function whose values the grant holds for.
    pub binds: Vec<String>,
    /// Failed checks allowed for the same bound values (one account) over
    /// all calls, e.g. `5/15m` (the default): the last one locks that
    /// account's verification for the interval, and a locked check does not
    /// run. At most 20, over 1 minute to 1 day, and at most 20 an hour in the
    /// long run. `false` turns the lock-out off.
    #[serde(default)]
    pub max_failures: Option<MaxFailuresFile>,
}

/// `max_failures`: a rate, or `false` (off; `true` is the default).
#[derive(Debug, Clone, Copy, JsonSchema)]
#[serde(untagged)]
pub enum MaxFailuresFile {
    Flag(bool),
    Rate(RateSpec),
}

/// `requires_verification`: a flag, or bound name → this function's argument.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum RequiresVerificationFile {
    Flag(bool),
    Map(IndexMap<String, String>),
}

/// `true`, `false`, or a longer form `T`. serde's untagged enums would say
/// only "data did not match any variant" and hide the long form's own error
/// (`binds` misspelt, a rate of `0/min`).
enum FlagOr<T> {
    Flag(bool),
    Long(T),
}

/// What a [`FlagOr`] expects besides a flag, for serde's "expected ...".
trait LongForm {
    const EXPECTING: &'static str;
    /// Whether the long form is written as a string.
    const TEXT: bool = false;
}

impl LongForm for BindsFile {
    const EXPECTING: &'static str = "`true`, `false` or `{ binds: [ARGUMENT, ...] }`";
}

impl LongForm for RateSpec {
    const EXPECTING: &'static str = "`true`, `false` or a rate such as `5/15m`";
    const TEXT: bool = true;
}

impl LongForm for IndexMap<String, String> {
    const EXPECTING: &'static str = "`true`, `false` or `{ BOUND_NAME: ARGUMENT }`";
}

impl<'de, T: Deserialize<'de> + LongForm> Deserialize<'de> for FlagOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{value::MapAccessDeserializer, IntoDeserializer, MapAccess, Visitor};
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + LongForm> Visitor<'de> for V<T> {
            type Value = FlagOr<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<FlagOr<T>, E> {
                Ok(FlagOr::Flag(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FlagOr<T>, E> {
                if !T::TEXT {
                    return Err(E::invalid_type(serde::de::Unexpected::Str(s), &self));
                }
                T::deserialize(s.into_deserializer()).map(FlagOr::Long)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FlagOr<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(FlagOr::Long)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for VerifiesCallerFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match FlagOr::deserialize(d)? {
            FlagOr::Flag(b) => VerifiesCallerFile::Flag(b),
            FlagOr::Long(binds) => VerifiesCallerFile::Binds(binds),
        })
    }
}

impl<'de> Deserialize<'de> for MaxFailuresFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match FlagOr::deserialize(d)? {
            FlagOr::Flag(b) => MaxFailuresFile::Flag(b),
            FlagOr::Long(rate) => MaxFailuresFile::Rate(rate),
        })
    }
}

impl<'de> Deserialize<'de> for RequiresVerificationFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match FlagOr::deserialize(d)? {
            FlagOr::Flag(b) => RequiresVerificationFile::Flag(b),
            FlagOr::Long(map) => RequiresVerificationFile::Map(map),
        })
    }
}

/// A SWAIG function: its description, argument schema and exactly one handler.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionFile {
    /// What the function does, for the AI.
    pub description: String,
    /// Require a per-call function token (default true).
    #[serde(default)]
    pub secure: Option<bool>,
    /// Run only after the caller confirmed the exact arguments (enforced by the server).
    #[serde(default)]
    pub confirm: Option<bool>,
    /// Why a function that changes something needs no confirmation.
    #[serde(default)]
    pub reason: Option<String>,
    /// This function checks who the caller is (PIN, code, ...). `true`: success
    /// verifies the caller for the rest of the call. `{ binds: [account] }`:
    /// only for these argument values (the account the PIN was checked for).
    #[serde(default)]
    pub verifies_caller: Option<VerifiesCallerFile>,
    /// Run only after a `verifies_caller` function succeeded in the same call.
    /// When the verifier binds arguments, `true` means this function's
    /// arguments of the same names must hold the verified values; a map
    /// (`{ account: from }`) names the argument that carries each one.
    #[serde(default)]
    pub requires_verification: Option<RequiresVerificationFile>,
    /// JSON Schema of the arguments (`type: object`); swagent enforces all of it.
    #[serde(default)]
    pub parameters: Option<Value>,
    /// Run a program directly (argv, never a shell string).
    #[serde(default)]
    pub shell: Option<ShellFile>,
    /// Call an HTTP API.
    #[serde(default)]
    pub http: Option<HttpFile>,
    /// Answer with a fixed reply.
    #[serde(default, rename = "static")]
    pub static_reply: Option<StaticFile>,
    /// How often the function may run; over it, it is not run and the AI hears "too many requests".
    #[serde(default)]
    pub rate_limit: Option<RateLimitFile>,
}

/// A function's rate limits.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    /// Runs per call id, e.g. `5/min`.
    #[serde(default)]
    pub per_call: Option<RateSpec>,
    /// Runs over all calls, e.g. `100/min`.
    #[serde(default)]
    pub global: Option<RateSpec>,
}

/// A `shell` handler.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellFile {
    /// Program and arguments; each element is templated on its own.
    pub command: Vec<String>,
    /// Default 10s.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Variables passed through from swagent's environment (besides PATH).
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Default 64KiB.
    #[serde(default)]
    pub max_output: Option<ByteSize>,
    /// At most this many runs at once (default 16).
    #[serde(default)]
    pub concurrency: Option<u32>,
}

/// HTTP methods an `http` handler may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// An `http` handler.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// Scheme, host and port are literal; path templates are percent-encoded.
    pub url: String,
    /// Default GET.
    #[serde(default)]
    pub method: Option<Method>,
    #[serde(default)]
    pub query: Option<IndexMap<String, String>>,
    #[serde(default)]
    pub headers: Option<IndexMap<String, String>>,
    /// A JSON body; a lone `${...}` keeps its JSON type.
    #[serde(default)]
    pub body: Option<Value>,
    /// A form-encoded body instead of `body`.
    #[serde(default)]
    pub form: Option<IndexMap<String, String>>,
    /// Default 10s.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Retries for GET only, with backoff (default 0).
    #[serde(default)]
    pub retries: Option<u32>,
    /// The reply, templated with `${response.PATH}`.
    #[serde(default)]
    pub output: Option<String>,
    /// A response with one of these keys counts as failed.
    #[serde(default)]
    pub error_keys: Option<Vec<String>>,
    /// Default 1MiB.
    #[serde(default)]
    pub max_response: Option<ByteSize>,
    /// At most this many requests at once (default 64).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// With `verifies_caller`: the response field (`a.b[0]`) that is `true` on a match.
    #[serde(default)]
    pub verified_field: Option<String>,
}

/// A `static` handler.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticFile {
    pub response: String,
    /// SWAIG actions, passed through.
    #[serde(default)]
    pub action: Option<Vec<Value>>,
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

//! The agent file's functions as written: a description, an argument
//! schema, the guards, exactly one handler, and the SWML options the
//! platform reads for the function (fillers, wait file, `active`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::agent::units::{ByteSize, DurationSpec, RateSpec};

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
    /// What the AI says while the function runs, for one language:
    /// `{ en-US: [One moment.] }` (SWML `fillers`).
    #[serde(default)]
    pub fillers: Option<IndexMap<String, Vec<String>>>,
    /// Audio played while the function runs (SWML `wait_file`, a URL).
    #[serde(default)]
    pub wait_file: Option<String>,
    /// How many times `wait_file` plays.
    #[serde(default)]
    pub wait_file_loops: Option<u32>,
    /// Wait for the fillers to finish before answering.
    #[serde(default)]
    pub wait_for_fillers: Option<bool>,
    /// Say no fillers for this function.
    #[serde(default)]
    pub skip_fillers: Option<bool>,
    /// Start active (default true); `false` offers it only once a
    /// `toggle_functions` action turns it on.
    #[serde(default)]
    pub active: Option<bool>,
    /// Data the platform keeps for this function across its calls (SWML `meta_data`).
    #[serde(default)]
    pub meta_data: Option<serde_json::Map<String, Value>>,
    /// The actions the handler's output may carry (default: none). Kinds
    /// that move or bill the call never may: `transfer`, `send_sms`, `SWML`, ...
    #[serde(default)]
    pub actions_from_output: Option<super::OutputActionsFile>,
    /// Actions taken, in order, when the handler succeeds.
    #[serde(default)]
    pub actions: Option<Vec<super::ActionFile>>,
    /// The AI says the response first, then the actions run.
    #[serde(default)]
    pub post_process: Option<bool>,
    /// Named lists of actions; the handler's output picks one with
    /// `{"outcome": NAME, "response": ...}` (without it, `actions` run).
    #[serde(default)]
    pub outcomes: Option<IndexMap<String, Vec<super::ActionFile>>>,
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
    /// The reply: a template with `${response.PATH}`, or a list read out
    /// with `{ foreach: response.PATH, each: TEMPLATE, empty: TEXT }`.
    #[serde(default)]
    pub output: Option<OutputFile>,
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
    /// Sign the request (Standard Webhooks) when `SWAGENT_WEBHOOK_SECRET` is set (default true); `false` for an API that refuses unknown headers.
    #[serde(default)]
    pub sign: Option<bool>,
}

/// An http `output`: one template, or a list read out element by element.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum OutputFile {
    Text(String),
    Foreach(ForeachFile),
}

impl<'de> Deserialize<'de> for OutputFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{value::MapAccessDeserializer, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OutputFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a template, or `{ foreach: response.PATH, each: TEMPLATE, empty: TEXT }`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<OutputFile, E> {
                Ok(OutputFile::Text(s.to_owned()))
            }
            // A plain `output: 42` or `output: true` was read as text before
            // the long form existed, and still is.
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<OutputFile, E> {
                Ok(OutputFile::Text(b.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<OutputFile, E> {
                Ok(OutputFile::Text(n.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<OutputFile, E> {
                Ok(OutputFile::Text(n.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<OutputFile, E> {
                Ok(OutputFile::Text(n.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OutputFile, A::Error> {
                ForeachFile::deserialize(MapAccessDeserializer::new(map)).map(OutputFile::Foreach)
            }
        }
        d.deserialize_any(V)
    }
}

/// `output` with `foreach`: each element of an array in the response,
/// rendered with `each` and joined (SignalWire DataMap's `foreach`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForeachFile {
    /// The array: `response.PATH`, or `response` when the answer is one.
    pub foreach: String,
    /// One element's text: `${item.PATH}`, or `${item}` for the element itself.
    pub each: String,
    /// Plain text between elements (default `", "`).
    #[serde(default)]
    pub join: Option<String>,
    /// At most this many elements, the first ones (default 10, at most 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub max: Option<u64>,
    /// The reply when the path is missing, not an array, or empty.
    pub empty: String,
    /// The reply around the list, which it names as `${list}` (default: the
    /// list alone).
    #[serde(default)]
    pub text: Option<String>,
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

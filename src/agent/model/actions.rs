//! Actions as written: what a function lets its handler's output do
//! (`actions_from_output`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// `actions_from_output`: the action kinds a handler's output may carry,
/// `[say, hangup]`, or by kind with the targets allowed,
/// `{ change_step: [choose, locked], set_global_data: true }`.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum OutputActionsFile {
    Kinds(Vec<String>),
    ByKind(IndexMap<String, TargetsFile>),
}

/// A kind's targets: any (`true`), none (`false`), or these names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TargetsFile {
    Any(bool),
    Only(Vec<String>),
}

impl OutputActionsFile {
    /// Each kind with its targets (`None`: any), in the file's order; a
    /// kind given `false` is left out.
    pub fn kinds(&self) -> Vec<(String, Option<Vec<String>>)> {
        match self {
            OutputActionsFile::Kinds(kinds) => kinds.iter().map(|k| (k.clone(), None)).collect(),
            OutputActionsFile::ByKind(map) => map
                .iter()
                .filter_map(|(k, t)| match t {
                    TargetsFile::Any(true) => Some((k.clone(), None)),
                    TargetsFile::Any(false) => None,
                    TargetsFile::Only(names) => Some((k.clone(), Some(names.clone()))),
                })
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OutputActionsFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OutputActionsFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of action kinds (`[say, hangup]`), or kinds with their targets (`{ change_step: [a, b], say: true }`)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(OutputActionsFile::Kinds)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                IndexMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OutputActionsFile::ByKind)
            }
        }
        d.deserialize_any(V)
    }
}

/// One action a function takes when its handler succeeds: a mapping with
/// one key, the action's name. Rendered as the SDK's `FunctionResult`
/// renders the same thing.
#[derive(Debug, Clone, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionFile {
    /// What the AI says, word for word (templated).
    Say(String),
    /// Hang up: `true`.
    Hangup(bool),
    /// Stop the AI: `true`.
    Stop(bool),
    /// Transfer the call (the SDK's `connect`).
    Transfer(TransferFile),
    /// Send a text message.
    SendSms(SmsFile),
    /// Set keys of the call's `global_data` (values templated).
    SetGlobalData(serde_json::Map<String, serde_json::Value>),
    /// Remove keys of `global_data`: a key, or a list.
    UnsetGlobalData(KeysFile),
    /// Set keys of the function's `meta_data` (values templated).
    SetMetaData(serde_json::Map<String, serde_json::Value>),
    /// Remove keys of `meta_data`.
    UnsetMetaData(KeysFile),
    /// Turn functions on or off: `[{ function, active }]`.
    ToggleFunctions(Vec<ToggleFile>),
    /// Move to a step of the current context.
    ChangeStep(String),
    /// Move to another context.
    ChangeContext(String),
    /// Start recording the call.
    RecordCall(RecordCallFile),
    /// Stop a recording: `true`, or `{ control_id }`.
    StopRecordCall(StopRecordFile),
    /// Play audio behind the conversation: a URL, or `{ file, wait }`.
    PlayBackground(PlayBackgroundFile),
    /// Stop the background audio: `true`.
    StopBackground(bool),
    /// Put the caller on hold: `{ timeout }` in seconds (at most 900).
    Hold(HoldFile),
}

/// `transfer: { to, final }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferFile {
    /// A number (E.164) or `sip:` address, `${env:NAME}`, or `{ by, map }`.
    pub to: DestinationFile,
    /// `false`: the call comes back to the agent when the far end hangs up
    /// (default `true`).
    #[serde(default, rename = "final")]
    pub final_: Option<bool>,
}

/// Where a call or a message goes: from the file, never from the call.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DestinationFile {
    /// A literal, or `${env:NAME}` read when the agent loads.
    Fixed(String),
    /// One of these, picked by an argument whose `enum` is exactly the keys.
    ByArgument(DestinationMapFile),
}

/// `{ by: ARGUMENT, map: { VALUE: DESTINATION } }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationMapFile {
    pub by: String,
    pub map: IndexMap<String, String>,
}

/// `send_sms: { to, from, body, media }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsFile {
    /// `caller` (the number the call came from), or a literal number.
    pub to: String,
    /// A literal number, or `${env:NAME}`.
    pub from: String,
    /// The text (templated).
    #[serde(default)]
    pub body: Option<String>,
    /// Media URLs.
    #[serde(default)]
    pub media: Option<Vec<String>>,
}

/// A key, or a list of keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KeysFile {
    One(String),
    Many(Vec<String>),
}

/// `{ function, active }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToggleFile {
    pub function: String,
    pub active: bool,
}

/// `record_call`'s settings, with the SDK's defaults.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCallFile {
    #[serde(default)]
    pub control_id: Option<String>,
    #[serde(default)]
    pub stereo: Option<bool>,
    /// `wav` (default), `mp3` or `mp4`.
    #[serde(default)]
    pub format: Option<String>,
    /// `both` (default), `speak` or `listen`.
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub terminators: Option<String>,
    #[serde(default)]
    pub beep: Option<bool>,
    #[serde(default)]
    pub input_sensitivity: Option<f64>,
    #[serde(default)]
    pub initial_timeout: Option<f64>,
    #[serde(default)]
    pub end_silence_timeout: Option<f64>,
    #[serde(default)]
    pub max_length: Option<f64>,
    #[serde(default)]
    pub status_url: Option<String>,
}

/// `stop_record_call: true`, or `{ control_id }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StopRecordFile {
    Flag(bool),
    Id { control_id: String },
}

/// `play_background: URL`, or `{ file, wait }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PlayBackgroundFile {
    Url(String),
    Full {
        file: String,
        #[serde(default)]
        wait: Option<bool>,
    },
}

/// `hold: { timeout }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldFile {
    /// Seconds, at most 900 (default 300).
    #[serde(default)]
    pub timeout: Option<u32>,
}

/// The actions' names, as the agent file writes them.
const ACTION_NAMES: &[&str] = &[
    "say",
    "hangup",
    "stop",
    "transfer",
    "send_sms",
    "set_global_data",
    "unset_global_data",
    "set_meta_data",
    "unset_meta_data",
    "toggle_functions",
    "change_step",
    "change_context",
    "record_call",
    "stop_record_call",
    "play_background",
    "stop_background",
    "hold",
];

// By hand: the YAML library reads an enum as a `!tag`, where the file
// writes a mapping of one key (`- say: Hello.`).
impl<'de> Deserialize<'de> for ActionFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ActionFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an action: a mapping of one key, such as `say: Hello.` or `hangup: true`",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ActionFile, A::Error> {
                let Some(name) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "an action is a mapping of one key, such as `say: Hello.`",
                    ));
                };
                let action = match name.as_str() {
                    "say" => ActionFile::Say(map.next_value()?),
                    "hangup" => ActionFile::Hangup(map.next_value()?),
                    "stop" => ActionFile::Stop(map.next_value()?),
                    "transfer" => ActionFile::Transfer(map.next_value()?),
                    "send_sms" => ActionFile::SendSms(map.next_value()?),
                    "set_global_data" => ActionFile::SetGlobalData(map.next_value()?),
                    "unset_global_data" => ActionFile::UnsetGlobalData(map.next_value()?),
                    "set_meta_data" => ActionFile::SetMetaData(map.next_value()?),
                    "unset_meta_data" => ActionFile::UnsetMetaData(map.next_value()?),
                    "toggle_functions" => ActionFile::ToggleFunctions(map.next_value()?),
                    "change_step" => ActionFile::ChangeStep(map.next_value()?),
                    "change_context" => ActionFile::ChangeContext(map.next_value()?),
                    "record_call" => ActionFile::RecordCall(map.next_value()?),
                    "stop_record_call" => ActionFile::StopRecordCall(map.next_value()?),
                    "play_background" => ActionFile::PlayBackground(map.next_value()?),
                    "stop_background" => ActionFile::StopBackground(map.next_value()?),
                    "hold" => ActionFile::Hold(map.next_value()?),
                    other => {
                        let all = ACTION_NAMES.join("`, `");
                        return Err(A::Error::custom(format!(
                            "`{other}` is not an action; the actions are `{all}`"
                        )));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(format!("an action is a mapping of one key; `{name}` has company: give each action its own `- `")));
                }
                Ok(action)
            }
        }
        d.deserialize_map(V)
    }
}

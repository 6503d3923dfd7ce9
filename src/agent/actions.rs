//! Actions: what a function lets its handler's output do. A program's or an
//! upstream's output may carry only the kinds its function lists in
//! `actions_from_output`, to the targets listed there; kinds that move or
//! bill the call never (a caller who steers an upstream must not be able to
//! dial a number of their own).

/// An action kind a handler's output may carry, when its function allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    Say,
    Hangup,
    Stop,
    SetGlobalData,
    UnsetGlobalData,
    SetMetaData,
    UnsetMetaData,
    ToggleFunctions,
    ChangeStep,
    ChangeContext,
    PlayBackground,
    StopBackground,
    Hold,
    /// A `SWML` action of `user_event` verbs only: it neither moves nor
    /// bills the call.
    UserEvent,
}

/// Each kind: its name in the agent file, and its key in a SWAIG action.
const KINDS: [(OutputKind, &str, &str); 14] = [
    (OutputKind::Say, "say", "say"),
    (OutputKind::Hangup, "hangup", "hangup"),
    (OutputKind::Stop, "stop", "stop"),
    (
        OutputKind::SetGlobalData,
        "set_global_data",
        "set_global_data",
    ),
    (
        OutputKind::UnsetGlobalData,
        "unset_global_data",
        "unset_global_data",
    ),
    (OutputKind::SetMetaData, "set_meta_data", "set_meta_data"),
    (
        OutputKind::UnsetMetaData,
        "unset_meta_data",
        "unset_meta_data",
    ),
    (
        OutputKind::ToggleFunctions,
        "toggle_functions",
        "toggle_functions",
    ),
    (OutputKind::ChangeStep, "change_step", "change_step"),
    (
        OutputKind::ChangeContext,
        "change_context",
        "change_context",
    ),
    (OutputKind::PlayBackground, "play_background", "playback_bg"),
    (
        OutputKind::StopBackground,
        "stop_background",
        "stop_playback_bg",
    ),
    (OutputKind::Hold, "hold", "hold"),
    (OutputKind::UserEvent, "user_event", "SWML"),
];

/// Kinds that move or bill the call: never from a handler's output.
pub const NEVER: [&str; 10] = [
    "SWML",
    "transfer",
    "connect",
    "send_sms",
    "sip_refer",
    "join_room",
    "join_conference",
    "pay",
    "tap",
    "record_call",
];

impl OutputKind {
    /// The kind the agent file calls `name`.
    pub fn named(name: &str) -> Option<OutputKind> {
        KINDS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(k, _, _)| *k)
    }

    /// The kind of a SWAIG action key (`SWML` is [`OutputKind::UserEvent`]
    /// only when its verbs say so; the caller checks that).
    pub fn of_key(key: &str) -> Option<OutputKind> {
        KINDS.iter().find(|(_, _, k)| *k == key).map(|(k, _, _)| *k)
    }

    /// The name in the agent file (and in the audit log).
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("", |(_, n, _)| n)
    }

    /// Whether `actions_from_output` may restrict the kind to named targets.
    pub fn has_targets(self) -> bool {
        matches!(
            self,
            OutputKind::ChangeStep | OutputKind::ChangeContext | OutputKind::ToggleFunctions
        )
    }

    /// Its member of the schema's `Action` union; a `user_event`'s verbs
    /// are each a `UserEvent`.
    pub fn definition(self) -> &'static str {
        match self {
            OutputKind::Say => "SayAction",
            OutputKind::Hangup => "HangupAction",
            OutputKind::Stop => "StopAction",
            OutputKind::SetGlobalData => "SetGlobalDataAction",
            OutputKind::UnsetGlobalData => "UnsetGlobalDataAction",
            OutputKind::SetMetaData => "SetMetaDataAction",
            OutputKind::UnsetMetaData => "UnsetMetaDataAction",
            OutputKind::ToggleFunctions => "ToggleFunctionsAction",
            OutputKind::ChangeStep => "ChangeStepAction",
            OutputKind::ChangeContext => "ChangeContextAction",
            OutputKind::PlayBackground => "PlaybackBGAction",
            OutputKind::StopBackground => "StopPlaybackBGAction",
            OutputKind::Hold => "HoldAction",
            OutputKind::UserEvent => "UserEvent",
        }
    }

    /// Every kind's name, for messages.
    pub fn names() -> Vec<&'static str> {
        KINDS.iter().map(|(_, n, _)| *n).collect()
    }
}

/// What a function's output may carry: kinds, each with the targets it may
/// name (`None`: any the file has). Empty: no action at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputActions(pub Vec<(OutputKind, Option<Vec<String>>)>);

impl OutputActions {
    /// The targets `kind` may name (`Some(None)`: any), or `None` when the
    /// kind is not allowed.
    pub fn allows(&self, kind: OutputKind) -> Option<Option<&[String]>> {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, targets)| targets.as_deref())
    }
}

/// An action of the file, validated: names checked, destinations from the
/// file, text and data templated. Rendered per call as the SDK's
/// `FunctionResult` renders it.
#[derive(Debug, Clone)]
pub enum Action {
    Say(crate::template::Template),
    Hangup,
    Stop,
    /// The SDK's `connect(to, final)`.
    Transfer {
        to: Destination,
        final_: bool,
    },
    SendSms {
        to: SmsTo,
        from: Destination,
        body: Option<crate::template::Template>,
        media: Vec<String>,
    },
    SetGlobalData(crate::agent::JsonTemplate),
    UnsetGlobalData(serde_json::Value),
    SetMetaData(crate::agent::JsonTemplate),
    UnsetMetaData(serde_json::Value),
    ToggleFunctions(Vec<(String, bool)>),
    ChangeStep(String),
    ChangeContext(String),
    /// `record_call`'s settings, as the SDK renders them.
    RecordCall(serde_json::Map<String, serde_json::Value>),
    StopRecordCall(Option<String>),
    PlayBackground {
        file: String,
        wait: bool,
    },
    StopBackground,
    /// Seconds, at most 900.
    Hold(u32),
}

/// Where a transfer or a message goes. Never from the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A number (E.164) or a `sip:` address.
    Fixed(String),
    /// `${env:NAME}` was empty or unset at load: the action is off.
    Off { variable: String },
    /// Picked by an argument whose `enum` is exactly the keys.
    ByArgument {
        argument: String,
        map: Vec<(String, Destination)>,
    },
}

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsTo {
    /// The number the call came from (`caller_id_num`), when it is one.
    Caller,
    Fixed(String),
}

/// Whether `text` is a destination the platform can dial: an E.164 number
/// or a `sip:`/`sips:` address with a user and a host.
pub fn is_destination(text: &str) -> bool {
    is_e164(text)
        || ["sip:", "sips:"].iter().any(|scheme| {
            text.strip_prefix(scheme).is_some_and(|rest| {
                let (user, host) = rest.split_once('@').unwrap_or(("", ""));
                !user.is_empty()
                    && !host.is_empty()
                    && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
            })
        })
}

/// `+` and 2 to 15 digits, the first not 0.
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

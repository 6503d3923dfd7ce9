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

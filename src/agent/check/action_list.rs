//! The checks of a function's `actions`: text and data as templates of what
//! the handler can produce, destinations from the file only (a literal,
//! `${env:NAME}` read now, or a `map` picked by an argument whose `enum` is
//! exactly its keys), and each action's settings in the platform's ranges.
//! The names actions move to or toggle are checked once the whole file is
//! ([`Checker::action_targets`]).

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::template::Slot;
use super::Checker;
use crate::agent::actions::{is_destination, is_e164, Action, Destination, SmsTo};
use crate::agent::model::actions::{RecordCallFile, SmsFile};
use crate::agent::model::{
    ActionFile, DestinationFile, KeysFile, PlayBackgroundFile, StopRecordFile,
};

/// Why a destination is never taken from the call.
const FROM_THE_FILE: &str = "a destination is a literal number or `sip:` address, `${env:NAME}`, or a `map` picked by an argument with an `enum`: never a template, since a caller who steers it could dial any number (toll fraud)";

impl Checker<'_> {
    /// A function's `actions`, each checked; `http`/`shell` say which
    /// handler's JSON the templates may name.
    pub(super) fn actions(
        &mut self,
        function: &str,
        raw: Vec<ActionFile>,
        declared: &Map<String, Value>,
        slot: Slot,
    ) -> Vec<Action> {
        self.action_list(
            function,
            &["functions", function, "actions"],
            raw,
            declared,
            slot,
        )
    }

    /// A function's `outcomes`: names, each with its actions checked.
    pub(super) fn outcomes(
        &mut self,
        function: &str,
        raw: IndexMap<String, Vec<ActionFile>>,
        declared: &Map<String, Value>,
        slot: Slot,
    ) -> IndexMap<String, Vec<Action>> {
        let mut out = IndexMap::new();
        for (name, actions) in raw {
            if !crate::template::is_name(&name) {
                let pos = self.spans.key(&["functions", function, "outcomes", &name]);
                self.error(pos, format!("function `{function}`: an outcome's name must match `^[a-zA-Z_][a-zA-Z0-9_]*$`"));
                continue;
            }
            let at = ["functions", function, "outcomes", name.as_str()];
            let actions = self.action_list(function, &at, actions, declared, slot);
            out.insert(name, actions);
        }
        out
    }

    /// The actions of a list at `at` (`actions`, or an outcome).
    fn action_list(
        &mut self,
        function: &str,
        at: &[&str],
        raw: Vec<ActionFile>,
        declared: &Map<String, Value>,
        slot: Slot,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        for (i, action) in raw.into_iter().enumerate() {
            let index = i.to_string();
            let here = [at, &[index.as_str()]].concat();
            if let Some(action) = self.action(function, &here, action, declared, slot) {
                out.push(action);
            }
        }
        out
    }

    fn action(
        &mut self,
        function: &str,
        at: &[&str],
        raw: ActionFile,
        declared: &Map<String, Value>,
        slot: Slot,
    ) -> Option<Action> {
        let key = |k: &str| -> Vec<String> {
            at.iter()
                .map(|s| s.to_string())
                .chain([k.to_owned()])
                .collect()
        };
        Some(match raw {
            ActionFile::Say(text) => {
                let path = [at, &["say"]].concat();
                Action::Say(self.template(function, &text, &path, slot, declared)?)
            }
            ActionFile::Hangup(on) => self.on(function, at, "hangup", on, Action::Hangup)?,
            ActionFile::Stop(on) => self.on(function, at, "stop", on, Action::Stop)?,
            ActionFile::StopBackground(on) => {
                self.on(function, at, "stop_background", on, Action::StopBackground)?
            }
            ActionFile::Transfer(t) => {
                let path = [at, &["transfer", "to"]].concat();
                Action::Transfer {
                    to: self.destination(function, &path, t.to, declared, false)?,
                    final_: t.final_.unwrap_or(true),
                }
            }
            ActionFile::SendSms(sms) => self.sms(function, at, sms, declared, slot)?,
            ActionFile::SetGlobalData(data) => {
                self.no_grant_keys(function, at, &data);
                let data = Value::Object(data);
                let t = self.json_template_in(
                    function,
                    &data,
                    &mut key("set_global_data"),
                    declared,
                    slot,
                )?;
                Action::SetGlobalData(t)
            }
            ActionFile::SetMetaData(data) => {
                let data = Value::Object(data);
                let t = self.json_template_in(
                    function,
                    &data,
                    &mut key("set_meta_data"),
                    declared,
                    slot,
                )?;
                Action::SetMetaData(t)
            }
            ActionFile::UnsetGlobalData(keys) => Action::UnsetGlobalData(keys_value(keys)),
            ActionFile::UnsetMetaData(keys) => Action::UnsetMetaData(keys_value(keys)),
            ActionFile::RecordCall(r) => Action::RecordCall(self.record_call(function, at, r)?),
            ActionFile::StopRecordCall(StopRecordFile::Id { control_id }) => {
                Action::StopRecordCall(Some(control_id))
            }
            ActionFile::StopRecordCall(StopRecordFile::Flag(on)) => self.on(
                function,
                at,
                "stop_record_call",
                on,
                Action::StopRecordCall(None),
            )?,
            other => self.named_or_timed(function, at, other)?,
        })
    }

    /// The actions that name the file's functions, steps or contexts, and
    /// the ones with a URL or a time.
    fn named_or_timed(&mut self, function: &str, at: &[&str], raw: ActionFile) -> Option<Action> {
        Some(match raw {
            ActionFile::ToggleFunctions(list) => {
                for (i, t) in list.iter().enumerate() {
                    let index = i.to_string();
                    let path = [at, &["toggle_functions", index.as_str(), "function"]].concat();
                    let known = self.names.functions.contains(&t.function);
                    self.known(function, &path, &t.function, known, "function")?;
                }
                Action::ToggleFunctions(list.into_iter().map(|t| (t.function, t.active)).collect())
            }
            ActionFile::ChangeStep(name) => {
                let known = self.names.steps.contains(&name);
                self.known(
                    function,
                    &[at, &["change_step"]].concat(),
                    &name,
                    known,
                    "step",
                )?;
                Action::ChangeStep(name)
            }
            ActionFile::ChangeContext(name) => {
                let known = self.names.contexts.contains(&name);
                let path = [at, &["change_context"]].concat();
                self.known(function, &path, &name, known, "context")?;
                Action::ChangeContext(name)
            }
            ActionFile::PlayBackground(p) => {
                let (file, wait) = match p {
                    PlayBackgroundFile::Url(file) => (file, false),
                    PlayBackgroundFile::Full { file, wait } => (file, wait.unwrap_or(false)),
                };
                self.url(function, &[at, &["play_background"]].concat(), &file)?;
                Action::PlayBackground { file, wait }
            }
            ActionFile::Hold(h) => {
                let timeout = h.timeout.unwrap_or(300);
                if timeout > 900 {
                    let pos = self.spans.value(&[at, &["hold", "timeout"]].concat());
                    let msg =
                        format!("function `{function}`: `hold.timeout` is at most 900 seconds");
                    self.error(pos, msg);
                    return None;
                }
                Action::Hold(timeout)
            }
            _ => unreachable!("the other actions are checked in `action`"),
        })
    }

    /// `name` names a `what` of this file.
    fn known(
        &mut self,
        function: &str,
        at: &[&str],
        name: &str,
        known: bool,
        what: &str,
    ) -> Option<()> {
        if !known {
            let pos = self.spans.value(at);
            self.error(
                pos,
                format!("function `{function}`: `{name}` is not a {what} of this agent"),
            );
        }
        known.then_some(())
    }

    /// A flag action (`hangup: true`): `false` means nothing, and is refused.
    fn on(
        &mut self,
        function: &str,
        at: &[&str],
        name: &str,
        on: bool,
        action: Action,
    ) -> Option<Action> {
        if !on {
            let pos = self.spans.value(&[at, &[name]].concat());
            self.error(
                pos,
                format!(
                    "function `{function}`: `{name}: false` does nothing; leave the action out"
                ),
            );
            return None;
        }
        Some(action)
    }

    /// A destination from the file; `sms` when it must be a number.
    fn destination(
        &mut self,
        function: &str,
        at: &[&str],
        raw: DestinationFile,
        declared: &Map<String, Value>,
        sms: bool,
    ) -> Option<Destination> {
        match raw {
            DestinationFile::Fixed(text) => self.fixed_destination(function, at, &text, sms),
            DestinationFile::ByArgument(m) => {
                let argument_enum = declared
                    .get(&m.by)
                    .and_then(|p| p.get("enum"))
                    .and_then(Value::as_array)
                    .map(|e| {
                        e.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    });
                let mut keys: Vec<&String> = m.map.keys().collect();
                keys.sort();
                let same = argument_enum.as_ref().is_some_and(|e| {
                    let mut e: Vec<&String> = e.iter().collect();
                    e.sort();
                    e == keys
                });
                if !same {
                    let pos = self.spans.value(&[at, &["by"]].concat());
                    self.error(pos, format!("function `{function}`: `map` is picked by `{}`, which must be a declared argument whose `enum` is exactly the map's keys ({}); {FROM_THE_FILE}", m.by, keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")));
                    return None;
                }
                let mut map = Vec::new();
                for (k, v) in &m.map {
                    let path = [at, &["map", k.as_str()]].concat();
                    map.push((k.clone(), self.fixed_destination(function, &path, v, sms)?));
                }
                Some(Destination::ByArgument {
                    argument: m.by,
                    map,
                })
            }
        }
    }

    /// A literal destination, or `${env:NAME}` read now: empty or unset
    /// turns the action off (a warning), never into a template.
    fn fixed_destination(
        &mut self,
        function: &str,
        at: &[&str],
        text: &str,
        sms: bool,
    ) -> Option<Destination> {
        let pos = self.spans.value(at);
        let variable = text
            .strip_prefix("${env:")
            .and_then(|v| v.strip_suffix('}'));
        let value = match variable {
            Some(name) if crate::config::env::is_own_variable(name) => {
                self.error(
                    pos,
                    format!("function `{function}`: `${{env:{name}}}` is swagent's own setting"),
                );
                return None;
            }
            Some(name) => match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
                Some(value) => value,
                None => {
                    self.warn(pos, format!("function `{function}`: `${{env:{name}}}` is empty or unset, so this action is off: a call that reaches it hears that it is unavailable"));
                    return Some(Destination::Off {
                        variable: name.to_owned(),
                    });
                }
            },
            None if text.contains("${") => {
                self.error(pos, format!("function `{function}`: {FROM_THE_FILE}"));
                return None;
            }
            None => text.to_owned(),
        };
        let ok = if sms {
            is_e164(&value)
        } else {
            is_destination(&value)
        };
        if !ok {
            let want = if sms {
                "an E.164 number such as `+15551230001`"
            } else {
                "an E.164 number such as `+15551230001`, or a `sip:user@host` address"
            };
            self.error(
                pos,
                format!("function `{function}`: the destination must be {want}"),
            );
            return None;
        }
        Some(Destination::Fixed(value))
    }

    fn sms(
        &mut self,
        function: &str,
        at: &[&str],
        sms: SmsFile,
        declared: &Map<String, Value>,
        slot: Slot,
    ) -> Option<Action> {
        let here = |k: &'static str| -> Vec<&str> { [at, &["send_sms", k]].concat() };
        let to = match sms.to.as_str() {
            "caller" => SmsTo::Caller,
            number if is_e164(number) => SmsTo::Fixed(number.to_owned()),
            _ => {
                let pos = self.spans.value(&here("to"));
                self.error(pos, format!("function `{function}`: `send_sms.to` is `caller` or an E.164 number such as `+15551230001`; never a template"));
                return None;
            }
        };
        let from = self.destination(
            function,
            &here("from"),
            DestinationFile::Fixed(sms.from),
            declared,
            true,
        )?;
        let body = match sms.body {
            Some(text) => Some(self.template(function, &text, &here("body"), slot, declared)?),
            None => None,
        };
        let media = sms.media.unwrap_or_default();
        for (i, url) in media.iter().enumerate() {
            self.url(
                function,
                &[at, &["send_sms", "media", &i.to_string()]].concat(),
                url,
            )?;
        }
        if body.is_none() && media.is_empty() {
            let pos = self.spans.key(&[at, &["send_sms"]].concat());
            self.error(
                pos,
                format!("function `{function}`: `send_sms` needs a `body` or `media`"),
            );
            return None;
        }
        Some(Action::SendSms {
            to,
            from,
            body,
            media,
        })
    }

    /// `record_call`'s settings, with the SDK's defaults filled in as it does.
    fn record_call(
        &mut self,
        function: &str,
        at: &[&str],
        r: RecordCallFile,
    ) -> Option<Map<String, Value>> {
        let format = r.format.unwrap_or_else(|| "wav".into());
        let direction = r.direction.unwrap_or_else(|| "both".into());
        for (name, value, allowed) in [
            ("format", &format, &["wav", "mp3", "mp4"][..]),
            ("direction", &direction, &["speak", "listen", "both"][..]),
        ] {
            if !allowed.contains(&value.as_str()) {
                let pos = self.spans.value(&[at, &["record_call", name]].concat());
                self.error(
                    pos,
                    format!(
                        "function `{function}`: `record_call.{name}` is one of {}",
                        allowed.join(", ")
                    ),
                );
                return None;
            }
        }
        let mut m = Map::new();
        m.insert("stereo".into(), Value::from(r.stereo.unwrap_or(false)));
        m.insert("format".into(), Value::from(format));
        m.insert("direction".into(), Value::from(direction));
        m.insert("beep".into(), Value::from(r.beep.unwrap_or(false)));
        m.insert(
            "input_sensitivity".into(),
            Value::from(r.input_sensitivity.unwrap_or(44.0)),
        );
        let optional = [
            ("control_id", r.control_id.map(Value::from)),
            ("terminators", r.terminators.map(Value::from)),
            ("initial_timeout", r.initial_timeout.map(Value::from)),
            (
                "end_silence_timeout",
                r.end_silence_timeout.map(Value::from),
            ),
            ("max_length", r.max_length.map(Value::from)),
            ("status_url", r.status_url.map(Value::from)),
        ];
        m.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?))),
        );
        Some(m)
    }

    /// An http(s) URL.
    fn url(&mut self, function: &str, at: &[&str], url: &str) -> Option<()> {
        let ok = reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            let pos = self.spans.value(at);
            self.error(
                pos,
                format!("function `{function}`: `{url}` is not an http(s) URL"),
            );
        }
        ok.then_some(())
    }

    /// Keys of swagent's verification grants are never set by the file.
    fn no_grant_keys(&mut self, function: &str, at: &[&str], data: &Map<String, Value>) {
        for key in data
            .keys()
            .filter(|k| k.starts_with(crate::guard::GRANT_KEY))
        {
            let pos = self
                .spans
                .key(&[at, &["set_global_data", key.as_str()]].concat());
            self.error(pos, format!("function `{function}`: `{key}`: keys starting with `{}` hold swagent's verification grants, which only a verifier gives", crate::guard::GRANT_KEY));
        }
    }
}

/// `unset_*_data`'s keys as the SDK sends them: a key, or the list.
fn keys_value(keys: KeysFile) -> Value {
    match keys {
        KeysFile::One(key) => Value::from(key),
        KeysFile::Many(keys) => Value::from(keys),
    }
}

//! The checks of the verbs around the `ai` verb: `answer`, `record_call`,
//! and the verbs of `before_ai` and `after_ai`, each against its definition
//! in the official schema, so what the file puts there the platform takes.

use serde_json::Value;

use super::Checker;
use crate::agent::ai::Around;
use crate::agent::model::AgentFile;
use crate::swml::schema;

/// Verbs that cannot sit around the AI: a second AI, or an `answer` that
/// swagent already places first.
const NOT_AROUND: [&str; 4] = ["ai", "amazon_bedrock", "ai_sidecar", "answer"];

/// Verbs that run an AI: in verbs a call gets instead of the document, one
/// would run without swagent's functions and guards.
pub(super) const AI_VERBS: [&str; 3] = ["ai", "amazon_bedrock", "ai_sidecar"];

/// A verb of `refused` nested in another verb (a `cond`'s `then`).
fn nested(value: &Value, refused: &[&'static str]) -> Option<&'static str> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let own = refused.iter().find(|n| **n == k.as_str() && v.is_object());
            own.copied().or_else(|| nested(v, refused))
        }),
        Value::Array(items) => items.iter().find_map(|v| nested(v, refused)),
        _ => None,
    }
}

impl Checker<'_> {
    /// `answer`, `record_call`, `before_ai` and `after_ai`.
    pub(super) fn around(&mut self, raw: &mut AgentFile) -> Around {
        let max_duration = raw.answer.take().and_then(|a| a.max_duration);
        if max_duration == Some(0) {
            let pos = self.spans.value(&["answer", "max_duration"]);
            self.error(pos, "`answer.max_duration` must be at least 1 second");
        }
        let record_call = raw.record_call.take().filter(|r| {
            let verb = serde_json::json!({ "record_call": r });
            self.conforms(&[], &verb, "RecordCall")
        });
        Around {
            max_duration: max_duration.filter(|d| *d > 0),
            record_call,
            before: self.verbs(
                &["before_ai"],
                raw.before_ai.take().unwrap_or_default(),
                &NOT_AROUND,
            ),
            after: self.verbs(
                &["after_ai"],
                raw.after_ai.take().unwrap_or_default(),
                &NOT_AROUND,
            ),
        }
    }

    /// Each one verb (`{ play: {...} }`) the schema knows, meeting its definition.
    /// `refused`: verbs that may not be among them, even nested: around the
    /// `ai` verb swagent renders, no `answer` or second AI.
    pub(super) fn verbs(
        &mut self,
        at: &[&str],
        raw: Vec<Value>,
        refused: &[&'static str],
    ) -> Vec<Value> {
        let why = match refused.contains(&"answer") {
            true => "swagent renders the `answer` and the one `ai` verb itself",
            false => "an AI there would run without swagent's functions and guards",
        };
        let key = at.join(".");
        let mut out = Vec::new();
        for (i, verb) in raw.into_iter().enumerate() {
            let index = i.to_string();
            let here = [at, &[index.as_str()]].concat();
            let name = match verb.as_object() {
                Some(m) if m.len() == 1 => m.keys().next().cloned().unwrap_or_default(),
                _ => {
                    let pos = self.spans.value(&here);
                    self.error(
                        pos,
                        format!(
                            "`{key}` holds SWML verbs, each one key: `{{ play: {{ url: ... }} }}`"
                        ),
                    );
                    continue;
                }
            };
            if refused.contains(&name.as_str()) {
                let pos = self
                    .spans
                    .key(&[here.as_slice(), &[name.as_str()]].concat());
                self.error(pos, format!("`{name}` cannot be placed in `{key}`: {why}"));
                continue;
            }
            let Some((_, definition)) = schema::verbs().iter().find(|(v, _)| *v == name) else {
                let pos = self
                    .spans
                    .key(&[here.as_slice(), &[name.as_str()]].concat());
                self.error(pos, format!("`{name}` is not a SWML verb the schema knows"));
                continue;
            };
            if let Some(inner) = nested(&verb[&name], refused) {
                let pos = self
                    .spans
                    .key(&[here.as_slice(), &[name.as_str()]].concat());
                self.error(pos, format!("`{name}` holds an `{inner}` verb: {why}"));
                continue;
            }
            if at == ["before_ai"] && name == "hangup" {
                let pos = self
                    .spans
                    .key(&[here.as_slice(), &[name.as_str()]].concat());
                self.warn(
                    pos,
                    "`hangup` before the AI: the call ends before the agent says a word",
                );
            }
            if self.conforms(&here, &verb, definition) {
                out.push(verb);
            }
        }
        out
    }
}

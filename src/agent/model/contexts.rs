//! Contexts and steps as written, with the names SWML and the SDK's
//! `ContextBuilder` use: a context holds steps, each with its own
//! instructions, functions, criteria for moving on, and where it may go.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// One context: a prompt of its own, entry settings, and its steps in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextFile {
    /// The context's prompt as text (SWML `prompt`).
    #[serde(default)]
    pub text: Option<String>,
    /// The context's prompt as POM sections (SWML `pom`).
    #[serde(default)]
    pub sections: Option<Vec<StepSection>>,
    /// The system prompt that replaces the agent's on entry.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// A user message added on entry.
    #[serde(default)]
    pub user_prompt: Option<String>,
    /// The post prompt while this context is active.
    #[serde(default)]
    pub post_prompt: Option<String>,
    /// Summarize the conversation so far on entry.
    #[serde(default)]
    pub consolidate: Option<bool>,
    /// Replace the whole system prompt on entry, not only the step's part.
    #[serde(default)]
    pub full_reset: Option<bool>,
    /// Clear the conversation on entry.
    #[serde(default)]
    pub isolated: Option<bool>,
    /// What the model still sees of earlier steps, for this context's steps.
    #[serde(default)]
    pub history: Option<History>,
    /// The step to start in (default: the first).
    #[serde(default)]
    pub initial_step: Option<String>,
    /// Contexts reachable from every step of this one.
    #[serde(default)]
    pub valid_contexts: Option<Vec<String>>,
    /// Steps reachable from every step of this one.
    #[serde(default)]
    pub valid_steps: Option<Vec<String>>,
    /// What the AI says on entering, per language: `{ en-US: [...] }`.
    #[serde(default)]
    pub enter_fillers: Option<IndexMap<String, Vec<String>>>,
    /// What the AI says on leaving, per language.
    #[serde(default)]
    pub exit_fillers: Option<IndexMap<String, Vec<String>>>,
    /// The steps, in order.
    pub steps: Vec<StepFile>,
}

/// One step of a context.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// Unique in its context; not `next`.
    pub name: String,
    /// The step's instructions.
    #[serde(default)]
    pub text: Option<String>,
    /// The step's instructions as sections (rendered as markdown, as the SDK does).
    #[serde(default)]
    pub sections: Option<Vec<StepSection>>,
    /// When the step is done.
    #[serde(default)]
    pub step_criteria: Option<String>,
    /// The functions callable in this step, or `none`. Unset: those of the
    /// step before stay callable.
    #[serde(default)]
    pub functions: Option<StepFunctions>,
    /// Steps this one may move to (`next`: the following one).
    #[serde(default)]
    pub valid_steps: Option<Vec<String>>,
    /// Contexts this step may move to.
    #[serde(default)]
    pub valid_contexts: Option<Vec<String>>,
    /// Do not wait for the caller before this step's first answer.
    #[serde(default)]
    pub skip_user_turn: Option<bool>,
    /// Step mode ends after this step: no more step instructions or
    /// `next_step`. The call goes on (a hangup is another matter).
    #[serde(default)]
    pub end: Option<bool>,
    /// Move on to the next step as soon as this one is done.
    #[serde(default)]
    pub skip_to_next_step: Option<bool>,
    /// What the model still sees of earlier steps on entering this one.
    #[serde(default)]
    pub history: Option<History>,
    /// The prompts used when this step moves to another context.
    #[serde(default)]
    pub reset: Option<ResetFile>,
    /// Questions the platform asks one at a time, answers kept in `global_data`.
    #[serde(default)]
    pub gather_info: Option<GatherInfoFile>,
}

/// A section of a step's or context's instructions: a title, and a body
/// or bullets.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSection {
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub bullets: Option<Vec<String>>,
}

/// `keep`: every earlier step stays visible; `default`: earlier
/// instructions are hidden, the dialogue stays; `hide`: both are hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum History {
    Keep,
    Default,
    Hide,
}

impl History {
    /// The word SWML uses.
    pub fn as_str(self) -> &'static str {
        match self {
            History::Keep => "keep",
            History::Default => "default",
            History::Hide => "hide",
        }
    }
}

/// A step's `reset`: the prompts used when it moves to another context.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetFile {
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub user_prompt: Option<String>,
    #[serde(default)]
    pub consolidate: Option<bool>,
    #[serde(default)]
    pub full_reset: Option<bool>,
}

/// A step's `gather_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatherInfoFile {
    /// Asked in order, at least one.
    pub questions: Vec<QuestionFile>,
    /// Where in `global_data` the answers go (default: at its top).
    #[serde(default)]
    pub output_key: Option<String>,
    /// Once every answer is in: `next_step`, or a step of this context.
    #[serde(default)]
    pub completion_action: Option<String>,
    /// Instructions for the gathering.
    #[serde(default)]
    pub prompt: Option<String>,
}

/// One question of `gather_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionFile {
    /// The `global_data` key of the answer; unique in the step.
    pub key: String,
    pub question: String,
    /// The answer's type (default `string`).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Read the answer back for a yes before going on.
    #[serde(default)]
    pub confirm: Option<bool>,
    /// Extra instructions for this question.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Functions callable while this question is asked.
    #[serde(default)]
    pub functions: Option<Vec<String>>,
}

/// A step's `functions`: a list of names, or `none`.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum StepFunctions {
    List(Vec<String>),
    #[schemars(with = "NoneWord")]
    Off,
}

/// The word `none`, for the JSON Schema.
#[derive(JsonSchema)]
#[allow(dead_code)]
enum NoneWord {
    #[serde(rename = "none")]
    Off,
}

impl<'de> Deserialize<'de> for StepFunctions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StepFunctions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of function names, or `none`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StepFunctions, E> {
                match s {
                    "none" => Ok(StepFunctions::Off),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<StepFunctions, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(StepFunctions::List)
            }
        }
        d.deserialize_any(V)
    }
}

//! The `ai` verb's settings, validated: what the platform takes and nothing
//! it refuses. A value here was checked when the agent loaded (ranges, the
//! official schema's types, names), so rendering never strips or fixes
//! anything. The conversation's contexts and steps are [`super::contexts`].

use indexmap::IndexMap;
use serde_json::{Map, Value};

/// The model's settings for the prompt or the post prompt; each in the
/// platform's range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Llm {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub confidence: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub max_tokens: Option<u16>,
}

impl Llm {
    /// The settings as SWML keys, in a fixed order.
    pub fn entries(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        let floats = [
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("confidence", self.confidence),
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ];
        for (k, v) in floats {
            if let Some(v) = v {
                out.push((k, Value::from(v)));
            }
        }
        if let Some(n) = self.max_tokens {
            out.push(("max_tokens", Value::from(n)));
        }
        out
    }
}

/// A prompt: the system prompt, or the post prompt.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub body: PromptBody,
    pub llm: Llm,
}

/// The prompt's text, or its POM sections (at least one).
#[derive(Debug, Clone)]
pub enum PromptBody {
    Text(String),
    Pom(Vec<Section>),
}

/// A POM section the platform takes: a title that is not empty (if any),
/// a body or bullets, and subsections (none means none are sent).
#[derive(Debug, Clone)]
pub struct Section {
    pub title: Option<String>,
    pub content: Content,
    pub numbered: Option<bool>,
    pub numbered_bullets: Option<bool>,
    pub subsections: Vec<Section>,
}

/// What a section says: a body, bullets (at least one), or both.
#[derive(Debug, Clone)]
pub enum Content {
    Body(String),
    Bullets(Vec<String>),
    Both(String, Vec<String>),
}

impl Content {
    pub fn body(&self) -> Option<&str> {
        match self {
            Content::Body(b) | Content::Both(b, _) => Some(b),
            Content::Bullets(_) => None,
        }
    }

    pub fn bullets(&self) -> Option<&[String]> {
        match self {
            Content::Bullets(b) | Content::Both(_, b) => Some(b),
            Content::Body(_) => None,
        }
    }
}

/// A language the agent speaks; the voice is required.
#[derive(Debug, Clone)]
pub struct Language {
    pub name: String,
    pub code: String,
    /// With any `${env:NAME}` read when the agent loaded.
    pub voice: String,
    pub engine: Option<String>,
    pub model: Option<String>,
    /// `emotion: auto`.
    pub emotion_auto: bool,
    /// `speed: auto`.
    pub speed_auto: bool,
    pub stability: Option<f64>,
    pub similarity: Option<f64>,
    pub speech_fillers: Vec<String>,
    pub function_fillers: Vec<String>,
}

/// A hint for speech recognition.
#[derive(Debug, Clone)]
pub enum Hint {
    Word(String),
    Pattern {
        hint: String,
        pattern: String,
        replace: String,
        ignore_case: Option<bool>,
    },
}

/// How the AI says a word.
#[derive(Debug, Clone)]
pub struct Pronounce {
    pub replace: String,
    pub with: String,
    pub ignore_case: Option<bool>,
}

/// Filler lines per language, each a code the platform knows, each with
/// at least one line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fillers(pub Vec<(String, Vec<String>)>);

impl Fillers {
    /// As one object, language → lines: a function's `fillers` (which
    /// holds one language).
    pub fn to_object(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(code, lines)| (code.clone(), Value::from(lines.clone())))
                .collect(),
        )
    }

    /// As a list of `FunctionFillers`, one object per language: a
    /// context's `enter_fillers` and `exit_fillers`.
    pub fn to_swml(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(code, lines)| {
                    let mut m = Map::new();
                    m.insert(code.clone(), Value::from(lines.clone()));
                    Value::Object(m)
                })
                .collect(),
        )
    }
}

/// Functions of another SWAIG server.
#[derive(Debug, Clone)]
pub struct Include {
    /// With any `${env:NAME}` read when the agent loaded.
    pub url: String,
    pub functions: Vec<String>,
    pub meta_data: Option<Map<String, Value>>,
}

/// The call-level settings of the `ai` verb.
#[derive(Debug, Clone, Default)]
pub struct Ai {
    /// Each key the official schema knows was checked against it.
    pub params: IndexMap<String, Value>,
    pub languages: Vec<Language>,
    /// Checked against the official schema.
    pub multilingual: Option<Value>,
    pub hints: Vec<Hint>,
    pub pronounce: Vec<Pronounce>,
    pub global_data: Option<Map<String, Value>>,
    pub native_functions: Vec<String>,
    pub includes: Vec<Include>,
    /// Checked against the official schema.
    pub internal_fillers: Option<Map<String, Value>>,
}

/// The verbs around the `ai` verb, each checked against the official schema.
#[derive(Debug, Clone, Default)]
pub struct Around {
    /// `answer.max_duration`, seconds.
    pub max_duration: Option<u32>,
    pub record_call: Option<Map<String, Value>>,
    pub before: Vec<Value>,
    pub after: Vec<Value>,
}

/// A function's SWML options.
#[derive(Debug, Clone, Default)]
pub struct FunctionOptions {
    /// One language's fillers.
    pub fillers: Option<Fillers>,
    pub wait_file: Option<String>,
    pub wait_file_loops: Option<u32>,
    pub wait_for_fillers: Option<bool>,
    pub skip_fillers: Option<bool>,
    pub active: Option<bool>,
    pub meta_data: Option<Map<String, Value>>,
}

//! The checks of the `ai` verb's settings: the prompt and post prompt with
//! their model settings, POM sections the platform takes, languages with a
//! voice, hints, pronunciations, `global_data`, and what the official schema
//! says of `params`, `multilingual` and the platform's own functions.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::Checker;
use crate::agent::ai::{
    Ai, Content, Fillers, Hint, Include, Language, Llm, Prompt, PromptBody, Pronounce, Section,
};
use crate::agent::model::{
    HintFile, IncludeFile, LanguageFile, PostPromptFile, PromptFile, PronounceFile,
    Section as SectionFile,
};
use crate::swml::schema;
use crate::template::{Template, Var};

/// The ranges the official schema gives the model's settings.
const LLM_RANGES: [(&str, f64, f64); 5] = [
    ("temperature", 0.0, 1.5),
    ("top_p", 0.0, 1.0),
    ("confidence", 0.0, 1.0),
    ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
];

impl Checker<'_> {
    /// The call-level settings of the `ai` verb.
    pub(super) fn ai(&mut self, raw: &mut crate::agent::model::AgentFile) -> Ai {
        Ai {
            params: self.params(raw.params.take().unwrap_or_default()),
            languages: self.languages(raw.languages.take().unwrap_or_default()),
            multilingual: raw.multilingual.take().filter(|m| {
                self.conforms(
                    &["multilingual"],
                    m,
                    "#/$defs/AIObject/properties/multilingual",
                )
            }),
            hints: self.hints(raw.hints.take().unwrap_or_default()),
            pronounce: self.pronounce(raw.pronounce.take().unwrap_or_default()),
            global_data: raw.global_data.take().map(|g| self.global_data(g)),
            native_functions: self
                .native_functions(raw.native_functions.take().unwrap_or_default()),
            includes: self.includes(raw.includes.take().unwrap_or_default()),
            internal_fillers: raw.internal_fillers.take().filter(|f| {
                self.conforms(
                    &["internal_fillers"],
                    &Value::Object(f.clone()),
                    "SWAIGInternalFiller",
                )
            }),
        }
    }

    /// A prompt at `key` (`prompt`, `post_prompt`): text or sections, and
    /// the model's settings.
    pub(super) fn prompt(&mut self, key: &str, raw: PromptFile) -> Prompt {
        let llm = self.llm(&[key], &raw);
        let body = match (raw.text, raw.sections) {
            (Some(text), None) => PromptBody::Text(text),
            (None, Some(sections)) if !sections.is_empty() => {
                PromptBody::Pom(self.sections(&[key, "sections"], sections))
            }
            (Some(_), Some(_)) => {
                let pos = self.spans.key(&[key]);
                self.error(
                    pos,
                    format!("`{key}` has both `text` and `sections`: use one of them"),
                );
                PromptBody::Text(String::new())
            }
            _ => {
                let pos = self.spans.key(&[key]);
                self.error(
                    pos,
                    format!("`{key}` needs `text` or a non-empty `sections`"),
                );
                PromptBody::Text(String::new())
            }
        };
        Prompt { body, llm }
    }

    pub(super) fn post_prompt(&mut self, raw: Option<PostPromptFile>) -> Option<Prompt> {
        Some(match raw? {
            PostPromptFile::Text(text) => Prompt {
                body: PromptBody::Text(text),
                llm: Llm::default(),
            },
            PostPromptFile::Full(p) => self.prompt("post_prompt", p),
        })
    }

    /// The model's settings, each in the official schema's range.
    fn llm(&mut self, at: &[&str], raw: &PromptFile) -> Llm {
        let values = [
            raw.temperature,
            raw.top_p,
            raw.confidence,
            raw.presence_penalty,
            raw.frequency_penalty,
        ];
        let mut kept = [None; 5];
        for (i, ((name, lo, hi), value)) in LLM_RANGES.into_iter().zip(values).enumerate() {
            let Some(v) = value else { continue };
            if (lo..=hi).contains(&v) {
                kept[i] = Some(v);
            } else {
                let pos = self.spans.value(&[at, &[name]].concat());
                let prefix = at.join(".");
                self.error(
                    pos,
                    format!("`{prefix}.{name}` must be from {lo} to {hi}, not {v}"),
                );
            }
        }
        let max_tokens = raw.max_tokens.and_then(|n| match u16::try_from(n) {
            Ok(n) if n <= 4096 => Some(n),
            _ => {
                let pos = self.spans.value(&[at, &["max_tokens"]].concat());
                let prefix = at.join(".");
                self.error(
                    pos,
                    format!("`{prefix}.max_tokens` must be from 0 to 4096, not {n}"),
                );
                None
            }
        });
        let [temperature, top_p, confidence, presence_penalty, frequency_penalty] = kept;
        Llm {
            temperature,
            top_p,
            confidence,
            presence_penalty,
            frequency_penalty,
            max_tokens,
        }
    }

    /// POM sections the platform takes: a body or bullets each, no empty
    /// title, no empty list of bullets or subsections.
    fn sections(&mut self, at: &[&str], raw: Vec<SectionFile>) -> Vec<Section> {
        let mut out = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let index = i.to_string();
            let here: Vec<&str> = [at, &[index.as_str()]].concat();
            let field = |name: &'static str| -> Vec<&str> { [here.as_slice(), &[name]].concat() };
            let title = self.no_empty_text(&field("title"), s.title, "title");
            let bullets = match s.bullets {
                Some(b) if b.is_empty() => {
                    let pos = self.spans.value(&field("bullets"));
                    self.error(
                        pos,
                        "`bullets` is empty: give at least one, or leave it out",
                    );
                    None
                }
                other => other,
            };
            let content = match (s.body, bullets) {
                (Some(body), None) => Content::Body(body),
                (None, Some(bullets)) => Content::Bullets(bullets),
                (Some(body), Some(bullets)) => Content::Both(body, bullets),
                (None, None) => {
                    let pos = self.spans.key(&here);
                    self.error(pos, "a section needs a `body` or `bullets`: the platform refuses one with neither");
                    Content::Body(String::new())
                }
            };
            let subsections = match s.subsections {
                Some(sub) if sub.is_empty() => {
                    let pos = self.spans.value(&field("subsections"));
                    self.error(
                        pos,
                        "`subsections` is empty: give at least one, or leave it out",
                    );
                    Vec::new()
                }
                Some(sub) => self.sections(&field("subsections"), sub),
                None => Vec::new(),
            };
            out.push(Section {
                title,
                content,
                numbered: s.numbered,
                numbered_bullets: s.numbered_bullets,
                subsections,
            });
        }
        out
    }

    /// `text` unless it is empty, which the platform refuses where a text is given.
    pub(super) fn no_empty_text(
        &mut self,
        at: &[&str],
        text: Option<String>,
        what: &str,
    ) -> Option<String> {
        match text {
            Some(t) if t.trim().is_empty() => {
                let pos = self.spans.value(at);
                self.error(
                    pos,
                    format!("`{what}` is empty: give it text, or leave it out"),
                );
                None
            }
            other => other,
        }
    }

    fn languages(&mut self, raw: Vec<LanguageFile>) -> Vec<Language> {
        let mut out = Vec::new();
        for (i, l) in raw.into_iter().enumerate() {
            let index = i.to_string();
            let at = |k: &'static str| ["languages", index.as_str(), k];
            let voice = match l.voice {
                Some(v) if v.trim().is_empty() => {
                    let pos = self.spans.value(&at("voice"));
                    self.error(pos, format!("language `{}`: `voice` is empty: the platform needs one, such as `elevenlabs.rachel`", l.code));
                    String::new()
                }
                Some(v) => self.env_text(&at("voice"), &v),
                None => {
                    let pos = self.spans.key(&["languages", &index]);
                    self.error(pos, format!("language `{}`: `voice` is required: the platform refuses a language without one", l.code));
                    String::new()
                }
            };
            let mut auto = |name: &'static str, value: Option<String>| match value.as_deref() {
                None => false,
                Some("auto") => true,
                Some(other) => {
                    let pos = self.spans.value(&at(name));
                    self.error(pos, format!("`{name}` takes only `auto`, not `{other}`"));
                    false
                }
            };
            let (emotion_auto, speed_auto) = (auto("emotion", l.emotion), auto("speed", l.speed));
            let (stability, similarity) = match l.params {
                Some(p) => (
                    self.unit(&["languages", &index, "params", "stability"], p.stability),
                    self.unit(&["languages", &index, "params", "similarity"], p.similarity),
                ),
                None => (None, None),
            };
            out.push(Language {
                name: l.name,
                code: l.code,
                voice,
                engine: l.engine,
                model: l.model,
                emotion_auto,
                speed_auto,
                stability,
                similarity,
                speech_fillers: l.speech_fillers.unwrap_or_default(),
                function_fillers: l.function_fillers.unwrap_or_default(),
            });
        }
        out
    }

    /// A value from 0 to 1.
    fn unit(&mut self, at: &[&str], value: Option<f64>) -> Option<f64> {
        let v = value?;
        if (0.0..=1.0).contains(&v) {
            return Some(v);
        }
        let pos = self.spans.value(at);
        self.error(
            pos,
            format!("`{}` must be from 0 to 1, not {v}", at[at.len() - 1]),
        );
        None
    }

    /// Text in which `${env:NAME}` is read now; no other variable.
    pub(super) fn env_text(&mut self, at: &[&str], text: &str) -> String {
        let pos = self.spans.value(at);
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.error(pos, e.to_string());
                return String::new();
            }
        };
        let mut out = text.to_owned();
        for (var, source) in template.vars() {
            let here = self.refine(pos, source);
            match var {
                Var::Env(name) if crate::config::env::is_own_variable(name) => self.error(
                    here,
                    format!("`${{env:{name}}}` is swagent's own setting; its secrets never leave swagent"),
                ),
                Var::Env(name) => match std::env::var(name) {
                    Ok(value) => out = out.replacen(source, &value, 1),
                    Err(_) => {
                        let msg = format!("environment variable `{name}` is not set");
                        if self.opts.strict {
                            self.error(here, msg);
                        } else {
                            self.warn(here, msg);
                        }
                        out = out.replacen(source, "", 1);
                    }
                },
                _ => self.error(here, format!("`{source}`: only `${{env:NAME}}` may be used here")),
            }
        }
        out
    }

    fn hints(&mut self, raw: Vec<HintFile>) -> Vec<Hint> {
        raw.into_iter()
            .map(|h| match h {
                HintFile::Word(w) => Hint::Word(w),
                HintFile::Pattern(p) => Hint::Pattern {
                    hint: p.hint,
                    pattern: p.pattern,
                    replace: p.replace,
                    ignore_case: p.ignore_case,
                },
            })
            .collect()
    }

    fn pronounce(&mut self, raw: Vec<PronounceFile>) -> Vec<Pronounce> {
        let mut out = Vec::new();
        for (i, p) in raw.into_iter().enumerate() {
            if p.replace.is_empty() {
                let pos = self.spans.value(&["pronounce", &i.to_string(), "replace"]);
                self.error(pos, "`replace` is empty: it would match everywhere");
                continue;
            }
            out.push(Pronounce {
                replace: p.replace,
                with: p.with,
                ignore_case: p.ignore_case,
            });
        }
        out
    }

    /// `global_data` without the keys swagent keeps its grants under: a
    /// grant the file set would be one no verifier gave.
    fn global_data(&mut self, data: Map<String, Value>) -> Map<String, Value> {
        for key in data.keys() {
            if key.starts_with(crate::guard::GRANT_KEY) {
                let pos = self.spans.key(&["global_data", key]);
                self.error(pos, format!("`global_data.{key}`: keys starting with `{}` hold swagent's verification grants; a grant must come from a verifier, never from the file", crate::guard::GRANT_KEY));
            }
        }
        data
    }

    /// `params`: a key the official schema knows must be what it says; an
    /// unknown one is a warning naming the closest known one (an error with
    /// `--strict`), since the platform adds params faster than the schema.
    fn params(&mut self, raw: IndexMap<String, Value>) -> IndexMap<String, Value> {
        let known = schema::param_names();
        let mut out = IndexMap::new();
        for (key, mut value) in raw {
            if !known.contains(&key) {
                let pos = self.spans.key(&["params", &key]);
                let closest = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(k, &key), k.as_str()))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(score, _)| *score > 0.8)
                    .map(|(_, k)| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                let msg = format!("`params.{key}` is not a param the SWML schema knows{closest}");
                if self.opts.strict {
                    self.error(pos, msg);
                } else {
                    self.warn(pos, msg);
                }
            }
            if key == "ai_model" {
                if let Some(text) = value.as_str().map(str::to_owned) {
                    value = Value::from(self.env_text(&["params", "ai_model"], &text));
                }
            }
            out.insert(key, value);
        }
        let whole = Value::Object(out.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        self.conforms(&["params"], &whole, "AIParams");
        out
    }

    /// Whether `value` meets the official schema's `definition` (a `$defs`
    /// name, or a `#/` pointer); each failure is an error at its place.
    pub(super) fn conforms(&mut self, at: &[&str], value: &Value, definition: &str) -> bool {
        let validator = schema::definition(definition);
        let errors: Vec<(String, String)> = validator
            .iter_errors(value)
            .flat_map(|e| schema::leaves(&e))
            .collect();
        for (path, message) in &errors {
            let mut full: Vec<&str> = at.to_vec();
            full.extend(path.split('/').filter(|s| !s.is_empty()));
            let pos = self.spans.value(&full);
            let shown = at
                .iter()
                .copied()
                .chain(path.split('/').filter(|s| !s.is_empty()))
                .collect::<Vec<_>>()
                .join(".");
            self.error(
                pos,
                format!("`{shown}`: {}", crate::text::short(message, 200)),
            );
        }
        errors.is_empty()
    }

    fn native_functions(&mut self, raw: Vec<String>) -> Vec<String> {
        let known = schema::native_functions();
        for (i, name) in raw.iter().enumerate() {
            if !known.contains(name) {
                let pos = self.spans.value(&["native_functions", &i.to_string()]);
                self.error(
                    pos,
                    format!(
                        "`{name}` is not a native function; the platform has {}",
                        known.join(", ")
                    ),
                );
            }
        }
        raw
    }

    fn includes(&mut self, raw: Vec<IncludeFile>) -> Vec<Include> {
        let mut out = Vec::new();
        for (i, inc) in raw.into_iter().enumerate() {
            let index = i.to_string();
            let at = ["includes", index.as_str(), "url"];
            if inc.url.contains("${env:") {
                let pos = self.spans.value(&at);
                self.warn(pos, "the include's `url` is sent to the platform in the SWML: anyone who can fetch the SWML sees what `${env:...}` puts in it");
            }
            if inc.url.trim().is_empty() {
                let pos = self.spans.value(&at);
                self.error(pos, "the include's `url` is empty");
            }
            let url = self.env_text(&at, &inc.url);
            if let Some(i) = inc.functions.iter().position(|f| f.trim().is_empty()) {
                let pos = self
                    .spans
                    .value(&["includes", &index, "functions", &i.to_string()]);
                self.error(pos, "a function name is empty");
            }
            if inc.functions.is_empty() {
                let pos = self.spans.value(&["includes", &index, "functions"]);
                self.error(pos, "`functions` is empty: name the functions to offer");
            }
            out.push(Include {
                url,
                functions: inc.functions,
                meta_data: inc.meta_data,
            });
        }
        out
    }

    /// Fillers per language, as SWML's `FunctionFillers`: codes the platform
    /// knows, each with lines; `one` when the platform takes one language.
    pub(super) fn fillers(
        &mut self,
        at: &[&str],
        raw: IndexMap<String, Vec<String>>,
        one: bool,
    ) -> Option<Fillers> {
        let codes = schema::filler_languages();
        let mut out = Vec::new();
        for (code, lines) in raw {
            let here: Vec<&str> = [at, &[code.as_str()]].concat();
            if !codes.contains(&code) {
                let pos = self.spans.key(&here);
                self.error(pos, format!("`{code}` is not a language code the platform takes fillers for (`en-US`, `es`, `default`, ...)"));
            } else if lines.is_empty() {
                let pos = self.spans.value(&here);
                self.error(
                    pos,
                    format!("`{code}` has no lines: give at least one, or leave it out"),
                );
            } else {
                out.push((code, lines));
            }
        }
        if one && out.len() > 1 {
            let pos = self.spans.key(at);
            self.error(
                pos,
                "a function's `fillers` take one language: the platform refuses more",
            );
            return None;
        }
        (!out.is_empty()).then_some(Fillers(out))
    }
}

//! The document's content: the `ai` verb built from a validated agent, the
//! verbs around it, and each function as SWAIG describes it. Everything here
//! was checked when the agent loaded, so this only arranges it; webhook URLs
//! come from the caller ([`super::Prepared`] leaves holes for them).

use serde_json::{json, Map, Value};

use crate::agent::ai::Hint;
use crate::agent::{Agent, Function, Language, Llm, Prompt, PromptBody, Section};

/// What one call's `on_call_start` lookup decided: its `global_data` (the
/// file's merged with the lookup's) and the context it starts in.
#[derive(Debug, Default, Clone, Copy)]
pub struct PerCall<'a> {
    pub global_data: Option<&'a Map<String, Value>>,
    pub context: Option<&'a str>,
}

/// Makes a webhook URL from a path and the function its token is for.
pub(super) type UrlMaker<'a> = dyn FnMut(String, Option<&str>) -> String + 'a;

/// The document, with each webhook URL made by `url(path, token_for)`, as
/// one call's lookup decided (`PerCall::default()`: as the file says).
pub(super) fn document(agent: &Agent, url: &mut UrlMaker<'_>, call: PerCall<'_>) -> Value {
    let around = &agent.around;
    let answer = match around.max_duration {
        Some(d) => json!({ "max_duration": d }),
        None => json!({}),
    };
    let mut main = vec![json!({ "answer": answer })];
    if let Some(record) = &around.record_call {
        main.push(json!({ "record_call": record }));
    }
    main.extend(around.before.iter().cloned());
    main.push(json!({ "ai": Value::Object(ai(agent, url, call)) }));
    main.extend(around.after.iter().cloned());
    json!({ "version": "1.0.0", "sections": { "main": main } })
}

/// The `ai` verb's object (the keys in the order the snapshots of the
/// examples have always had; the platform reads them by name).
fn ai(agent: &Agent, url: &mut UrlMaker<'_>, call: PerCall<'_>) -> Map<String, Value> {
    let mut ai = Map::new();
    let mut system = prompt(&agent.prompt);
    if let Some(contexts) = &agent.contexts {
        system.insert("contexts".into(), super::contexts::contexts(contexts));
    }
    ai.insert("prompt".into(), Value::Object(system));
    if let Some(post_prompt) = &agent.post_prompt {
        ai.insert("post_prompt".into(), Value::Object(prompt(post_prompt)));
        let path = format!("{}/", agent.sub_path("post_prompt"));
        ai.insert(
            "post_prompt_url".into(),
            Value::String(url(path, Some("post_prompt"))),
        );
    }
    let settings = &agent.ai;
    let params = settings.params.iter().map(|(k, v)| (k.clone(), v.clone()));
    ai.insert("params".into(), Value::Object(params.collect()));
    if !settings.languages.is_empty() {
        let languages = settings.languages.iter().map(language).collect();
        ai.insert("languages".into(), Value::Array(languages));
    }
    if !settings.hints.is_empty() {
        ai.insert("hints".into(), settings.hints.iter().map(hint).collect());
    }
    if !settings.pronounce.is_empty() {
        let rules = settings.pronounce.iter().map(|p| {
            let mut m = Map::new();
            m.insert("replace".into(), json!(p.replace));
            m.insert("with".into(), json!(p.with));
            if let Some(i) = p.ignore_case {
                m.insert("ignore_case".into(), json!(i));
            }
            Value::Object(m)
        });
        ai.insert("pronounce".into(), rules.collect());
    }
    if let Some(data) = call.global_data.or(settings.global_data.as_ref()) {
        ai.insert("global_data".into(), Value::Object(data.clone()));
    }
    if let Some(multilingual) = &settings.multilingual {
        ai.insert("multilingual".into(), multilingual.clone());
    }
    if let Some(swaig) = swaig(agent, url, call.context) {
        ai.insert("SWAIG".into(), Value::Object(swaig));
    }
    ai
}

/// A prompt's text or POM, and the model's settings.
fn prompt(prompt: &Prompt) -> Map<String, Value> {
    let mut object = Map::new();
    match &prompt.body {
        PromptBody::Text(text) => object.insert("text".into(), json!(text)),
        PromptBody::Pom(sections) => {
            object.insert("pom".into(), sections.iter().map(pom).collect())
        }
    };
    llm_into(&mut object, &prompt.llm);
    object
}

fn llm_into(object: &mut Map<String, Value>, llm: &Llm) {
    for (key, value) in llm.entries() {
        object.insert(key.into(), value);
    }
}

/// A POM section as the platform reads it (`numberedBullets`, camel case).
pub(super) fn pom(s: &Section) -> Value {
    let mut m = Map::new();
    if let Some(t) = &s.title {
        m.insert("title".into(), json!(t));
    }
    if let Some(b) = s.content.body() {
        m.insert("body".into(), json!(b));
    }
    if let Some(b) = s.content.bullets() {
        m.insert("bullets".into(), json!(b));
    }
    if let Some(n) = s.numbered {
        m.insert("numbered".into(), json!(n));
    }
    if let Some(n) = s.numbered_bullets {
        m.insert("numberedBullets".into(), json!(n));
    }
    if !s.subsections.is_empty() {
        m.insert(
            "subsections".into(),
            s.subsections.iter().map(pom).collect(),
        );
    }
    Value::Object(m)
}

fn language(l: &Language) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(l.name));
    m.insert("code".into(), json!(l.code));
    m.insert("voice".into(), json!(l.voice));
    for (k, v) in [("engine", &l.engine), ("model", &l.model)] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    for (k, on) in [("emotion", l.emotion_auto), ("speed", l.speed_auto)] {
        if on {
            m.insert(k.into(), json!("auto"));
        }
    }
    let mut params = Map::new();
    for (k, v) in [("stability", l.stability), ("similarity", l.similarity)] {
        if let Some(v) = v {
            params.insert(k.into(), json!(v));
        }
    }
    if !params.is_empty() {
        m.insert("params".into(), Value::Object(params));
    }
    for (k, v) in [
        ("speech_fillers", &l.speech_fillers),
        ("function_fillers", &l.function_fillers),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}

fn hint(h: &Hint) -> Value {
    match h {
        Hint::Word(w) => json!(w),
        Hint::Pattern {
            hint,
            pattern,
            replace,
            ignore_case,
        } => {
            let mut m = Map::new();
            m.insert("hint".into(), json!(hint));
            m.insert("pattern".into(), json!(pattern));
            m.insert("replace".into(), json!(replace));
            if let Some(i) = ignore_case {
                m.insert("ignore_case".into(), json!(i));
            }
            Value::Object(m)
        }
    }
}

/// `SWAIG`: the functions with their webhooks (`on_call_end` as the
/// platform's `hangup_hook`, last), the platform's own
/// functions, other servers' and the internal fillers; `None` when empty.
fn swaig(
    agent: &Agent,
    url: &mut UrlMaker<'_>,
    context: Option<&str>,
) -> Option<Map<String, Value>> {
    let settings = &agent.ai;
    let mut swaig = Map::new();
    if agent.hooked().next().is_some() {
        // Trailing slashes as the Python SDK writes them, so both look alike to the platform.
        let swaig_path = format!("{}/", agent.sub_path("swaig"));
        let functions: Vec<Value> = agent
            .hooked()
            .map(|f| function(f, &swaig_path, url))
            .collect();
        swaig.insert(
            "defaults".into(),
            json!({ "web_hook_url": url(swaig_path, None) }),
        );
        swaig.insert("functions".into(), Value::Array(functions));
    }
    if let Some(context) = context {
        let functions = swaig.entry("functions").or_insert_with(|| json!([]));
        if let Value::Array(functions) = functions {
            functions.push(starting_in(context));
        }
    }
    if !settings.native_functions.is_empty() {
        swaig.insert("native_functions".into(), json!(settings.native_functions));
    }
    if !settings.includes.is_empty() {
        let includes = settings.includes.iter().map(|i| {
            let mut m = Map::new();
            m.insert("url".into(), json!(i.url));
            m.insert("functions".into(), json!(i.functions));
            if let Some(meta) = &i.meta_data {
                m.insert("meta_data".into(), Value::Object(meta.clone()));
            }
            Value::Object(m)
        });
        swaig.insert("includes".into(), includes.collect());
    }
    if let Some(fillers) = &settings.internal_fillers {
        swaig.insert("internal_fillers".into(), Value::Object(fillers.clone()));
    }
    (!swaig.is_empty()).then_some(swaig)
}

/// The platform's `startup_hook`, run before the AI's first turn, as a
/// `data_map` that moves to `context`: SWML names no starting context, and
/// the platform runs the hook's actions at once. No webhook, so no token.
fn starting_in(context: &str) -> Value {
    json!({
        "function": "startup_hook",
        "description": "Internal: the call starts in the context its lookup chose.",
        "parameters": { "type": "object", "properties": {} },
        "data_map": { "output": { "response": "", "action": [{ "change_context": context }] } },
    })
}

/// One function as SWAIG describes it.
fn function(f: &Function, swaig_path: &str, url: &mut UrlMaker<'_>) -> Value {
    let mut m = Map::new();
    m.insert("function".into(), json!(f.name));
    m.insert("description".into(), json!(f.description));
    m.insert("parameters".into(), f.swml_parameters.clone());
    if f.secure {
        let hook = url(swaig_path.to_owned(), Some(&f.name));
        m.insert("web_hook_url".into(), Value::String(hook));
    }
    let o = &f.options;
    if let Some(fillers) = &o.fillers {
        m.insert("fillers".into(), fillers.to_object());
    }
    if let Some(w) = &o.wait_file {
        m.insert("wait_file".into(), json!(w));
    }
    if let Some(n) = o.wait_file_loops {
        m.insert("wait_file_loops".into(), json!(n));
    }
    for (k, v) in [
        ("wait_for_fillers", o.wait_for_fillers),
        ("skip_fillers", o.skip_fillers),
        ("active", o.active),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(meta) = &o.meta_data {
        m.insert("meta_data".into(), Value::Object(meta.clone()));
    }
    Value::Object(m)
}

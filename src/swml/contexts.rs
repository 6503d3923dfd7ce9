//! `prompt.contexts`, rendered exactly as the SDK's `ContextBuilder`
//! (signalwire-sdk 3.7.5, `signalwire/core/contexts.py`) renders them: the
//! same keys in the same order, flags only when on. One difference, where
//! the builder's output fails the official schema: fillers are the schema's
//! list of one-language objects, not one object.

use serde_json::{json, Map, Value};

use crate::agent::contexts::{
    Context, ContextPrompt, Contexts, GatherInfo, Question, Reset, SectionText, Step, StepFunctions,
};

/// The contexts by name, in the file's order.
pub(super) fn contexts(contexts: &Contexts) -> Value {
    Value::Object(
        contexts
            .0
            .iter()
            .map(|(name, c)| (name.clone(), context(c)))
            .collect(),
    )
}

fn context(c: &Context) -> Value {
    let mut m = Map::new();
    m.insert("steps".into(), c.steps.iter().map(step).collect());
    insert_some(
        &mut m,
        "valid_contexts",
        c.valid_contexts.as_ref().map(|v| json!(v)),
    );
    insert_some(
        &mut m,
        "valid_steps",
        c.valid_steps.as_ref().map(|v| json!(v)),
    );
    insert_some(
        &mut m,
        "initial_step",
        c.initial_step.as_ref().map(|v| json!(v)),
    );
    insert_some(
        &mut m,
        "post_prompt",
        c.post_prompt.as_ref().map(|v| json!(v)),
    );
    insert_some(
        &mut m,
        "system_prompt",
        c.system_prompt.as_ref().map(|v| json!(v)),
    );
    insert_flag(&mut m, "consolidate", c.consolidate);
    insert_flag(&mut m, "full_reset", c.full_reset);
    insert_some(
        &mut m,
        "user_prompt",
        c.user_prompt.as_ref().map(|v| json!(v)),
    );
    insert_flag(&mut m, "isolated", c.isolated);
    match &c.prompt {
        Some(ContextPrompt::Pom(sections)) => {
            let pom = sections.iter().map(|(title, text)| {
                let mut s = Map::new();
                s.insert("title".into(), json!(title));
                match text {
                    SectionText::Body(body) => s.insert("body".into(), json!(body)),
                    SectionText::Bullets(bullets) => s.insert("bullets".into(), json!(bullets)),
                };
                Value::Object(s)
            });
            m.insert("pom".into(), pom.collect());
        }
        Some(ContextPrompt::Text(text)) => {
            m.insert("prompt".into(), json!(text));
        }
        None => {}
    }
    insert_some(
        &mut m,
        "enter_fillers",
        c.enter_fillers.as_ref().map(|f| f.to_swml()),
    );
    insert_some(
        &mut m,
        "exit_fillers",
        c.exit_fillers.as_ref().map(|f| f.to_swml()),
    );
    insert_some(&mut m, "history", c.history.map(|h| json!(h.as_str())));
    Value::Object(m)
}

fn step(s: &Step) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(s.name));
    m.insert("text".into(), json!(s.text));
    insert_some(&mut m, "step_criteria", non_empty(&s.step_criteria));
    let functions = s.functions.as_ref().map(|f| match f {
        StepFunctions::List(names) => json!(names),
        StepFunctions::Off => json!("none"),
    });
    insert_some(&mut m, "functions", functions);
    insert_some(
        &mut m,
        "valid_steps",
        s.valid_steps.as_ref().map(|v| json!(v)),
    );
    insert_some(
        &mut m,
        "valid_contexts",
        s.valid_contexts.as_ref().map(|v| json!(v)),
    );
    insert_flag(&mut m, "end", s.end);
    insert_flag(&mut m, "skip_user_turn", s.skip_user_turn);
    insert_flag(&mut m, "skip_to_next_step", s.skip_to_next_step);
    insert_some(&mut m, "history", s.history.map(|h| json!(h.as_str())));
    insert_some(&mut m, "reset", s.reset.as_ref().and_then(reset));
    insert_some(
        &mut m,
        "gather_info",
        s.gather_info.as_ref().map(gather_info),
    );
    Value::Object(m)
}

/// The builder leaves out a reset that sets nothing.
fn reset(r: &Reset) -> Option<Value> {
    let mut m = Map::new();
    insert_some(
        &mut m,
        "system_prompt",
        r.system_prompt.as_ref().map(|v| json!(v)),
    );
    insert_some(
        &mut m,
        "user_prompt",
        r.user_prompt.as_ref().map(|v| json!(v)),
    );
    insert_flag(&mut m, "consolidate", r.consolidate);
    insert_flag(&mut m, "full_reset", r.full_reset);
    (!m.is_empty()).then_some(Value::Object(m))
}

fn gather_info(g: &GatherInfo) -> Value {
    let mut m = Map::new();
    m.insert(
        "questions".into(),
        g.questions.iter().map(question).collect(),
    );
    insert_some(&mut m, "prompt", non_empty(&g.prompt));
    insert_some(&mut m, "output_key", non_empty(&g.output_key));
    insert_some(
        &mut m,
        "completion_action",
        g.completion_action.as_ref().map(|v| json!(v)),
    );
    Value::Object(m)
}

fn question(q: &Question) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(q.key));
    m.insert("question".into(), json!(q.question));
    insert_some(&mut m, "type", q.kind.as_ref().map(|v| json!(v)));
    insert_flag(&mut m, "confirm", q.confirm);
    insert_some(&mut m, "prompt", q.prompt.as_ref().map(|v| json!(v)));
    if !q.functions.is_empty() {
        m.insert("functions".into(), json!(q.functions));
    }
    Value::Object(m)
}

/// The builder leaves out an empty criteria, gathering prompt or output key.
fn non_empty(text: &Option<String>) -> Option<Value> {
    text.as_ref().filter(|t| !t.is_empty()).map(|t| json!(t))
}

fn insert_some(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        m.insert(key.into(), v);
    }
}

/// `key: true` when on; the builder writes no `false`.
fn insert_flag(m: &mut Map<String, Value>, key: &str, on: bool) {
    if on {
        m.insert(key.into(), Value::Bool(true));
    }
}

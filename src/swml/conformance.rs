//! Whether an agent's SWML meets a SWML schema (the embedded official one,
//! or one a user gives to `validate --swml-schema`), each failure traced
//! back to the place in the agent file it comes from.

use std::path::Path;

use serde_json::Value;

use crate::agent::spans::{Pos, Spans};
use crate::agent::Agent;

/// A schema file, with [`super::schema::extend`] applied, compiled.
pub fn load_schema(path: &Path) -> anyhow::Result<jsonschema::Validator> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    let mut schema: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("`{}` is not JSON: {e}", path.display()))?;
    super::schema::extend(&mut schema);
    jsonschema::validator_for(&schema)
        .map_err(|e| anyhow::anyhow!("`{}` is not a JSON Schema: {e}", path.display()))
}

/// The agent's document with placeholder credentials and call id: what
/// every call gets but the webhook URLs' secrets.
pub fn placeholder(agent: &Agent) -> Value {
    let secret = crate::token::Secret::new("placeholder");
    let ctx = super::RenderContext {
        base_url: "https://swagent.example",
        userinfo: &super::Userinfo::new("user", "password"),
        secret: &secret,
        call_id: "validate",
        now: 0,
    };
    super::render(agent, &ctx).expect("a fixed call id binds into a token")
}

/// Each failure of `doc` against `schema`: where in the agent file, and
/// what (with the document's own path, which the platform would report).
pub fn failures(
    schema: &jsonschema::Validator,
    agent: &Agent,
    source: &str,
    doc: &Value,
) -> Vec<(Pos, String)> {
    let spans = Spans::index(source);
    schema
        .iter_errors(doc)
        .flat_map(|e| super::schema::leaves(&e))
        .map(|(instance, message)| {
            let path = agent_path(agent, &instance);
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let message = crate::text::short(&message, 200);
            (
                spans.value(&path),
                format!("the SWML fails the schema at `{instance}`: {message}"),
            )
        })
        .collect()
}

/// The agent file's path of a document path: `/sections/main/1/ai/params/x`
/// is `params.x`; a function is found by its index.
fn agent_path(agent: &Agent, instance: &str) -> Vec<String> {
    let parts: Vec<&str> = instance.split('/').filter(|s| !s.is_empty()).collect();
    let [_, _, index, rest @ ..] = parts.as_slice() else {
        return Vec::new();
    };
    let index: usize = index.parse().unwrap_or(0);
    let around = &agent.around;
    let first_before = 1 + usize::from(around.record_call.is_some());
    let ai_at = first_before + around.before.len();
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    // `answer` and `record_call` have the verb's name as their key.
    let listed = |key: &str, i: usize| [vec![key.to_owned(), i.to_string()], rest.clone()].concat();
    match index {
        i if i < first_before => rest,
        i if i < ai_at => listed("before_ai", i - first_before),
        i if i > ai_at => listed("after_ai", i - ai_at - 1),
        _ => {
            let inner: Vec<&str> = rest.iter().skip(1).map(String::as_str).collect();
            ai_path(agent, &inner)
        }
    }
}

/// The agent file's path of a path inside the `ai` verb.
fn ai_path(agent: &Agent, rest: &[&str]) -> Vec<String> {
    let strings = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match rest {
        ["prompt", "contexts", tail @ ..] => [vec!["contexts".into()], strings(tail)].concat(),
        ["prompt", "pom", tail @ ..] => [strings(&["prompt", "sections"]), strings(tail)].concat(),
        ["SWAIG", "functions", i, tail @ ..] => {
            let name = i
                .parse::<usize>()
                .ok()
                .and_then(|i| agent.functions.get_index(i))
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            [vec!["functions".into(), name], strings(tail)].concat()
        }
        ["SWAIG", tail @ ..] => strings(tail),
        other => strings(other),
    }
}

//! Agent + call → the SWML document the platform fetches when a call starts.
//!
//! `serve` and `swml` both render through [`render`], so the document an
//! operator reviews is byte for byte the one the platform gets. This module
//! also owns [`platform_parameters`]: the platform's schema allows only a few
//! JSON Schema keywords per property, so the full schema stays with swagent
//! (which enforces it) and the platform gets the allowed subset, with the
//! removed limits put into words.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Map, Value};

use crate::agent::{Agent, Prompt, Section};
use crate::token::{self, Secret};

/// The userinfo set of RFC 3986: what must be escaped inside `user:pass@`.
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Query values: `=` and `+` in base64 tokens must survive.
const QUERY_VALUE: &AsciiSet = &USERINFO.add(b'&').add(b'+');

/// Everything a rendering needs besides the agent.
pub struct RenderContext<'a> {
    /// `scheme://host[:port][/prefix]`, without credentials or trailing slash.
    pub base_url: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub secret: &'a Secret,
    pub call_id: &'a str,
    /// Unix seconds; tokens expire at `now + token_ttl`.
    pub now: u64,
}

impl RenderContext<'_> {
    /// `scheme://user:pass@host[:port][/prefix]`, credentials percent-encoded.
    fn authed_base(&self) -> String {
        let (scheme, rest) = self
            .base_url
            .split_once("://")
            .unwrap_or(("http", self.base_url));
        format!(
            "{scheme}://{}:{}@{rest}",
            utf8_percent_encode(self.user, USERINFO),
            utf8_percent_encode(self.password, USERINFO)
        )
    }
}

/// Renders the SWML document for one call. Fails only when the call id cannot
/// be bound into a token.
pub fn render(agent: &Agent, ctx: &RenderContext<'_>) -> Result<Value, token::CallIdError> {
    token::check_call_id(ctx.call_id)?;
    let base = ctx.authed_base();
    let expiry = ctx.now + agent.token_ttl.as_secs();
    // Trailing slashes as the Python SDK writes them, so both look alike to the platform.
    let swaig_url = format!("{base}{}/", agent.sub_path("swaig"));
    let with_token = |url: &str, function: &str| -> Result<String, token::CallIdError> {
        let t = token::mint(ctx.secret, ctx.call_id, function, expiry)?;
        Ok(format!(
            "{url}?__token={}",
            utf8_percent_encode(&t, QUERY_VALUE)
        ))
    };

    let mut ai = Map::new();
    ai.insert(
        "prompt".into(),
        match &agent.prompt {
            Prompt::Text(text) => json!({ "text": text }),
            Prompt::Pom(sections) => json!({ "pom": sections.iter().map(pom).collect::<Vec<_>>() }),
        },
    );
    if let Some(post_prompt) = &agent.post_prompt {
        ai.insert("post_prompt".into(), json!({ "text": post_prompt }));
        let url = format!("{base}{}/", agent.sub_path("post_prompt"));
        ai.insert(
            "post_prompt_url".into(),
            Value::String(with_token(&url, "post_prompt")?),
        );
    }
    ai.insert(
        "params".into(),
        Value::Object(
            agent
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    );
    if !agent.languages.is_empty() {
        let langs: Vec<Value> = agent
            .languages
            .iter()
            .map(|l| {
                let mut m = Map::new();
                m.insert("name".into(), json!(l.name));
                m.insert("code".into(), json!(l.code));
                for (k, v) in [
                    ("voice", &l.voice),
                    ("engine", &l.engine),
                    ("model", &l.model),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                for (k, v) in [
                    ("speech_fillers", &l.speech_fillers),
                    ("function_fillers", &l.function_fillers),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                Value::Object(m)
            })
            .collect();
        ai.insert("languages".into(), Value::Array(langs));
    }
    if !agent.hints.is_empty() {
        ai.insert("hints".into(), json!(agent.hints));
    }
    if !agent.functions.is_empty() {
        let mut functions = Vec::with_capacity(agent.functions.len());
        for f in agent.functions.values() {
            let mut m = Map::new();
            m.insert("function".into(), json!(f.name));
            m.insert("description".into(), json!(f.description));
            m.insert("parameters".into(), f.swml_parameters.clone());
            if f.secure {
                m.insert(
                    "web_hook_url".into(),
                    Value::String(with_token(&swaig_url, &f.name)?),
                );
            }
            functions.push(Value::Object(m));
        }
        ai.insert(
            "SWAIG".into(),
            json!({ "defaults": { "web_hook_url": swaig_url }, "functions": functions }),
        );
    }
    Ok(json!({
        "version": "1.0.0",
        "sections": { "main": [ { "answer": {} }, { "ai": Value::Object(ai) } ] }
    }))
}

fn pom(s: &Section) -> Value {
    let mut m = Map::new();
    if let Some(t) = &s.title {
        m.insert("title".into(), json!(t));
    }
    if let Some(b) = &s.body {
        m.insert("body".into(), json!(b));
    }
    if let Some(b) = &s.bullets {
        m.insert("bullets".into(), json!(b));
    }
    if let Some(n) = s.numbered {
        m.insert("numbered".into(), json!(n));
    }
    if let Some(n) = s.numbered_bullets {
        m.insert("numberedBullets".into(), json!(n));
    }
    if let Some(sub) = &s.subsections {
        m.insert(
            "subsections".into(),
            Value::Array(sub.iter().map(pom).collect()),
        );
    }
    Value::Object(m)
}

/// Keywords SignalWire's SWML schema allows on a parameter property, by type.
fn allowed(ty: &str) -> &'static [&'static str] {
    match ty {
        "string" => &[
            "type",
            "description",
            "enum",
            "default",
            "nullable",
            "pattern",
            "format",
        ],
        "integer" | "number" => &["type", "description", "enum", "default", "nullable"],
        "boolean" => &["type", "description", "default", "nullable"],
        "array" => &["type", "description", "default", "nullable", "items"],
        "object" => &[
            "type",
            "description",
            "default",
            "nullable",
            "properties",
            "required",
        ],
        "null" => &["type", "description"],
        _ => &["type", "description"],
    }
}

/// `format` values the SWML schema knows.
const SWML_FORMATS: [&str; 10] = [
    "date_time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uuid",
];

/// The part of a function's `parameters` the platform accepts, with removed
/// limits described in words and swagent's own markers (`sensitive`) dropped.
pub fn platform_parameters(parameters: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert(
        "properties".into(),
        properties(parameters.get("properties")),
    );
    if let Some(req) = parameters
        .get("required")
        .filter(|r| r.as_array().is_some_and(|a| !a.is_empty()))
    {
        out.insert("required".into(), req.clone());
    }
    Value::Object(out)
}

fn properties(props: Option<&Value>) -> Value {
    let Some(props) = props.and_then(Value::as_object) else {
        return json!({});
    };
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.clone(), property(v)))
            .collect(),
    )
}

fn property(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return json!({"type": "string"});
    };
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `type: [string, null]` is a nullable string to the platform.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ if obj.contains_key("enum") => "string",
        _ => "string",
    };
    let keep = allowed(ty);
    let mut out = Map::new();
    out.insert("type".into(), json!(ty));
    if matches!(obj.get("type"), Some(Value::Array(t)) if t.iter().any(|x| x == "null")) {
        out.insert("nullable".into(), json!(true));
    }
    let mut limits: Vec<String> = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            "type" => {}
            "items" if ty == "array" => {
                out.insert("items".into(), property(v));
            }
            "properties" if ty == "object" => {
                out.insert("properties".into(), properties(Some(v)));
            }
            "format" if ty == "string" => {
                let f = v.as_str().unwrap_or_default().replace('-', "_");
                if SWML_FORMATS.contains(&f.as_str()) {
                    out.insert("format".into(), json!(f));
                } else if let Some(s) = v.as_str() {
                    limits.push(format!("format {s}"));
                }
            }
            "sensitive" => {}
            k if keep.contains(&k) => {
                out.insert(k.into(), v.clone());
            }
            _ => {}
        }
    }
    limits.extend(describe_limits(obj));
    if !limits.is_empty() {
        let base = obj
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('.');
        let words = limits.join(", ");
        let text = if base.is_empty() {
            format!("Must be {words}.")
        } else {
            format!("{base} (must be {words}).")
        };
        out.insert("description".into(), json!(text));
    }
    Value::Object(out)
}

fn num(obj: &Map<String, Value>, k: &str) -> Option<String> {
    obj.get(k).filter(|v| v.is_number()).map(Value::to_string)
}

/// The limits the platform cannot be told in schema keywords, in words.
fn describe_limits(obj: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let pair = |lo: Option<String>, hi: Option<String>, unit: &str| -> Option<String> {
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo == hi => Some(format!("exactly {lo}{unit}")),
            (Some(lo), Some(hi)) => Some(format!("between {lo} and {hi}{unit}")),
            (Some(lo), None) => Some(format!("at least {lo}{unit}")),
            (None, Some(hi)) => Some(format!("at most {hi}{unit}")),
            (None, None) => None,
        }
    };
    out.extend(pair(num(obj, "minimum"), num(obj, "maximum"), ""));
    if let Some(x) = num(obj, "exclusiveMinimum") {
        out.push(format!("greater than {x}"));
    }
    if let Some(x) = num(obj, "exclusiveMaximum") {
        out.push(format!("less than {x}"));
    }
    if let Some(x) = num(obj, "multipleOf") {
        out.push(format!("a multiple of {x}"));
    }
    out.extend(pair(
        num(obj, "minLength"),
        num(obj, "maxLength"),
        " characters",
    ));
    out.extend(pair(num(obj, "minItems"), num(obj, "maxItems"), " items"));
    if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push("without repeated items".into());
    }
    if let Some(c) = obj.get("const") {
        out.push(format!("exactly {c}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::platform_parameters;
    use serde_json::json;

    #[test]
    fn limits_become_words() {
        let p = json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many."},
                "s": {"type": "string", "maxLength": 12, "pattern": "^[a-z]+$", "sensitive": true},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "maxItems": 3}
            },
            "required": ["n"],
            "additionalProperties": false
        });
        assert_eq!(
            platform_parameters(&p),
            json!({
                "type": "object",
                "properties": {
                    "n": {"type": "integer", "description": "How many (must be between 1 and 20)."},
                    "s": {"type": "string", "pattern": "^[a-z]+$", "description": "Must be at most 12 characters."},
                    "tags": {"type": "array", "items": {"type": "string", "description": "Must be at least 2 characters."}, "description": "Must be at most 3 items."}
                },
                "required": ["n"]
            })
        );
    }
}

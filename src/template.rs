//! `${...}` templates: parsing once at load time, and rendering at call time.
//!
//! One syntax everywhere, compatible with SignalWire DataMap: `${args.NAME}`,
//! `${response.a.b[0]}`, `${env:NAME}`, `${call_id}`, `${global_data.KEY}`,
//! `${meta_data.KEY}`. Every handler and `validate` use this module. An http
//! `output` that reads out a list adds `${item.PATH}` (one element) and
//! `${list}` (the elements joined).
//!
//! The security property lives here: a value is inserted as data and never
//! re-parsed. Rendering walks the parts parsed at load time, so an argument that
//! contains `${env:SECRET}` stays those literal characters. Callers decide how a
//! value is encoded for its destination (argv element, URL, JSON, header) through
//! [`Encoding`]; this module does not know about shells or URLs beyond that.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// Everything but RFC 3986 unreserved characters is encoded, so a value can
/// never add a path segment, a query parameter or a fragment.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One step into a JSON value: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// What a `${...}` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `${args.NAME...}`: a function argument, optionally a path inside it.
    Args(String, Vec<Step>),
    /// `${response.PATH}`: a field of the upstream JSON response (http output only).
    Response(Vec<Step>),
    /// `${output.PATH}`: a field of the JSON a shell program printed (its
    /// function's actions only).
    Output(Vec<Step>),
    /// `${env:NAME}`: swagent's environment, resolved when the agent loads.
    Env(String),
    /// `${call_id}`.
    CallId,
    /// `${global_data.KEY...}` from the SWAIG request.
    GlobalData(Vec<Step>),
    /// `${meta_data.KEY...}` from the SWAIG request.
    MetaData(Vec<Step>),
    /// `${call.FIELD...}`: the call as the SWML request reported it (`from`,
    /// `to`, `direction`, ...), in `on_call_start` and `on_call_end` only.
    Call(Vec<Step>),
    /// `${hangup.FIELD...}`: the platform's hangup payload, in `on_call_end`
    /// only.
    Hangup(Vec<Step>),
    /// `${summary.text}`, `${summary.parsed...}`, `${summary.id}`: the call's
    /// summary, in `summary` only.
    Summary(Vec<Step>),
    /// `${item.PATH}`, or `${item}` for the whole element: one element of
    /// the list an http `output` reads out (its `each` only).
    Item(Vec<Step>),
    /// `${list}`: the list's elements, joined (an http `output`'s `text` only).
    List,
}

impl Var {
    /// The namespace, as written in error messages (`args`, `env`, ...).
    pub fn namespace(&self) -> &'static str {
        match self {
            Var::Args(..) => "args",
            Var::Response(_) => "response",
            Var::Output(_) => "output",
            Var::Env(_) => "env",
            Var::CallId => "call_id",
            Var::GlobalData(_) => "global_data",
            Var::MetaData(_) => "meta_data",
            Var::Call(_) => "call",
            Var::Hangup(_) => "hangup",
            Var::Summary(_) => "summary",
            Var::Item(_) => "item",
            Var::List => "list",
        }
    }
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    /// A variable, with the source text (`${args.x}`) for messages.
    Var(Var, String),
}

/// A parsed template. Parsing happens once, when the agent loads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template did not parse. `offset` is a byte offset into the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// Why a template could not be rendered. These are configuration or upstream
/// problems; the caller turns them into a safe message and logs the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `${response...}` used without a response, or the path is absent.
    #[error("`{0}` has no value in the response")]
    MissingResponse(String),
    /// `${output...}` used without JSON output, or the path is absent.
    #[error("`{0}` has no value in the program's output")]
    MissingOutput(String),
    /// `${item...}` whose path is absent from the element.
    #[error("`{0}` has no value in an element of the list")]
    MissingItem(String),
    /// `${env:NAME}` that was not set when the agent loaded.
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
}

/// How a value is written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As text: strings as they are, other JSON values as compact JSON.
    Text,
    /// Percent-encoded (everything but unreserved characters): for URL parts.
    Url,
}

/// The values a template can refer to during one function call.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub args: &'a Value,
    pub call_id: &'a str,
    pub global_data: &'a Value,
    pub meta_data: &'a Value,
    pub response: Option<&'a Value>,
    /// The call, for `on_call_start` and `on_call_end`.
    pub call: Option<&'a Value>,
    /// A hook's own payload: the hangup's (`on_call_end`), the summary
    /// (`summary`).
    pub payload: Option<&'a Value>,
    /// The element of the list being read out, for `${item...}`.
    pub item: Option<&'a Value>,
    /// The elements already joined, for `${list}`.
    pub list: Option<&'a str>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Template {
    /// Parses `source`. A `$` that does not open `${` is literal.
    pub fn parse(source: &str) -> Result<Template, ParseError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("${") {
            lit.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| ParseError {
                offset: offset + start,
                message: "unterminated `${`: add the closing `}`".into(),
            })?;
            let inner = &after[..end];
            let text = format!("${{{inner}}}");
            let var = parse_var(inner).map_err(|message| ParseError {
                offset: offset + start,
                message,
            })?;
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(var, text));
            let consumed = start + 2 + end + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The variables this template names, with their source text.
    pub fn vars(&self) -> impl Iterator<Item = (&Var, &str)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v, text) => Some((v, text.as_str())),
            Part::Lit(_) => None,
        })
    }

    /// True when the template has no variables.
    pub fn is_literal(&self) -> bool {
        self.vars().next().is_none()
    }

    /// The variable when the whole template is exactly one `${...}`.
    pub fn as_single_var(&self) -> Option<&Var> {
        match self.parts.as_slice() {
            [Part::Var(v, _)] => Some(v),
            _ => None,
        }
    }

    /// Renders to a string, encoding each value with `encoding`. Literal text is
    /// copied as written (it came from the agent file, not from a caller).
    pub fn render(&self, ctx: &Context<'_>, encoding: Encoding) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(var, text) => {
                    let value = lookup(var, text, ctx)?;
                    let as_text = value_to_text(&value);
                    match encoding {
                        Encoding::Text => out.push_str(&as_text),
                        Encoding::Url => {
                            out.extend(utf8_percent_encode(&as_text, URL_VALUE));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Renders a template that stands alone as a JSON value: exactly one
    /// variable keeps its JSON type (`"${args.amount}"` stays a number);
    /// anything else becomes a string.
    pub fn render_json(&self, ctx: &Context<'_>) -> Result<Value, RenderError> {
        match self.parts.as_slice() {
            [Part::Var(var, text)] => lookup(var, text, ctx),
            _ => self.render(ctx, Encoding::Text).map(Value::String),
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Lit(s) => f.write_str(s)?,
                Part::Var(_, text) => f.write_str(text)?,
            }
        }
        Ok(())
    }
}

/// A JSON value as text: strings without quotes, null as nothing, the rest as
/// compact JSON.
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn lookup(var: &Var, text: &str, ctx: &Context<'_>) -> Result<Value, RenderError> {
    Ok(match var {
        Var::Args(name, path) => ctx
            .args
            .get(name)
            .and_then(|v| walk(v, path))
            .cloned()
            .unwrap_or(Value::Null),
        Var::CallId => Value::String(ctx.call_id.to_owned()),
        Var::GlobalData(path) => walk(ctx.global_data, path).cloned().unwrap_or(Value::Null),
        Var::MetaData(path) => walk(ctx.meta_data, path).cloned().unwrap_or(Value::Null),
        Var::Call(path) => ctx
            .call
            .and_then(|c| walk(c, path))
            .cloned()
            .unwrap_or(Value::Null),
        Var::Hangup(path) | Var::Summary(path) => ctx
            .payload
            .and_then(|c| walk(c, path))
            .cloned()
            .unwrap_or(Value::Null),
        Var::Response(path) => ctx
            .response
            .and_then(|r| walk(r, path))
            .cloned()
            .ok_or_else(|| RenderError::MissingResponse(text.to_owned()))?,
        // The same JSON as `response`: a template names what made it.
        Var::Output(path) => ctx
            .response
            .and_then(|r| walk(r, path))
            .cloned()
            .ok_or_else(|| RenderError::MissingOutput(text.to_owned()))?,
        Var::Item(path) => ctx
            .item
            .and_then(|i| walk(i, path))
            .cloned()
            .ok_or_else(|| RenderError::MissingItem(text.to_owned()))?,
        Var::List => Value::String(ctx.list.unwrap_or_default().to_owned()),
        Var::Env(name) => {
            Value::String((ctx.env)(name).ok_or_else(|| RenderError::MissingEnv(name.clone()))?)
        }
    })
}

/// Follows `path` into `value`.
pub fn walk<'v>(mut value: &'v Value, path: &[Step]) -> Option<&'v Value> {
    for step in path {
        value = match step {
            Step::Key(k) => value.get(k)?,
            Step::Index(i) => value.get(*i)?,
        };
    }
    Some(value)
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`: function, argument and variable names.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `a.b[0].c` into steps.
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for segment in path.split('.') {
        let (key, mut indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!("`{key}` is not a valid field name"));
            }
            steps.push(Step::Key(key.to_owned()));
        } else if steps.is_empty() || indexes.is_empty() {
            return Err(format!("empty field name in `{path}`"));
        }
        while !indexes.is_empty() {
            let close = indexes
                .find(']')
                .ok_or_else(|| format!("unclosed `[` in `{path}`"))?;
            let index: usize = indexes[1..close]
                .parse()
                .map_err(|_| format!("`{}` is not an array index", &indexes[1..close]))?;
            steps.push(Step::Index(index));
            indexes = &indexes[close + 1..];
            if !indexes.is_empty() && !indexes.starts_with('[') {
                return Err(format!("unexpected `{indexes}` in `{path}`"));
            }
        }
    }
    Ok(steps)
}

fn parse_var(inner: &str) -> Result<Var, String> {
    let inner = inner.trim();
    match inner {
        "call_id" => return Ok(Var::CallId),
        "list" => return Ok(Var::List),
        // The element itself, such as a string in a list of strings.
        "item" => return Ok(Var::Item(Vec::new())),
        _ => {}
    }
    if let Some(name) = inner.strip_prefix("env:") {
        if !is_name(name) {
            return Err(format!(
                "`${{{inner}}}`: `{name}` is not a valid environment variable name"
            ));
        }
        return Ok(Var::Env(name.to_owned()));
    }
    let (ns, path) = inner.split_once('.').unwrap_or((inner, ""));
    let need_path = |what: &str| -> Result<Vec<Step>, String> {
        if path.is_empty() {
            return Err(format!("`${{{inner}}}` needs a {what} after `{ns}.`"));
        }
        parse_path(path).map_err(|e| format!("`${{{inner}}}`: {e}"))
    };
    match ns {
        "args" => {
            let mut steps = need_path("name")?;
            match steps.remove(0) {
                Step::Key(name) if is_name(&name) => Ok(Var::Args(name, steps)),
                _ => Err(format!("`${{{inner}}}` needs an argument name after `args.`")),
            }
        }
        "response" => Ok(Var::Response(need_path("path")?)),
        "output" => Ok(Var::Output(need_path("path")?)),
        "global_data" => Ok(Var::GlobalData(need_path("key")?)),
        "meta_data" => Ok(Var::MetaData(need_path("key")?)),
        "call" => Ok(Var::Call(need_path("field")?)),
        "hangup" => Ok(Var::Hangup(need_path("field")?)),
        "summary" => Ok(Var::Summary(need_path("field")?)),
        "item" => Ok(Var::Item(need_path("path")?)),
        "list" => Err(format!("`${{{inner}}}`: `${{list}}` is text and has no fields")),
        _ => Err(format!(
            "unknown template `${{{inner}}}`: use `args.NAME`, `response.PATH`, `output.PATH`, `env:NAME`, `call_id`, `global_data.KEY`, `meta_data.KEY`, `call.FIELD`, `hangup.FIELD`, `summary.FIELD`, `item.PATH` or `list`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{Context, Encoding, Step, Template, Var};
    use serde_json::{json, Value};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn ctx<'a>(args: &'a Value, response: Option<&'a Value>) -> Context<'a> {
        Context {
            args,
            call_id: "call-1",
            global_data: &Value::Null,
            meta_data: &Value::Null,
            response,
            call: None,
            payload: None,
            item: None,
            list: None,
            env: &no_env,
        }
    }

    #[test]
    fn parses_each_namespace() {
        let t = Template::parse("a ${args.x} ${response.a.b[0]} ${env:HOME} ${call_id} ${global_data.k} ${meta_data.m[2]}").unwrap();
        let vars: Vec<_> = t.vars().map(|(v, _)| v.clone()).collect();
        assert_eq!(
            vars,
            vec![
                Var::Args("x".into(), vec![]),
                Var::Response(vec![
                    Step::Key("a".into()),
                    Step::Key("b".into()),
                    Step::Index(0)
                ]),
                Var::Env("HOME".into()),
                Var::CallId,
                Var::GlobalData(vec![Step::Key("k".into())]),
                Var::MetaData(vec![Step::Key("m".into()), Step::Index(2)]),
            ]
        );
    }

    #[test]
    fn rejects_bad_templates() {
        for (src, msg) in [
            ("${args.x", "unterminated `${`: add the closing `}`"),
            ("${argz.x}", "unknown template `${argz.x}`: use `args.NAME`, `response.PATH`, `output.PATH`, `env:NAME`, `call_id`, `global_data.KEY`, `meta_data.KEY`, `call.FIELD`, `hangup.FIELD`, `summary.FIELD`, `item.PATH` or `list`"),
            ("${list.x}", "`${list.x}`: `${list}` is text and has no fields"),
            ("${item.}", "`${item.}` needs a path after `item.`"),
            ("${args.}", "`${args.}` needs a name after `args.`"),
            ("${env:1X}", "`${env:1X}`: `1X` is not a valid environment variable name"),
            ("${response.a[x]}", "`${response.a[x]}`: `x` is not an array index"),
        ] {
            assert_eq!(Template::parse(src).unwrap_err().message, msg, "{src}");
        }
    }

    #[test]
    fn values_are_data_never_templates() {
        let args = json!({"q": "${env:SECRET} $(rm -rf /) `id` ; a\nb"});
        let t = Template::parse("--q=${args.q}").unwrap();
        assert_eq!(
            t.render(&ctx(&args, None), Encoding::Text).unwrap(),
            "--q=${env:SECRET} $(rm -rf /) `id` ; a\nb"
        );
    }

    #[test]
    fn url_encoding_cannot_add_segments_or_params() {
        let args = json!({"a": "../x?y=1&z#f/ é"});
        let t = Template::parse("${args.a}").unwrap();
        assert_eq!(
            t.render(&ctx(&args, None), Encoding::Url).unwrap(),
            "..%2Fx%3Fy%3D1%26z%23f%2F%20%C3%A9"
        );
    }

    #[test]
    fn json_keeps_types_for_a_lone_variable() {
        let args = json!({"amount": 12.5, "n": "7"});
        let ctx = ctx(&args, None);
        assert_eq!(
            Template::parse("${args.amount}")
                .unwrap()
                .render_json(&ctx)
                .unwrap(),
            json!(12.5)
        );
        assert_eq!(
            Template::parse("${args.n}")
                .unwrap()
                .render_json(&ctx)
                .unwrap(),
            json!("7")
        );
        assert_eq!(
            Template::parse("x${args.amount}")
                .unwrap()
                .render_json(&ctx)
                .unwrap(),
            json!("x12.5")
        );
    }

    #[test]
    fn response_paths_and_missing_values() {
        let args = json!({});
        let resp = json!({"id": 7, "items": [{"s": "ok"}]});
        let t = Template::parse("${response.id}/${response.items[0].s}").unwrap();
        assert_eq!(
            t.render(&ctx(&args, Some(&resp)), Encoding::Text).unwrap(),
            "7/ok"
        );
        let missing = Template::parse("${response.nope}").unwrap();
        assert_eq!(
            missing
                .render(&ctx(&args, Some(&resp)), Encoding::Text)
                .unwrap_err()
                .to_string(),
            "`${response.nope}` has no value in the response"
        );
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        let t = Template::parse("costs $5 and ${call_id}").unwrap();
        assert_eq!(
            t.render(&ctx(&json!({}), None), Encoding::Text).unwrap(),
            "costs $5 and call-1"
        );
        assert_eq!(t.to_string(), "costs $5 and ${call_id}");
    }
}

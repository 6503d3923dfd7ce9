//! What the platform is sent of a function's argument schema: the keywords
//! SignalWire's SWML schema allows, limits it has no keyword for put into
//! words, and swagent's own markers (`sensitive`) dropped. The loader also
//! asks here which properties would be served as another type than the one
//! swagent enforces, and refuses them.

use serde_json::{json, Map, Value};

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

/// Properties the platform would be told another type than swagent
/// enforces, as (path from `parameters`, why): one without a `type` is
/// served as a string but would take any value, and so would a schema that
/// is not an object; a `type` list with more than one type (besides
/// `null`) is served as its first. Walks what [`platform_parameters`] serves.
pub fn mistyped_properties(parameters: &Value) -> Vec<(Vec<String>, &'static str)> {
    fn walk(props: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'static str)>) {
        let Some(props) = props.as_object() else {
            return;
        };
        for (name, schema) in props {
            path.extend(["properties".to_owned(), name.clone()]);
            property(schema, path, out);
            path.truncate(path.len() - 2);
        }
    }
    fn property(
        schema: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, &'static str)>,
    ) {
        let Some(obj) = schema.as_object() else {
            out.push((path.clone(), "is not a schema object with a `type`"));
            return;
        };
        let ty = match obj.get("type") {
            None => {
                out.push((path.clone(), "has no `type`: the platform would be told `string`, and any value would be taken"));
                return;
            }
            Some(Value::Array(types)) => {
                let named: Vec<&str> = types
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "null")
                    .collect();
                if named.len() != 1 {
                    out.push((
                        path.clone(),
                        "must name one type (and optionally `null`): the platform takes one type",
                    ));
                    return;
                }
                named[0]
            }
            Some(t) => t.as_str().unwrap_or_default(),
        };
        if ty == "null" {
            out.push((path.clone(), "is `type: null`, which takes nothing but null: leave it out, or allow null beside a type with `type: [string, \"null\"]`"));
            return;
        }
        let fits = |v: &Value| match ty {
            "string" => v.is_string(),
            "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => true,
        };
        let enum_values = obj.get("enum").and_then(Value::as_array);
        if enum_values.is_some_and(|values| !values.iter().all(fits)) {
            out.push((path.clone(), "lists an `enum` value that is not of its `type` (such as `null`): the platform takes only values of that type; leave the argument out of `required` when it may be missing"));
        }
        if obj.get("nullable").is_some_and(|n| !n.is_boolean()) {
            out.push((
                path.clone(),
                "has a `nullable` that is not `true` or `false`",
            ));
        }
        if ty == "array" && !obj.get("items").is_some_and(Value::is_object) {
            out.push((path.clone(), "is `type: array` without `items`: the platform needs the items' schema, such as `items: { type: string }`"));
        }
        if obj.get("default").is_some_and(|d| !fits(d)) {
            out.push((
                path.clone(),
                "has a `default` that is not of its `type`: the platform refuses it",
            ));
        }
        match ty {
            "object" => {
                if let Some(props) = obj.get("properties") {
                    walk(props, path, out);
                }
            }
            "array" => {
                if let Some(items @ Value::Object(_)) = obj.get("items") {
                    path.push("items".to_owned());
                    property(items, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(props) = parameters.get("properties") {
        walk(props, &mut Vec::new(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{mistyped_properties, platform_parameters};
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

    #[test]
    fn properties_served_as_another_type_are_named() {
        let p = json!({
            "type": "object",
            "properties": {
                "ok": {"type": ["string", "null"]},
                "bare": {"enum": [1, "a"]},
                "any": true,
                "two": {"type": ["string", "integer"]},
                "only_null": {"type": ["null"]},
                "null": {"type": "null", "description": "nothing"},
                "choice": {"type": ["string", "null"], "enum": ["a", null]},
                "count": {"type": "integer", "enum": [1, 2], "default": "two"},
                "addr": {"type": "object", "properties": {"street": {}, "n": {"type": "integer"}}},
                "tags": {"type": "array", "items": {"description": "a tag"}}
            }
        });
        let got: Vec<(String, &str)> = mistyped_properties(&p)
            .into_iter()
            .map(|(path, why)| (path.join("."), why))
            .collect();
        let untyped =
            "has no `type`: the platform would be told `string`, and any value would be taken";
        let one = "must name one type (and optionally `null`): the platform takes one type";
        assert_eq!(
            got,
            [
                ("properties.bare".to_owned(), untyped),
                (
                    "properties.any".to_owned(),
                    "is not a schema object with a `type`"
                ),
                ("properties.two".to_owned(), one),
                ("properties.only_null".to_owned(), one),
                ("properties.null".to_owned(), "is `type: null`, which takes nothing but null: leave it out, or allow null beside a type with `type: [string, \"null\"]`"),
                ("properties.choice".to_owned(), "lists an `enum` value that is not of its `type` (such as `null`): the platform takes only values of that type; leave the argument out of `required` when it may be missing"),
                ("properties.count".to_owned(), "has a `default` that is not of its `type`: the platform refuses it"),
                ("properties.addr.properties.street".to_owned(), untyped),
                ("properties.tags.items".to_owned(), untyped),
            ]
        );
    }
}

//! Arguments as the audit log keeps them: `sensitive` values as `***`,
//! long strings cut, and arguments past a size kept as their size only.
//! Redaction follows `properties` and `items` from the top; the loader
//! refuses a `sensitive` marker anywhere else ([`unredacted_markers`]).

use serde_json::Value;

/// What the log keeps of one string argument, in characters.
const KEPT_CHARS: usize = 256;

/// The most one event's arguments take in the log, in bytes of JSON.
const KEPT_BYTES: usize = 16 * 1024;

/// Arguments as the audit log keeps them: [`redact`]ed, and bounded.
/// Arguments are the caller's to size (up to `SWML_MAX_REQUEST_SIZE`), and a
/// line per call of that size would fill the log's disk at the request rate:
/// a long string keeps its first [`KEPT_CHARS`] characters and its length,
/// and arguments still over [`KEPT_BYTES`] keep only their size.
pub fn logged_arguments(schema: &Value, args: &Value) -> Value {
    let kept = shorten(redact(schema, args));
    let bytes = serde_json::to_vec(&kept).map_or(0, |b| b.len());
    if bytes > KEPT_BYTES {
        Value::String(format!("({bytes} bytes of arguments, not kept)"))
    } else {
        kept
    }
}

fn shorten(value: Value) -> Value {
    match value {
        Value::String(text) => match text.char_indices().nth(KEPT_CHARS) {
            Some((cut, _)) => Value::String(format!("{}… ({} bytes)", &text[..cut], text.len())),
            None => Value::String(text),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(shorten).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, shorten(v))).collect())
        }
        other => other,
    }
}

/// Arguments with every property marked `sensitive: true` in the schema
/// replaced by `"***"`, nested objects and arrays included.
pub fn redact(schema: &Value, args: &Value) -> Value {
    match args {
        Value::Object(map) => {
            let props = schema.get("properties");
            Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let sub = props.and_then(|p| p.get(k)).unwrap_or(&Value::Null);
                        let v = if sub.get("sensitive") == Some(&Value::Bool(true)) {
                            Value::String("***".into())
                        } else {
                            redact(sub, v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => {
            let sub = schema.get("items").unwrap_or(&Value::Null);
            if sub.get("sensitive") == Some(&Value::Bool(true)) {
                return Value::String("***".into());
            }
            Value::Array(items.iter().map(|v| redact(sub, v)).collect())
        }
        other => other.clone(),
    }
}

/// Where a schema marks `sensitive: true` out of [`redact`]'s reach: only a
/// chain of `properties` and `items` (an object) from the top is followed,
/// so a marker under `patternProperties`, `anyOf`, `$defs` and the like
/// would leave its value in the audit log. Paths as `["properties", "pin"]`.
pub fn unredacted_markers(schema: &Value) -> Vec<Vec<String>> {
    // Keywords whose values are schemas, or maps or arrays of schemas.
    const ONE: [&str; 10] = [
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "additionalItems",
    ];
    const MAPS: [&str; 5] = [
        "patternProperties",
        "$defs",
        "definitions",
        "dependentSchemas",
        "dependencies",
    ];
    const LISTS: [&str; 4] = ["anyOf", "oneOf", "allOf", "prefixItems"];

    fn walk(node: &Value, reached: bool, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Value::Object(map) = node else { return };
        if !reached && map.get("sensitive") == Some(&Value::Bool(true)) {
            out.push(path.clone());
        }
        for (key, value) in map {
            path.push(key.clone());
            match (key.as_str(), value) {
                ("properties", Value::Object(props)) => {
                    for (name, sub) in props {
                        path.push(name.clone());
                        walk(sub, reached, path, out);
                        path.pop();
                    }
                }
                ("items", Value::Object(_)) => walk(value, reached, path, out),
                ("items", Value::Array(list)) => each(list, path, out),
                (k, Value::Object(m)) if MAPS.contains(&k) => {
                    for (name, sub) in m {
                        path.push(name.clone());
                        walk(sub, false, path, out);
                        path.pop();
                    }
                }
                (k, Value::Array(list)) if LISTS.contains(&k) => each(list, path, out),
                (k, _) if ONE.contains(&k) => walk(value, false, path, out),
                _ => {}
            }
            path.pop();
        }
    }
    fn each(list: &[Value], path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (i, sub) in list.iter().enumerate() {
            path.push(i.to_string());
            walk(sub, false, path, out);
            path.pop();
        }
    }

    let mut out = Vec::new();
    walk(schema, true, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{logged_arguments, redact, unredacted_markers};
    use serde_json::json;

    #[test]
    fn finds_markers_redaction_does_not_reach() {
        let schema = json!({"type": "object",
            "properties": {
                "pin": {"type": "string", "sensitive": true},
                "card": {"type": "object", "properties": {"cvv": {"sensitive": true}}},
                "codes": {"type": "array", "items": {"sensitive": true}},
                "any": {"anyOf": [{"type": "string", "sensitive": true}]},
                "enum_data": {"enum": [{"sensitive": true}]}
            },
            "patternProperties": {"^x_": {"sensitive": true}},
            "additionalProperties": {"sensitive": true},
            "$defs": {"secret": {"sensitive": true}}
        });
        let mut found = unredacted_markers(&schema);
        found.sort();
        let want: Vec<Vec<&str>> = vec![
            vec!["$defs", "secret"],
            vec!["additionalProperties"],
            vec!["patternProperties", "^x_"],
            vec!["properties", "any", "anyOf", "0"],
        ];
        assert_eq!(found, want);
    }

    #[test]
    fn redacts_sensitive_properties_at_any_depth() {
        let schema = json!({"type": "object", "properties": {
            "pin": {"type": "string", "sensitive": true},
            "card": {"type": "object", "properties": {"cvv": {"type": "string", "sensitive": true}, "last4": {"type": "string"}}},
            "codes": {"type": "array", "items": {"type": "string", "sensitive": true}}
        }});
        let args = json!({"pin": "1234", "card": {"cvv": "999", "last4": "4242"}, "codes": ["a"], "other": 1});
        assert_eq!(
            redact(&schema, &args),
            json!({"pin": "***", "card": {"cvv": "***", "last4": "4242"}, "codes": "***", "other": 1})
        );
    }

    #[test]
    fn keeps_long_arguments_bounded() {
        let schema = json!({"type": "object"});
        let long = format!("{}{}", "é".repeat(256), "x".repeat(1000));
        assert_eq!(
            logged_arguments(&schema, &json!({"note": long, "n": 1})),
            json!({"note": format!("{}… (1512 bytes)", "é".repeat(256)), "n": 1})
        );
        // 256 characters or fewer are kept whole, however many bytes.
        let short = "é".repeat(256);
        assert_eq!(logged_arguments(&schema, &json!([short])), json!([short]));
        // Many short values: only the size is kept.
        let many: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        assert_eq!(
            logged_arguments(&schema, &json!({ "items": many })),
            json!("(68901 bytes of arguments, not kept)")
        );
    }
}

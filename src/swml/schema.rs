//! The official SWML schema (`schemas/swml/schema.json`, shipped in the
//! SignalWire Python SDK), embedded, and the one extension swagent applies
//! to it ([`extend`]). Used when an agent file loads, to check the parts of
//! the `ai` verb that are open maps (`params`) and the verbs placed around
//! it; and by `validate --swml-schema` and the tests, on whole documents.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// The schema as the SDK ships it.
const TEXT: &str = include_str!("../../schemas/swml/schema.json");

/// The official schema, parsed whole. Not kept: parsed it is megabytes, and
/// loading needs only a few definitions ([`def`]).
pub fn official() -> Value {
    serde_json::from_str(TEXT).expect("the embedded SWML schema is JSON")
}

/// The schema's top-level keys and its `$defs`, as slices of [`TEXT`]: an
/// index, so one definition is parsed without the rest.
struct Index {
    top: Vec<(&'static str, &'static RawValue)>,
    defs: HashMap<&'static str, &'static RawValue>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let top: Vec<(&'static str, &'static RawValue)> =
            serde_json::from_str::<indexmap::IndexMap<&str, &RawValue>>(TEXT)
                .expect("the embedded SWML schema is a JSON object")
                .into_iter()
                .collect();
        let defs = top
            .iter()
            .find(|(k, _)| *k == "$defs")
            .map(|(_, raw)| serde_json::from_str(raw.get()).expect("`$defs` is an object"))
            .unwrap_or_default();
        Index { top, defs }
    })
}

/// One `$defs` entry of the official schema, parsed (`Null` if none).
pub fn def(name: &str) -> Value {
    index()
        .defs
        .get(name)
        .map(|raw| serde_json::from_str(raw.get()).expect("a definition is JSON"))
        .unwrap_or(Value::Null)
}

/// The published schema lags the platform in contexts and steps: these are
/// the fields `ContextBuilder` (signalwire-sdk 3.7.5,
/// `signalwire/core/contexts.py`) emits there and the schema does not list.
/// Remove an entry when the schema gains it.
const STEP_FIELDS: [(&str, &str); 4] = [
    (
        "gather_info",
        r#"{"type": "object", "properties": {
        "questions": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "question": {"type": "string"}, "type": {"type": "string"},
            "confirm": {"type": "boolean"}, "prompt": {"type": "string"},
            "functions": {"type": "array", "items": {"type": "string"}}},
            "required": ["key", "question"], "additionalProperties": false}},
        "output_key": {"type": "string"}, "completion_action": {"type": "string"},
        "prompt": {"type": "string"}},
        "required": ["questions"], "additionalProperties": false}"#,
    ),
    ("history", r#"{"enum": ["keep", "default", "hide"]}"#),
    ("skip_to_next_step", r#"{"type": "boolean"}"#),
    (
        "reset",
        r#"{"type": "object", "properties": {
        "system_prompt": {"type": "string"}, "user_prompt": {"type": "string"},
        "consolidate": {"type": "boolean"}, "full_reset": {"type": "boolean"}},
        "additionalProperties": false}"#,
    ),
];
/// A step's `functions` may also be `"none"`, as `ContextBuilder` writes it.
const STEP_FUNCTIONS: &str =
    r#"{"anyOf": [{"type": "array", "items": {"type": "string"}}, {"const": "none"}]}"#;
/// The context fields `ContextBuilder` emits and the schema does not list.
const CONTEXT_FIELDS: [(&str, &str); 10] = [
    ("initial_step", r#"{"type": "string"}"#),
    ("system_prompt", r#"{"type": "string"}"#),
    ("user_prompt", r#"{"type": "string"}"#),
    ("consolidate", r#"{"type": "boolean"}"#),
    ("full_reset", r#"{"type": "boolean"}"#),
    ("post_prompt", r#"{"type": "string"}"#),
    ("prompt", r#"{"type": "string"}"#),
    ("history", r#"{"enum": ["keep", "default", "hide"]}"#),
    (
        "valid_contexts",
        r#"{"type": "array", "items": {"type": "string"}}"#,
    ),
    (
        "valid_steps",
        r#"{"type": "array", "items": {"type": "string"}}"#,
    ),
];

/// Where the SDK's `FunctionResult` (signalwire-sdk 3.7.5,
/// `signalwire/core/function_result.py`) renders an action another way than
/// the schema's `Action` union; the platform takes the SDK's. Remove an
/// entry when the schema gains it.
const ACTION_FORMS: [(&str, &str); 4] = [
    // `play_background_file(file)` without `wait`.
    ("playback_bg", r#"{"type": "string"}"#),
    // `remove_global_data([...])` and `remove_metadata([...])`.
    (
        "unset_global_data",
        r#"{"type": "array", "items": {"type": "string"}}"#,
    ),
    (
        "unset_meta_data",
        r#"{"type": "array", "items": {"type": "string"}}"#,
    ),
    // `connect(to, final)` puts `"transfer": "true"` (or `"false"`) beside
    // its `SWML`.
    ("transfer", r#"{"enum": ["true", "false"]}"#),
];

/// Whether one action (`{ key: value }`) meets `definition` (its `Action`
/// union member, such as `SayAction`), or the SDK's form of it above.
pub fn action_valid(key: &str, value: &Value, definition: &str) -> bool {
    in_sdk_form(key, value) || self::definition(definition).is_valid(&json!({ key: value }))
}

/// Whether `{ key: value }` is in one of the SDK's forms above.
fn in_sdk_form(key: &str, value: &Value) -> bool {
    static FORMS: OnceLock<Vec<(&str, jsonschema::Validator)>> = OnceLock::new();
    let forms = FORMS.get_or_init(|| {
        ACTION_FORMS
            .iter()
            .map(|(k, form)| {
                let schema = serde_json::from_str(form).expect("a form is JSON");
                let validator = jsonschema::validator_for(&schema).expect("a form compiles");
                (*k, validator)
            })
            .collect()
    });
    forms.iter().any(|(k, v)| *k == key && v.is_valid(value))
}

/// Whether a whole action meets the schema's `Action` union, each key in
/// the SDK's form where it has one (`connect`'s `transfer` beside `SWML`).
pub fn action_conforms(action: &Value) -> bool {
    let Some(map) = action.as_object().filter(|m| !m.is_empty()) else {
        return false;
    };
    let rest: Map<String, Value> = map
        .iter()
        .filter(|(k, v)| !in_sdk_form(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    rest.is_empty() || self::definition("Action").is_valid(&Value::Object(rest))
}

/// `schema` (the official one, or one a user gives) with exactly the
/// fields above added to steps and contexts.
pub fn extend(schema: &mut Value) {
    let parse = |text: &str| -> Value { serde_json::from_str(text).expect("an extension is JSON") };
    let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) else {
        return;
    };
    for step in ["ContextPOMSteps", "ContextTextSteps"] {
        let props = defs.get_mut(step).and_then(|d| d.get_mut("properties"));
        if let Some(props) = props.and_then(Value::as_object_mut) {
            for (name, field) in STEP_FIELDS {
                props.insert(name.into(), parse(field));
            }
            props.insert("functions".into(), parse(STEP_FUNCTIONS));
        }
    }
    for context in ["ContextsPOMObject", "ContextsTextObject"] {
        let props = defs.get_mut(context).and_then(|d| d.get_mut("properties"));
        if let Some(props) = props.and_then(Value::as_object_mut) {
            for (name, field) in CONTEXT_FIELDS {
                props.insert(name.into(), parse(field));
            }
        }
    }
}

/// A validator of one `$defs` entry of the official schema (`AIParams`,
/// `Play`), or of any part of it by pointer (`#/$defs/AIObject/...`), re-rooted so that its errors name what is wrong in it, rather
/// than "not valid under any of the schemas" of the document's `anyOf`s.
pub fn definition(name: &str) -> &'static jsonschema::Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(name) {
        return v;
    }
    let validator: &'static jsonschema::Validator = Box::leak(Box::new(
        jsonschema::validator_for(&rooted(name))
            .unwrap_or_else(|e| panic!("`$defs/{name}` of the SWML schema compiles: {e}")),
    ));
    cache.insert(name.to_owned(), validator);
    validator
}

/// `$defs/name` (or the pointer `name`) as the root, with the definitions
/// it reaches and no others. The document itself becomes `$defs/__document`,
/// for the references nested SWML makes to it.
fn rooted(name: &str) -> Value {
    let target = match name.starts_with("#/") {
        true => name.to_owned(),
        false => format!("#/$defs/{name}"),
    };
    let first = target
        .trim_start_matches("#/$defs/")
        .split('/')
        .next()
        .unwrap_or_default();
    let mut defs = Map::new();
    let mut todo = vec![first.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let mut value = match name.as_str() {
            "__document" => document(),
            name => def(name),
        };
        redirect(&mut value);
        references(&value, &mut todo);
        defs.insert(name, value);
    }
    json!({ "$defs": defs, "$ref": target })
}

/// The schema's top level without `$defs` and `$id`: a whole SWML document.
fn document() -> Value {
    let top = index()
        .top
        .iter()
        .filter(|(k, _)| !matches!(*k, "$defs" | "$id"));
    Value::Object(
        top.map(|(k, raw)| {
            (
                (*k).to_owned(),
                serde_json::from_str(raw.get()).expect("JSON"),
            )
        })
        .collect(),
    )
}

/// The `$defs` names `value` refers to.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => out.extend(r.strip_prefix("#/$defs/").map(str::to_owned)),
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Points every reference to the document (`SWMLObject.json`) at `__document`.
fn redirect(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref" && v == "SWMLObject.json" {
                    *v = Value::from("#/$defs/__document");
                } else {
                    redirect(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redirect),
        _ => {}
    }
}

/// What is wrong, as (instance path, message) pairs. For an `anyOf` or
/// `oneOf` that nothing matched: the errors of the branch that got further
/// into the value (the one the author meant), or else one message naming
/// what the value may be, not "not valid under any of the schemas".
pub fn leaves(e: &jsonschema::ValidationError<'_>) -> Vec<(String, String)> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let here = e.instance_path().to_string();
    let own = || vec![(here.clone(), e.to_string())];
    let branches = match e.kind() {
        Kind::AnyOf { context } | Kind::OneOfNotValid { context } => context,
        // At the key itself, not at the object that holds it.
        Kind::UnevaluatedProperties { unexpected } | Kind::AdditionalProperties { unexpected } => {
            let at = |k: &String| format!("{here}/{k}");
            let say = |k: &String| {
                format!("`{k}` is not taken here: an unknown key, or a value the platform refuses")
            };
            return unexpected.iter().map(|k| (at(k), say(k))).collect();
        }
        _ => return own(),
    };
    let depth = |l: &[(String, String)]| l.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let deeper = branches
        .iter()
        .map(|b| b.iter().flat_map(|e| leaves(e)).collect::<Vec<_>>())
        .filter(|l| depth(l) > here.len())
        .max_by_key(|l| (depth(l), std::cmp::Reverse(l.len())));
    if let Some(deeper) = deeper {
        return deeper;
    }
    let mut seen = std::collections::HashSet::new();
    let options: Vec<(&str, String)> = branches
        .iter()
        .map(|b| expectation(b))
        .filter(|o| seen.insert(o.clone()))
        .collect();
    // "must be 1, or 2", but "must be 1, or have `x`".
    let same = options.windows(2).all(|w| w[0].0 == w[1].0);
    let words: Vec<String> = options
        .iter()
        .enumerate()
        .map(|(i, (verb, what))| match i > 0 && same {
            true => what.clone(),
            false => format!("{verb} {what}"),
        })
        .collect();
    let subject = match e.instance().as_ref() {
        Value::Object(_) | Value::Array(_) => "it".to_owned(),
        scalar => scalar.to_string(),
    };
    vec![(here, format!("{subject} must {}", words.join(", or ")))]
}

/// What one branch asks for, as a verb and its object: its type if that is
/// what failed, else each failed constraint.
fn expectation(errors: &[jsonschema::ValidationError<'_>]) -> (&'static str, String) {
    use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
    if errors
        .iter()
        .any(|e| e.schema_path().as_str().contains("/$defs/SWMLVar"))
    {
        return ("be", "a `${...}` SWML variable".into());
    }
    if let Some(Kind::Type { kind }) = errors
        .iter()
        .map(|e| e.kind())
        .find(|k| matches!(k, Kind::Type { .. }))
    {
        return match kind {
            TypeKind::Single(t) => ("be", format!("of type {t}")),
            TypeKind::Multiple(_) => ("be", "of another type".into()),
        };
    }
    let mut verb = "be";
    let words: Vec<String> = errors
        .iter()
        .map(|e| match e.kind() {
            Kind::Minimum { limit } => format!("at least {limit}"),
            Kind::Maximum { limit } => format!("at most {limit}"),
            Kind::ExclusiveMinimum { limit } => format!("greater than {limit}"),
            Kind::ExclusiveMaximum { limit } => format!("less than {limit}"),
            Kind::Constant { expected_value } => format!("{expected_value}"),
            Kind::Enum { options } => format!("one of {options}"),
            Kind::Required { property } => {
                verb = "have";
                format!("{property}")
            }
            _ => {
                verb = "meet";
                e.to_string()
            }
        })
        .collect();
    (verb, words.join(" and "))
}

/// The verbs the schema knows, by name (`play`), with their `$defs` entry.
pub fn verbs() -> &'static Vec<(String, String)> {
    static VERBS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    VERBS.get_or_init(|| {
        def("SWMLMethod")["anyOf"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let name = r["$ref"].as_str()?.rsplit('/').next()?.to_owned();
                let verb = def(&name)["properties"].as_object()?.keys().next()?.clone();
                Some((verb, name))
            })
            .collect()
    })
}

/// The `params` the schema knows.
pub fn param_names() -> &'static Vec<String> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        def("AIParams")["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    })
}

/// The language codes fillers may be given for (`FunctionFillers`).
pub fn filler_languages() -> &'static Vec<String> {
    static CODES: OnceLock<Vec<String>> = OnceLock::new();
    CODES.get_or_init(|| {
        def("FunctionFillers")["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["required"][0].as_str().map(str::to_owned))
            .collect()
    })
}

/// The native functions the schema knows (`check_time`, ...).
pub fn native_functions() -> &'static Vec<String> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        def("SWAIGNativeFunction")["enum"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_definition_names_what_is_wrong_in_it() {
        let params = super::definition("AIParams");
        assert!(params.is_valid(&json!({"end_of_speech_timeout": 700, "ai_model": "gpt-4.1-mini"})));
        let errors: Vec<String> = params
            .iter_errors(
                &json!({"attention_timeout": -5, "end_of_speech_timeout": "700ms", "ai_model": 42}),
            )
            .map(|e| e.instance_path().to_string())
            .collect();
        for path in ["/attention_timeout", "/end_of_speech_timeout", "/ai_model"] {
            assert!(errors.iter().any(|e| e == path), "{path} in {errors:?}");
        }
        // A verb whose schema nests whole documents (a `connect` with a
        // `confirm` SWML) resolves them through the re-rooted document.
        let connect = super::definition("Connect");
        assert!(connect.is_valid(&json!({"connect": {"to": "+15551234567"}})));
        assert!(!connect.is_valid(&json!({"connect": {"to": 5}})));
    }

    #[test]
    fn the_extension_lets_in_the_builders_fields_and_no_others() {
        let step = |extra: serde_json::Value| {
            let mut s = json!({"name": "a", "text": "t"});
            s.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({"version": "1.0.0", "sections": {"main": [{"ai": {"prompt": {"text": "p",
                "contexts": {"default": {"steps": [s]}}}}}]}})
        };
        let mut schema = super::official();
        super::extend(&mut schema);
        let v = jsonschema::validator_for(&schema).unwrap();
        assert!(v.is_valid(&step(json!({"history": "hide", "skip_to_next_step": true, "functions": "none",
            "gather_info": {"questions": [{"key": "k", "question": "q"}], "completion_action": "next_step"}}))));
        assert!(!v.is_valid(&step(json!({"history": "forget"}))));
        assert!(!v.is_valid(&step(json!({"made_up": true}))));
        assert!(super::verbs()
            .iter()
            .any(|(v, d)| v == "play" && d == "Play"));
        assert!(super::filler_languages().iter().any(|c| c == "en-US"));
        assert_eq!(super::native_functions().len(), 4);
        assert_eq!(super::param_names().len(), 92);
    }
}

//! The arguments gate: a function's arguments against its JSON Schema,
//! compiled once at load. What comes back to the AI says which argument is
//! wrong and why, never a sensitive value and never a caller's whole text.

use serde_json::Value;

use super::say;
use crate::agent::Function;
use crate::text::short;

/// Why arguments were refused. `Display` is for a person (`swagent call`);
/// [`InvalidArguments::for_ai`] is the reply that asks the AI to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidArguments {
    NotAnObject,
    /// At most three problems, values shortened and sensitive ones hidden.
    Problems(Vec<String>),
}

impl InvalidArguments {
    pub fn for_ai(&self) -> String {
        match self {
            InvalidArguments::NotAnObject => say::ARGUMENTS_NOT_OBJECT.to_owned(),
            InvalidArguments::Problems(problems) => say::arguments_refused(problems),
        }
    }
}

impl std::fmt::Display for InvalidArguments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidArguments::NotAnObject => f.write_str("the arguments are not a JSON object"),
            InvalidArguments::Problems(problems) => f.write_str(&problems.join("; ")),
        }
    }
}

/// Validates arguments against the function's schema. `Err` says which
/// argument is wrong and why, for the AI to ask the caller again.
pub fn validate_arguments(function: &Function, args: &Value) -> Result<(), InvalidArguments> {
    if !args.is_object() {
        return Err(InvalidArguments::NotAnObject);
    }
    // Nearly every call is valid; `is_valid` answers that without building
    // the error iterator.
    if function.validator.is_valid(args) {
        return Ok(());
    }
    // The validator quotes the value an error is about, which must not come
    // back when it holds a `sensitive` one (a mistyped PIN is still most of a
    // PIN): the value itself, one inside it, or the whole object for errors
    // at the top (`anyOf`, `maxProperties`, ... quote it all). `required`
    // and `additionalProperties` name properties only.
    let redacted = crate::audit::redact(&function.parameters, args);
    let hides = |e: &jsonschema::ValidationError<'_>, path: &str| {
        use jsonschema::error::ValidationErrorKind as Kind;
        !matches!(
            e.kind(),
            Kind::Required { .. } | Kind::AdditionalProperties { .. }
        ) && redacted.pointer(path) != args.pointer(path)
    };
    let problems: Vec<String> = function
        .validator
        .iter_errors(args)
        .take(3)
        .map(|e| {
            let path = e.instance_path().to_string();
            let name = short(&path.trim_start_matches('/').replace('/', "."), 64);
            if hides(&e, &path) {
                return if name.is_empty() {
                    "the arguments do not fit the function (not repeated: they hold a sensitive value)".to_owned()
                } else {
                    format!("the argument `{name}` is invalid (a sensitive value, not repeated)")
                };
            }
            // A caller's 100 KB value must not come back whole to the AI
            // (or into logs).
            let why = short(&e.to_string(), 200);
            if name.is_empty() {
                why
            } else {
                format!("the argument `{name}` is invalid: {why}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidArguments::Problems(problems))
    }
}

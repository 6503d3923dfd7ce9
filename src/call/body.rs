//! What swagent reads of a platform request body, parsed in one pass.
//!
//! The platform posts a JSON object with many fields (`app_name`, `purpose`,
//! `argument_desc`, `caller_id_num`, ...). [`CallBody`] keeps only the ones
//! swagent uses; the others are checked exactly as a `serde_json::Value`
//! parse checks them (syntax, UTF-8, escapes, numbers) and dropped without
//! being built, which building a whole tree cost on every call. A body is
//! accepted or refused exactly as before, and a repeated key keeps its last
//! value, as in the `Value` it replaced (the hostile catalogue pins both).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{json, Value};

/// The scalar `visit_*` methods of a visitor that takes any scalar as `$value`
/// (the string already checked by the parser before it is visited).
macro_rules! accept_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Why a body is not a [`CallBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all (syntax, truncation, trailing data, nesting too deep).
    NotJson,
    /// JSON, but not an object.
    NotObject,
}

/// The fields of a SWAIG, SWML or post-prompt request swagent reads. Each is
/// the raw value as sent; the accessors below decide what it means.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallBody {
    pub function: Option<Value>,
    argument: Option<Argument>,
    call_id: Option<Value>,
    call: Option<Value>,
    pub global_data: Option<Value>,
    pub meta_data: Option<Value>,
    pub post_prompt_data: Option<Value>,
    caller_id_num: Option<Value>,
}

impl CallBody {
    /// The body of a call made by hand (`swagent call`): the function, the
    /// call id and the arguments, as the platform would send them.
    pub fn local(function: &str, call_id: &str, args: Value) -> CallBody {
        CallBody {
            function: Some(Value::from(function)),
            argument: Some(Argument {
                parsed: Some(Value::Array(vec![args])),
                raw: None,
            }),
            call_id: Some(Value::from(call_id)),
            ..CallBody::default()
        }
    }

    /// Parses a request body.
    pub fn parse(bytes: &[u8]) -> Result<CallBody, BodyError> {
        serde_json::from_slice(bytes).map_err(|_| {
            // Not an object is reported at the first value, before the rest
            // (`6 garbage`) is read: only a whole, valid document is JSON.
            match serde_json::from_slice::<Checked>(bytes) {
                Ok(Checked) => BodyError::NotObject,
                Err(_) => BodyError::NotJson,
            }
        })
    }

    /// The call id the request names: `call_id`, or `call.call_id`.
    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_ref().and_then(Value::as_str).or_else(|| {
            self.call
                .as_ref()
                .and_then(|c| c.get("call_id"))
                .and_then(Value::as_str)
        })
    }

    /// The `call` object of a SWML request (`from`, `to`, `direction`, ...).
    pub fn call(&self) -> Option<&Value> {
        self.call.as_ref().filter(|c| c.is_object())
    }

    /// The number the call came from (`caller_id_num`), when it is an E.164
    /// number: not `anonymous`, not a SIP address.
    pub fn caller_number(&self) -> Option<&str> {
        self.caller_id_num
            .as_ref()
            .and_then(Value::as_str)
            .filter(|n| crate::agent::actions::is_e164(n))
    }

    /// The summary of a post-prompt body: `post_prompt_data.raw`, else
    /// `post_prompt_data.parsed[0]` as JSON text, else empty.
    pub fn summary(&self) -> String {
        let data = self.post_prompt_data.as_ref();
        data.and_then(|d| d.get("raw"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                data.and_then(|d| d.pointer("/parsed/0"))
                    .map(Value::to_string)
            })
            .unwrap_or_default()
    }

    /// The function's arguments: `argument.parsed[0]`, else `argument.raw`
    /// (a JSON string), else none. `Err` is a message for the AI.
    pub fn arguments(&self) -> Result<Value, String> {
        let arg = self.argument.as_ref();
        if let Some(parsed) = arg.and_then(|a| a.parsed.as_ref()).and_then(|p| p.get(0)) {
            return Ok(parsed.clone());
        }
        match arg.and_then(|a| a.raw.as_ref()) {
            Some(Value::String(raw)) if !raw.trim().is_empty() => {
                serde_json::from_str(raw).map_err(|_| super::say::ARGUMENTS_NOT_JSON.to_string())
            }
            _ => Ok(json!({})),
        }
    }
}

impl<'de> Deserialize<'de> for CallBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CallBodyVisitor)
    }
}

struct CallBodyVisitor;

impl<'de> Visitor<'de> for CallBodyVisitor {
    type Value = CallBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CallBody, A::Error> {
        let mut body = CallBody::default();
        while let Some(Key(key)) = map.next_key()? {
            match key {
                Some("function") => body.function = Some(map.next_value()?),
                Some("argument") => body.argument = Some(map.next_value()?),
                Some("call_id") => body.call_id = Some(map.next_value()?),
                Some("call") => body.call = Some(map.next_value()?),
                Some("global_data") => body.global_data = Some(map.next_value()?),
                Some("meta_data") => body.meta_data = Some(map.next_value()?),
                Some("post_prompt_data") => body.post_prompt_data = Some(map.next_value()?),
                Some("caller_id_num") => body.caller_id_num = Some(map.next_value()?),
                _ => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(body)
    }
}

/// `argument`'s `parsed` and `raw` when it is an object; any other value
/// counts as absent, as `Value::get` on it would.
#[derive(Debug, Default, Clone, PartialEq)]
struct Argument {
    parsed: Option<Value>,
    raw: Option<Value>,
}

impl<'de> Deserialize<'de> for Argument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ArgumentVisitor)
    }
}

struct ArgumentVisitor;

impl<'de> Visitor<'de> for ArgumentVisitor {
    type Value = Argument;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Argument, A::Error> {
        let mut arg = Argument::default();
        while let Some(Key(key)) = map.next_key()? {
            match key {
                Some("parsed") => arg.parsed = Some(map.next_value()?),
                Some("raw") => arg.raw = Some(map.next_value()?),
                _ => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(arg)
    }

    // Not an object: read through (checked) and treated as absent.
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Argument, A::Error> {
        CheckedVisitor.visit_seq(seq).map(|_| Argument::default())
    }
    accept_scalars!(Argument::default());
}

/// A value that is read to the end and dropped, with every string in it
/// checked as a `Value` would check it. `IgnoredAny` does not look inside
/// strings: a body with invalid UTF-8 or a lone surrogate in a skipped field
/// would pass, where a whole-`Value` parse refuses it.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    accept_scalars!(Checked);
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// A key of the body: one of the names swagent reads, matched without
/// allocating, or `None`.
struct Key(Option<&'static str>);

const KEYS: [&str; 10] = [
    "function",
    "argument",
    "call_id",
    "call",
    "global_data",
    "meta_data",
    "post_prompt_data",
    "caller_id_num",
    "parsed",
    "raw",
];

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(Key(KEYS.into_iter().find(|k| *k == key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::{BodyError, CallBody};

    /// The reference: what the same reads give on a whole `Value`.
    fn reference(bytes: &[u8]) -> Result<Value, BodyError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(BodyError::NotObject),
            Err(_) => Err(BodyError::NotJson),
        }
    }

    /// Asserts that [`CallBody`] accepts, refuses and reads `bytes` as a
    /// whole-`Value` parse does.
    fn agrees(bytes: &[u8]) {
        let ours = CallBody::parse(bytes);
        let show = String::from_utf8_lossy(bytes);
        match reference(bytes) {
            Err(e) => assert_eq!(ours.err(), Some(e), "{show}"),
            Ok(v) => {
                let body = ours.unwrap_or_else(|e| panic!("{show}: {e:?}"));
                assert_eq!(body.function.as_ref(), v.get("function"), "{show}");
                assert_eq!(body.global_data.as_ref(), v.get("global_data"), "{show}");
                assert_eq!(body.meta_data.as_ref(), v.get("meta_data"), "{show}");
                assert_eq!(
                    body.post_prompt_data.as_ref(),
                    v.get("post_prompt_data"),
                    "{show}"
                );
                let call_id = v
                    .get("call_id")
                    .and_then(Value::as_str)
                    .or_else(|| v.pointer("/call/call_id").and_then(Value::as_str));
                assert_eq!(body.call_id(), call_id, "{show}");
                let arg = v.get("argument");
                let want = match arg.and_then(|a| a.get("parsed")).and_then(|p| p.get(0)) {
                    Some(parsed) => Ok(parsed.clone()),
                    None => match arg.and_then(|a| a.get("raw")) {
                        Some(Value::String(raw)) if !raw.trim().is_empty() => {
                            serde_json::from_str(raw).map_err(|_| ())
                        }
                        _ => Ok(json!({})),
                    },
                };
                assert_eq!(body.arguments().map_err(|_| ()), want, "{show}");
            }
        }
    }

    /// JSON values with the keys swagent reads showing up at every level.
    fn json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            prop::sample::select(vec![
                "function",
                "argument",
                "call_id",
                "call",
                "global_data",
                "meta_data",
                "post_prompt_data",
                "parsed",
                "raw",
                "other",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,4}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
            Just(Value::from("{\"a\":1}")),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_a_value_tree_on_any_json(v in json()) {
            agrees(serde_json::to_string(&v).unwrap().as_bytes());
        }

        #[test]
        fn agrees_with_a_value_tree_on_any_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            prefix in prop::sample::select(vec![&b""[..], b"{\"function\":", b"{\"argument\":{\"raw\":"]),
        ) {
            agrees(&[prefix, &bytes[..]].concat());
        }
    }

    #[test]
    fn reads_what_a_value_tree_would() {
        let cases: &[&[u8]] = &[
            br#"{"function":"f","argument":{"parsed":[{"a":1}],"raw":"{}"},"call_id":"c1"}"#,
            br#"{"function":"f","function":"g","call_id":"c1","call_id":7}"#,
            br#"{"call":{"call_id":"c2"},"app_name":"x","purpose":{"deep":[1,2,{"z":null}]}}"#,
            br#"{"call_id":"c1","call":{"call_id":"c2"},"global_data":{"k":"v"},"meta_data":[1]}"#,
            br#"{"argument":{"raw":"{\"b\":2}"},"post_prompt_data":{"raw":"done"}}"#,
            br#"{"argument":"not an object","f\u0075nction":"escaped-key"}"#,
            br#"{"argument":[{"parsed":[1]}],"function":"f"}"#,
            br#"{"argument":{"parsed":{"0":1},"raw":"[1]","other":["\u00e9"]}}"#,
            br#"{"argument":{"parsed":[{"a":1}],"parsed":[{"a":2}]}}"#,
            br#"{"argument":{"pa\u0072sed":[{"a":3}]}}"#,
            br#"{"argument":{"other":"\ud800"}}"#,
            br#"{"argument":[1,"\ud800"]}"#,
            br#"{}"#,
            br#"  {"function" : "f" }  "#,
            br#"[]"#,
            br#""text""#,
            br#"42"#,
            br#"6 garbage"#,
            br#"[] {}"#,
            br#"null"#,
            br#"{"function":"f""#,
            br#"{"function":"f"} trailing"#,
            br#"{"a":[1,2,}"#,
            b"",
            b"\xff",
            b"{\"function\":\"f\",\"skipped\":\"\xff\"}",
            br#"{"function":"f","skipped":{"deep":["\ud800"]}}"#,
            br#"{"function":"f","skipped":{"\ud800":1}}"#,
            br#"{"function":"f","skipped":[1e999]}"#,
            br#"{"function":"f","skipped":"\u00e9\n"}"#,
        ];
        for bytes in cases {
            agrees(bytes);
        }
    }

    #[test]
    fn arguments_come_from_parsed_then_raw() {
        let args = |b: &[u8]| CallBody::parse(b).unwrap().arguments();
        assert_eq!(
            args(br#"{"argument":{"parsed":[{"a":1}],"raw":"{\"a\":2}"}}"#),
            Ok(json!({"a":1}))
        );
        assert_eq!(
            args(br#"{"argument":{"parsed":[],"raw":"{\"a\":2}"}}"#),
            Ok(json!({"a":2}))
        );
        assert_eq!(args(br#"{"argument":{"raw":"  "}}"#), Ok(json!({})));
        assert_eq!(args(br#"{}"#), Ok(json!({})));
        assert_eq!(
            args(br#"{"argument":{"raw":"{nope"}}"#),
            Err("The arguments were not valid JSON. Please try again.".to_string())
        );
    }
}

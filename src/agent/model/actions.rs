//! Actions as written: what a function lets its handler's output do
//! (`actions_from_output`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// `actions_from_output`: the action kinds a handler's output may carry,
/// `[say, hangup]`, or by kind with the targets allowed,
/// `{ change_step: [choose, locked], set_global_data: true }`.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum OutputActionsFile {
    Kinds(Vec<String>),
    ByKind(IndexMap<String, TargetsFile>),
}

/// A kind's targets: any (`true`), none (`false`), or these names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TargetsFile {
    Any(bool),
    Only(Vec<String>),
}

impl OutputActionsFile {
    /// Each kind with its targets (`None`: any), in the file's order; a
    /// kind given `false` is left out.
    pub fn kinds(&self) -> Vec<(String, Option<Vec<String>>)> {
        match self {
            OutputActionsFile::Kinds(kinds) => kinds.iter().map(|k| (k.clone(), None)).collect(),
            OutputActionsFile::ByKind(map) => map
                .iter()
                .filter_map(|(k, t)| match t {
                    TargetsFile::Any(true) => Some((k.clone(), None)),
                    TargetsFile::Any(false) => None,
                    TargetsFile::Only(names) => Some((k.clone(), Some(names.clone()))),
                })
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OutputActionsFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OutputActionsFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of action kinds (`[say, hangup]`), or kinds with their targets (`{ change_step: [a, b], say: true }`)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(OutputActionsFile::Kinds)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                IndexMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OutputActionsFile::ByKind)
            }
        }
        d.deserialize_any(V)
    }
}

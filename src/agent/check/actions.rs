//! The checks of `actions_from_output`: kinds swagent knows, never one that
//! moves or bills the call, targets only where a kind has them, and targets
//! that name a function, step or context of the file.

use indexmap::IndexMap;

use super::Checker;
use crate::agent::actions::{OutputActions, OutputKind, NEVER};
use crate::agent::contexts::Contexts;
use crate::agent::model::OutputActionsFile;
use crate::agent::Function;

impl Checker<'_> {
    /// A function's `actions_from_output`, its kinds checked.
    pub(super) fn output_actions(
        &mut self,
        function: &str,
        raw: Option<OutputActionsFile>,
    ) -> OutputActions {
        let at = ["functions", function, "actions_from_output"];
        let mut out: Vec<(OutputKind, Option<Vec<String>>)> = Vec::new();
        let listed = matches!(raw, Some(OutputActionsFile::Kinds(_)));
        for (i, (name, targets)) in raw
            .map(|r| r.kinds())
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            // A list item, or a key of the mapping.
            let pos = match listed {
                true => self
                    .spans
                    .value(&[&at[..], &[i.to_string().as_str()]].concat()),
                false => self.spans.key(&[&at[..], &[name.as_str()]].concat()),
            };
            if NEVER.contains(&name.as_str()) {
                self.error(pos, format!("function `{function}`: `{name}` can never come from a handler's output: it moves or bills the call, and a caller who steers the output could use it; destinations stay in the agent file"));
                continue;
            }
            let Some(kind) = OutputKind::named(&name) else {
                let all = OutputKind::names().join(", ");
                self.error(pos, format!("function `{function}`: `{name}` is not an action kind output may carry ({all})"));
                continue;
            };
            if out.iter().any(|(k, _)| *k == kind) {
                self.error(
                    pos,
                    format!("function `{function}`: `{name}` is listed twice"),
                );
                continue;
            }
            if targets.is_some() && !kind.has_targets() {
                self.error(
                    pos,
                    format!(
                        "function `{function}`: `{name}` has no targets to list: give it `true`"
                    ),
                );
                continue;
            }
            out.push((kind, targets));
        }
        OutputActions(out)
    }

    /// The targets `actions_from_output` lists name what the file has, and
    /// `change_step`/`change_context` have contexts to move in.
    pub(super) fn action_targets(
        &mut self,
        functions: &IndexMap<String, Function>,
        contexts: Option<&Contexts>,
    ) {
        let steps: Vec<&str> = contexts
            .into_iter()
            .flat_map(|c| c.0.values())
            .flat_map(|c| c.steps.iter().map(|s| s.name.as_str()))
            .collect();
        let context_names: Vec<&str> = contexts
            .into_iter()
            .flat_map(|c| c.0.keys())
            .map(String::as_str)
            .collect();
        for (name, f) in functions {
            for (kind, targets) in &f.output_actions.0 {
                let at = [
                    "functions",
                    name.as_str(),
                    "actions_from_output",
                    kind.name(),
                ];
                let known: Vec<&str> = match kind {
                    OutputKind::ToggleFunctions => functions.keys().map(String::as_str).collect(),
                    OutputKind::ChangeStep => steps.clone(),
                    OutputKind::ChangeContext => context_names.clone(),
                    _ => continue,
                };
                if contexts.is_none() && *kind != OutputKind::ToggleFunctions {
                    let pos = self.spans.key(&at);
                    self.error(
                        pos,
                        format!(
                            "function `{name}`: `{}` needs `contexts` to move in",
                            kind.name()
                        ),
                    );
                    continue;
                }
                for (i, target) in targets.iter().flatten().enumerate() {
                    if !known.contains(&target.as_str()) {
                        let pos = self
                            .spans
                            .value(&[&at[..], &[i.to_string().as_str()]].concat());
                        self.error(
                            pos,
                            format!(
                                "function `{name}`: `{target}` is not a {} of this agent",
                                match kind {
                                    OutputKind::ToggleFunctions => "function",
                                    OutputKind::ChangeStep => "step",
                                    _ => "context",
                                }
                            ),
                        );
                    }
                }
            }
        }
    }
}

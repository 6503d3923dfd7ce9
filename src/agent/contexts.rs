//! Contexts and steps, validated: every name a step or context uses names a
//! step, context or function that exists, `default` is there, and each
//! context has steps. Also what the conversation can reach from where it
//! starts ([`Contexts::unreachable`]), for the load-time warnings and
//! `swagent graph`.

use std::collections::BTreeSet;

use indexmap::IndexMap;

use super::ai::Fillers;
pub use super::model::History;

/// The contexts, `default` among them, in the file's order.
#[derive(Debug, Clone)]
pub struct Contexts(pub IndexMap<String, Context>);

/// One context.
#[derive(Debug, Clone)]
pub struct Context {
    pub prompt: Option<ContextPrompt>,
    pub system_prompt: Option<String>,
    pub user_prompt: Option<String>,
    pub post_prompt: Option<String>,
    pub consolidate: bool,
    pub full_reset: bool,
    pub isolated: bool,
    pub history: Option<History>,
    pub initial_step: Option<String>,
    pub valid_contexts: Option<Vec<String>>,
    pub valid_steps: Option<Vec<String>>,
    pub enter_fillers: Option<Fillers>,
    pub exit_fillers: Option<Fillers>,
    /// At least one.
    pub steps: Vec<Step>,
}

/// A context's own prompt: text (SWML `prompt`) or sections (`pom`).
#[derive(Debug, Clone)]
pub enum ContextPrompt {
    Text(String),
    /// Each a title with a body or bullets.
    Pom(Vec<(String, SectionText)>),
}

/// A step's or context's section content: a body, or bullets.
#[derive(Debug, Clone)]
pub enum SectionText {
    Body(String),
    Bullets(Vec<String>),
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// The instructions; sections are made markdown text, as the SDK does.
    pub text: String,
    pub step_criteria: Option<String>,
    /// `None`: the functions of the step before stay callable.
    pub functions: Option<StepFunctions>,
    pub valid_steps: Option<Vec<String>>,
    pub valid_contexts: Option<Vec<String>>,
    pub skip_user_turn: bool,
    pub end: bool,
    pub skip_to_next_step: bool,
    pub history: Option<History>,
    pub reset: Option<Reset>,
    pub gather_info: Option<GatherInfo>,
}

/// A step's callable functions: these, or none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFunctions {
    List(Vec<String>),
    Off,
}

/// What replaces the prompts on entering a step.
#[derive(Debug, Clone, Default)]
pub struct Reset {
    pub system_prompt: Option<String>,
    pub user_prompt: Option<String>,
    pub consolidate: bool,
    pub full_reset: bool,
}

/// Questions asked one at a time.
#[derive(Debug, Clone)]
pub struct GatherInfo {
    /// At least one, keys unique.
    pub questions: Vec<Question>,
    pub output_key: Option<String>,
    /// `next_step` (a step follows), or a step of this context.
    pub completion_action: Option<String>,
    pub prompt: Option<String>,
}

/// One question.
#[derive(Debug, Clone)]
pub struct Question {
    pub key: String,
    pub question: String,
    /// `None` for the default, `string`.
    pub kind: Option<String>,
    pub confirm: bool,
    pub prompt: Option<String>,
    pub functions: Vec<String>,
}

/// A step, as (context, step) names.
pub type StepRef = (String, String);

/// Where functions' actions can move the conversation: `change_step` and
/// `change_context` of the file's actions and outcomes, and the targets
/// `actions_from_output` allows (all, when it names none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionMoves {
    /// Steps (by name, in whichever context is current).
    pub steps: Targets,
    pub contexts: Targets,
}

/// Names an action can move to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Targets {
    #[default]
    None,
    Named(BTreeSet<String>),
    Any,
}

impl Targets {
    /// Adds `names` (`None`: any name).
    pub fn add(&mut self, names: Option<&[String]>) {
        match (names, &mut *self) {
            (_, Targets::Any) => {}
            (None, _) => *self = Targets::Any,
            (Some(names), Targets::Named(set)) => set.extend(names.iter().cloned()),
            (Some(names), Targets::None) => *self = Targets::Named(names.iter().cloned().collect()),
        }
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Targets::None => false,
            Targets::Named(set) => set.contains(name),
            Targets::Any => true,
        }
    }
}

impl ActionMoves {
    /// The moves of every function's actions, outcomes and output targets.
    pub fn of(functions: &indexmap::IndexMap<String, crate::agent::Function>) -> ActionMoves {
        use crate::agent::actions::{Action, OutputKind};
        let mut moves = ActionMoves::default();
        for f in functions.values() {
            for action in f.actions.iter().chain(f.outcomes.values().flatten()) {
                match action {
                    Action::ChangeStep(s) => moves.steps.add(Some(std::slice::from_ref(s))),
                    Action::ChangeContext(c) => moves.contexts.add(Some(std::slice::from_ref(c))),
                    _ => {}
                }
            }
            for (kind, targets) in &f.output_actions.0 {
                match kind {
                    OutputKind::ChangeStep => moves.steps.add(targets.as_deref()),
                    OutputKind::ChangeContext => moves.contexts.add(targets.as_deref()),
                    _ => {}
                }
            }
        }
        moves
    }
}

impl Context {
    /// Where the context starts: `initial_step`, else the first step.
    pub fn entry(&self) -> &str {
        self.initial_step
            .as_deref()
            .unwrap_or_else(|| &self.steps[0].name)
    }

    /// The steps step `i` may move to within this context: its
    /// `valid_steps`, else the context's (`next` being the following step);
    /// with neither set, the following step unless it `end`s, and an empty
    /// list is a dead end. `gather_info`'s completion and
    /// `skip_to_next_step` move on too.
    pub fn moves(&self, i: usize) -> Vec<&str> {
        let step = &self.steps[i];
        let next = self.steps.get(i + 1).map(|s| s.name.as_str());
        let mut out: Vec<&str> = Vec::new();
        match step.valid_steps.as_ref().or(self.valid_steps.as_ref()) {
            Some(listed) => {
                for name in listed {
                    match name.as_str() {
                        "next" => out.extend(next),
                        name => out.push(name),
                    }
                }
            }
            None if !step.end => out.extend(next),
            None => {}
        }
        if step.skip_to_next_step {
            out.extend(next);
        }
        match step
            .gather_info
            .as_ref()
            .and_then(|g| g.completion_action.as_deref())
        {
            Some("next_step") => out.extend(next),
            Some(name) => out.push(name),
            None => {}
        }
        let mut seen = BTreeSet::new();
        out.retain(|n| seen.insert(*n));
        out
    }

    /// The contexts step `i` may move to: its own `valid_contexts`, else the
    /// context's (the step's list replaces the context's, as in the SDK);
    /// none from a step that `end`s, which leaves step mode.
    pub fn switches(&self, i: usize) -> Vec<&str> {
        if self.steps[i].end {
            return Vec::new();
        }
        let mut seen = BTreeSet::new();
        self.steps[i]
            .valid_contexts
            .as_ref()
            .or(self.valid_contexts.as_ref())
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|c| seen.insert(*c))
            .collect()
    }
}

impl Contexts {
    /// The contexts never entered, and the steps of entered contexts the
    /// conversation cannot reach, starting at `default`'s entry; a
    /// function's action can also move it (`moves`).
    pub fn unreachable(&self, moves: &ActionMoves) -> (Vec<String>, Vec<StepRef>) {
        let mut entered: BTreeSet<&str> = BTreeSet::new();
        let mut reached: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut todo: Vec<&str> = vec!["default"];
        todo.extend(
            self.0
                .keys()
                .map(String::as_str)
                .filter(|c| moves.contexts.has(c)),
        );
        while let Some(name) = todo.pop() {
            let Some(context) = self.0.get(name) else {
                continue;
            };
            if !entered.insert(name) {
                continue;
            }
            let mut steps = vec![context.entry()];
            let moved = context.steps.iter().map(|s| s.name.as_str());
            steps.extend(moved.filter(|s| moves.steps.has(s)));
            while let Some(step) = steps.pop() {
                if !reached.insert((name, step)) {
                    continue;
                }
                let Some(i) = context.steps.iter().position(|s| s.name == step) else {
                    continue;
                };
                steps.extend(context.moves(i));
                todo.extend(context.switches(i));
            }
        }
        let contexts = self
            .0
            .keys()
            .filter(|c| !entered.contains(c.as_str()))
            .cloned()
            .collect();
        let steps = self
            .0
            .iter()
            .filter(|(c, _)| entered.contains(c.as_str()))
            .flat_map(|(c, context)| {
                context
                    .steps
                    .iter()
                    .filter(|s| !reached.contains(&(c.as_str(), s.name.as_str())))
                    .map(|s| (c.clone(), s.name.clone()))
            })
            .collect();
        (contexts, steps)
    }
}

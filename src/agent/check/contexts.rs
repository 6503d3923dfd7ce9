//! The checks of contexts and steps: `default` is there, every name a step
//! or context uses names what exists (steps, contexts, functions), step
//! names are unique, `gather_info` is sound; steps nothing reaches and
//! contexts nothing enters are warnings (errors with `--strict`).

use indexmap::IndexMap;

use super::Checker;
use crate::agent::contexts::{
    ActionMoves, Context, ContextPrompt, Contexts, GatherInfo, Question, Reset, SectionText, Step,
    StepFunctions,
};
use crate::agent::model::{
    ContextFile, GatherInfoFile, StepFile, StepFunctions as FunctionsFile, StepSection,
};

/// Function names the platform gives itself when contexts are used.
pub(super) const RESERVED: [&str; 3] = ["next_step", "change_context", "gather_submit"];

/// The SDK's limits (`MAX_CONTEXTS`, `MAX_STEPS_PER_CONTEXT` in its
/// `contexts.py`); they also bound the work of the checks below.
const MAX_CONTEXTS: usize = 50;
const MAX_STEPS: usize = 100;

impl Checker<'_> {
    /// With contexts, the platform adds functions of these names: one of
    /// the agent's would be shadowed.
    pub(super) fn reserved_names(&mut self, functions: &[&str]) {
        for name in functions.iter().filter(|f| RESERVED.contains(f)) {
            let pos = self.spans.key(&["functions", name]);
            self.error(pos, format!("function `{name}`: with `contexts`, the platform gives the AI a function of this name"));
        }
    }

    /// The contexts, checked against each other and `functions` (the
    /// agent's function names).
    pub(super) fn contexts(
        &mut self,
        raw: IndexMap<String, ContextFile>,
        functions: &[&str],
        moves: &ActionMoves,
    ) -> Option<Contexts> {
        if !raw.contains_key("default") {
            let pos = self.spans.key(&["contexts"]);
            self.error(
                pos,
                "`contexts` needs a `default` context: the conversation starts there",
            );
        }
        if raw.len() > MAX_CONTEXTS {
            let pos = self.spans.key(&["contexts"]);
            self.error(
                pos,
                format!(
                    "{} contexts: at most {MAX_CONTEXTS} (the SDK's limit)",
                    raw.len()
                ),
            );
            return None;
        }
        let names: Vec<String> = raw.keys().cloned().collect();
        let mut out = IndexMap::new();
        for (name, c) in raw {
            let context = self.context(&name, c, &names, functions)?;
            out.insert(name, context);
        }
        let contexts = Contexts(out);
        self.reach(&contexts, moves);
        Some(contexts)
    }

    fn context(
        &mut self,
        name: &str,
        c: ContextFile,
        contexts: &[String],
        functions: &[&str],
    ) -> Option<Context> {
        let at = ["contexts", name];
        if c.steps.is_empty() {
            let pos = self.spans.value(&["contexts", name, "steps"]);
            self.error(
                pos,
                format!("context `{name}` has no steps: give it at least one"),
            );
            return None;
        }
        if c.steps.len() > MAX_STEPS {
            let pos = self.spans.value(&["contexts", name, "steps"]);
            let n = c.steps.len();
            self.error(
                pos,
                format!("context `{name}` has {n} steps: at most {MAX_STEPS} (the SDK's limit)"),
            );
            return None;
        }
        let step_names: Vec<String> = c.steps.iter().map(|s| s.name.clone()).collect();
        let prompt = self.context_prompt(name, c.text, c.sections);
        self.names(
            &[&at[..], &["valid_contexts"]].concat(),
            c.valid_contexts.as_deref(),
            contexts,
            "context",
        );
        self.step_refs(
            name,
            &[&at[..], &["valid_steps"]].concat(),
            c.valid_steps.as_deref(),
            &step_names,
        );
        // An `initial_step` that names no step is an error; the reach
        // warnings then start at the first step, not at nothing.
        let initial_step = c.initial_step.filter(|initial| {
            let known = step_names.contains(initial);
            if !known {
                let pos = self.spans.value(&["contexts", name, "initial_step"]);
                self.error(
                    pos,
                    format!("context `{name}`: `initial_step` `{initial}` is not one of its steps"),
                );
            }
            known
        });
        let enter_fillers = c
            .enter_fillers
            .and_then(|f| self.fillers(&["contexts", name, "enter_fillers"], f, false));
        let exit_fillers = c
            .exit_fillers
            .and_then(|f| self.fillers(&["contexts", name, "exit_fillers"], f, false));
        let mut steps = Vec::new();
        for (i, s) in c.steps.into_iter().enumerate() {
            let step = self.step(name, i, s, &step_names, contexts, functions)?;
            if steps.iter().any(|other: &Step| other.name == step.name) {
                let pos = self
                    .spans
                    .value(&["contexts", name, "steps", &i.to_string(), "name"]);
                self.error(
                    pos,
                    format!("context `{name}` has two steps named `{}`", step.name),
                );
            }
            steps.push(step);
        }
        Some(Context {
            prompt,
            system_prompt: c.system_prompt,
            user_prompt: c.user_prompt,
            post_prompt: c.post_prompt,
            consolidate: c.consolidate.unwrap_or(false),
            full_reset: c.full_reset.unwrap_or(false),
            isolated: c.isolated.unwrap_or(false),
            history: c.history,
            initial_step,
            valid_contexts: c.valid_contexts.map(unique),
            valid_steps: c.valid_steps.map(unique),
            enter_fillers,
            exit_fillers,
            steps,
        })
    }

    /// A context's own prompt: `text` or non-empty `sections`, not both.
    fn context_prompt(
        &mut self,
        name: &str,
        text: Option<String>,
        sections: Option<Vec<StepSection>>,
    ) -> Option<ContextPrompt> {
        let at = ["contexts", name];
        match (text, sections) {
            (Some(text), None) => Some(ContextPrompt::Text(text)),
            (None, Some(sections)) if sections.is_empty() => {
                let pos = self.spans.value(&[&at[..], &["sections"]].concat());
                let msg = format!(
                    "context `{name}`: `sections` is empty: give at least one, or leave it out"
                );
                self.error(pos, msg);
                None
            }
            (None, Some(sections)) => Some(ContextPrompt::Pom(
                self.step_sections(&[&at[..], &["sections"]].concat(), sections),
            )),
            (None, None) => None,
            (Some(_), Some(_)) => {
                let pos = self.spans.key(&at);
                let msg =
                    format!("context `{name}` has both `text` and `sections`: use one of them");
                self.error(pos, msg);
                None
            }
        }
    }

    fn step(
        &mut self,
        context: &str,
        i: usize,
        s: StepFile,
        steps: &[String],
        contexts: &[String],
        functions: &[&str],
    ) -> Option<Step> {
        let index = i.to_string();
        let at: Vec<&str> = vec!["contexts", context, "steps", &index];
        let field = |k: &'static str| -> Vec<&str> { [at.as_slice(), &[k]].concat() };
        if s.name.trim().is_empty() || s.name == "next" || s.name.chars().any(char::is_control) {
            let pos = self.spans.value(&field("name"));
            self.error(pos, format!("context `{context}`: a step's `name` must be one line, not empty and not `next` (`next` means the following step)"));
        }
        let text = match (s.text, s.sections) {
            (Some(text), None) => text,
            (None, Some(sections)) if !sections.is_empty() => {
                markdown(&self.step_sections(&field("sections"), sections))
            }
            _ => {
                let pos = self.spans.key(&at);
                self.error(
                    pos,
                    format!(
                        "step `{}` of context `{context}` needs `text` or `sections` (one of them)",
                        s.name
                    ),
                );
                return None;
            }
        };
        if let Some(FunctionsFile::List(list)) = &s.functions {
            self.names(
                &field("functions"),
                Some(list),
                &functions.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                "function",
            );
        }
        if s.end == Some(true) && s.valid_steps.as_ref().is_some_and(|v| !v.is_empty()) {
            let pos = self.spans.key(&field("valid_steps"));
            self.error(
                pos,
                format!("step `{}`: a step that `end`s has no `valid_steps`", s.name),
            );
        }
        self.step_refs(
            context,
            &field("valid_steps"),
            s.valid_steps.as_deref(),
            steps,
        );
        self.names(
            &field("valid_contexts"),
            s.valid_contexts.as_deref(),
            contexts,
            "context",
        );
        let gather_info = match s.gather_info {
            Some(g) => Some(self.gather_info(context, &s.name, i, g, steps, functions)?),
            None => None,
        };
        Some(Step {
            name: s.name,
            text,
            step_criteria: s.step_criteria,
            functions: s.functions.map(|f| match f {
                FunctionsFile::List(l) => StepFunctions::List(l),
                FunctionsFile::Off => StepFunctions::Off,
            }),
            valid_steps: s.valid_steps.map(unique),
            valid_contexts: s.valid_contexts.map(unique),
            skip_user_turn: s.skip_user_turn.unwrap_or(false),
            end: s.end.unwrap_or(false),
            skip_to_next_step: s.skip_to_next_step.unwrap_or(false),
            history: s.history,
            reset: s.reset.map(|r| Reset {
                system_prompt: r.system_prompt,
                user_prompt: r.user_prompt,
                consolidate: r.consolidate.unwrap_or(false),
                full_reset: r.full_reset.unwrap_or(false),
            }),
            gather_info,
        })
    }

    fn gather_info(
        &mut self,
        context: &str,
        step: &str,
        i: usize,
        g: GatherInfoFile,
        steps: &[String],
        functions: &[&str],
    ) -> Option<GatherInfo> {
        let index = i.to_string();
        let at: Vec<&str> = vec!["contexts", context, "steps", &index, "gather_info"];
        if g.questions.is_empty() {
            let pos = self.spans.value(&[at.as_slice(), &["questions"]].concat());
            self.error(
                pos,
                format!("step `{step}`: `gather_info` needs at least one question"),
            );
            return None;
        }
        let mut questions: Vec<Question> = Vec::new();
        let names: Vec<String> = functions.iter().map(|f| f.to_string()).collect();
        for (q, question) in g.questions.into_iter().enumerate() {
            let qi = q.to_string();
            let here: Vec<&str> = [at.as_slice(), &["questions", &qi]].concat();
            if questions.iter().any(|other| other.key == question.key) {
                let pos = self.spans.value(&[here.as_slice(), &["key"]].concat());
                self.error(
                    pos,
                    format!(
                        "step `{step}`: two questions have the key `{}`",
                        question.key
                    ),
                );
            }
            self.names(
                &[here.as_slice(), &["functions"]].concat(),
                question.functions.as_deref(),
                &names,
                "function",
            );
            questions.push(Question {
                key: question.key,
                question: question.question,
                kind: question.kind.filter(|k| k != "string"),
                confirm: question.confirm.unwrap_or(false),
                prompt: question.prompt.filter(|p| !p.is_empty()),
                functions: question.functions.unwrap_or_default(),
            });
        }
        match g.completion_action.as_deref() {
            Some("next_step") if i + 1 >= steps.len() => {
                let pos = self
                    .spans
                    .value(&[at.as_slice(), &["completion_action"]].concat());
                self.error(pos, format!("step `{step}`: `completion_action: next_step`, but it is the last step of context `{context}`"));
            }
            Some("next_step") | None => {}
            Some(name) if !steps.iter().any(|s| s == name) => {
                let pos = self
                    .spans
                    .value(&[at.as_slice(), &["completion_action"]].concat());
                self.error(pos, format!("step `{step}`: `completion_action` `{name}` is not `next_step` or a step of context `{context}`"));
            }
            Some(_) => {}
        }
        Some(GatherInfo {
            questions,
            output_key: g.output_key,
            completion_action: g.completion_action,
            prompt: g.prompt,
        })
    }

    /// Each of `given` is one of `known`, once; `what` names what they are.
    fn names(&mut self, at: &[&str], given: Option<&[String]>, known: &[String], what: &str) {
        let ok = |name: &String| known.contains(name);
        self.listed(at, given, ok, &|name| {
            format!("`{name}` is not a {what} of this agent")
        });
    }

    /// Each of `given` is a step of `context`, or `next`, once.
    fn step_refs(
        &mut self,
        context: &str,
        at: &[&str],
        given: Option<&[String]>,
        steps: &[String],
    ) {
        let ok = |name: &String| name == "next" || steps.contains(name);
        let why = |name: &str| format!("`{name}` is not a step of context `{context}` (or `next`)");
        self.listed(at, given, ok, &why);
    }

    /// An error at each name of a list that is not `ok`, and at its first
    /// repeat (where the check stops: a list of aliases can be huge).
    fn listed(
        &mut self,
        at: &[&str],
        given: Option<&[String]>,
        ok: impl Fn(&String) -> bool,
        why: &dyn Fn(&str) -> String,
    ) {
        let mut seen = std::collections::HashSet::new();
        for (i, name) in given.into_iter().flatten().enumerate() {
            let pos = self.spans.value(&[at, &[i.to_string().as_str()]].concat());
            if !seen.insert(name) {
                self.error(pos, format!("`{name}` is listed twice"));
                return;
            }
            if !ok(name) {
                self.error(pos, why(name));
            }
        }
    }

    /// A step's or context's sections: a title that is not empty, and a body
    /// or bullets.
    fn step_sections(&mut self, at: &[&str], raw: Vec<StepSection>) -> Vec<(String, SectionText)> {
        let mut out = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let index = i.to_string();
            let here: Vec<&str> = [at, &[index.as_str()]].concat();
            let title = self.no_empty_text(
                &[here.as_slice(), &["title"]].concat(),
                Some(s.title),
                "title",
            );
            let text = match (s.body, s.bullets) {
                (Some(body), None) => SectionText::Body(body),
                (None, Some(bullets)) if !bullets.is_empty() => SectionText::Bullets(bullets),
                _ => {
                    let pos = self.spans.key(&here);
                    self.error(
                        pos,
                        "a section here takes a `body` or non-empty `bullets` (one of them)",
                    );
                    continue;
                }
            };
            out.extend(title.map(|t| (t, text)));
        }
        out
    }

    /// Steps nothing reaches and contexts nothing enters: warnings, errors
    /// with `--strict`.
    fn reach(&mut self, contexts: &Contexts, moves: &ActionMoves) {
        if !contexts.0.contains_key("default") {
            return;
        }
        let (never, unreached) = contexts.unreachable(moves);
        for context in never {
            let pos = self.spans.key(&["contexts", &context]);
            self.flag(pos, format!("context `{context}` is never entered: no step the conversation reaches lists it in `valid_contexts` (nor its context), and no function's `change_context` names it"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (context, step) in unreached.into_iter().filter(|r| seen.insert(r.clone())) {
            let i = contexts.0[&context]
                .steps
                .iter()
                .position(|s| s.name == step)
                .unwrap_or(0);
            let pos = self
                .spans
                .key(&["contexts", &context, "steps", &i.to_string()]);
            self.flag(pos, format!("step `{step}` of context `{context}` cannot be reached: no step the conversation reaches moves to it (`valid_steps`, `next`, `completion_action`, a function's `change_step`)"));
        }
    }

    /// A warning, or an error with `--strict`.
    fn flag(&mut self, pos: crate::agent::spans::Pos, msg: String) {
        if self.opts.strict {
            self.error(pos, msg);
        } else {
            self.warn(pos, msg);
        }
    }
}

/// A list without repeats, in its order (a repeat is an error; the
/// validated model never holds one).
fn unique(list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// Sections as the SDK's `ContextBuilder` renders a step's: markdown.
fn markdown(sections: &[(String, SectionText)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (title, text) in sections {
        parts.push(format!("## {title}"));
        match text {
            SectionText::Body(body) => parts.push(body.clone()),
            SectionText::Bullets(bullets) => parts.extend(bullets.iter().map(|b| format!("- {b}"))),
        }
        parts.push(String::new());
    }
    parts.join("\n").trim().to_owned()
}

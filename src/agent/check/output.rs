//! The checks of an http `output`: one template over the response, or a
//! list read out with `foreach`, whose path must lead into the response,
//! whose `each` names the element and whose `text` names the list. How a
//! list is rendered is the handler's concern, not this module's.

use serde_json::Value;

use super::template::Slot;
use super::Checker;
use crate::agent::model::{ForeachFile, OutputFile};
use crate::agent::{defaults, Foreach, HttpOutput};
use crate::template::{Step, Template, Var};

impl Checker<'_> {
    /// The `output` of the http handler at `at`.
    pub(super) fn http_output(
        &mut self,
        name: &str,
        at: &[&str],
        output: OutputFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<HttpOutput> {
        let at = [at, &["output"]].concat();
        match output {
            OutputFile::Text(text) => self
                .template(name, &text, &at, Slot::HttpOutput, declared)
                .map(HttpOutput::Text),
            OutputFile::Foreach(f) => self
                .foreach(name, &at, f, declared)
                .map(|f| HttpOutput::Foreach(Box::new(f))),
        }
    }

    /// Every field is checked before any failure counts, so one run of
    /// `validate` reports them all.
    fn foreach(
        &mut self,
        name: &str,
        at: &[&str],
        f: ForeachFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<Foreach> {
        let field = |key: &'static str| [at, &[key]].concat();
        let path = self.foreach_path(name, &field("foreach"), &f.foreach);
        let each = self
            .template(name, &f.each, &field("each"), Slot::ForeachEach, declared)
            .filter(|t| {
                self.names_it(
                    name,
                    t,
                    &field("each"),
                    |v| matches!(v, Var::Item(_)),
                    "`each` never names `${item...}`: every element would read the same",
                )
            });
        let empty = self.template(name, &f.empty, &field("empty"), Slot::HttpOutput, declared);
        let text = match &f.text {
            Some(text) => self
                .template(name, text, &field("text"), Slot::ForeachText, declared)
                .filter(|t| {
                    self.names_it(
                        name,
                        t,
                        &field("text"),
                        |v| *v == Var::List,
                        "`text` never names `${list}`: the list would not be read out",
                    )
                })
                .map(Some),
            None => Some(None),
        };
        let join = f.join.unwrap_or_else(|| defaults::FOREACH_JOIN.to_owned());
        let join_ok = !join.contains("${");
        if !join_ok {
            let pos = self.spans.value(&field("join"));
            self.error(
                pos,
                format!("function `{name}`: `join` is plain text and cannot hold `${{...}}`"),
            );
        }
        let max = f.max.unwrap_or(defaults::FOREACH_MAX);
        let max_ok = (1..=defaults::FOREACH_MAX_LIMIT).contains(&max);
        if !max_ok {
            let pos = self.spans.value(&field("max"));
            self.error(
                pos,
                format!(
                    "function `{name}`: `max` must be between 1 and {}",
                    defaults::FOREACH_MAX_LIMIT
                ),
            );
        }
        Some(Foreach {
            path: path?,
            each: each?,
            join: join_ok.then_some(join)?,
            max: usize::try_from(max).ok().filter(|_| max_ok)?,
            empty: empty?,
            text: text?,
        })
    }

    /// `foreach`: `response.PATH`, or `response` for an answer that is
    /// itself an array; the steps after `response`.
    fn foreach_path(&mut self, name: &str, at: &[&str], source: &str) -> Option<Vec<Step>> {
        let steps = match source.trim().strip_prefix("response") {
            Some("") => Ok(Vec::new()),
            Some(rest) if rest.len() > 1 && rest.starts_with('.') => {
                crate::template::parse_path(&rest[1..])
                    .map_err(|e| format!("function `{name}`: `foreach`: {e}"))
            }
            _ => Err(format!(
                "function `{name}`: `foreach` must be `response.PATH`, the path to an array in the response (or `response` when the answer is one)"
            )),
        };
        steps
            .map_err(|message| {
                let pos = self.spans.value(at);
                self.error(pos, message);
            })
            .ok()
    }

    /// True when `template` names a variable `wanted` picks; otherwise says
    /// `problem` at `at`.
    fn names_it(
        &mut self,
        name: &str,
        template: &Template,
        at: &[&str],
        wanted: impl Fn(&Var) -> bool,
        problem: &str,
    ) -> bool {
        if template.vars().any(|(v, _)| wanted(v)) {
            return true;
        }
        let pos = self.spans.value(at);
        self.error(pos, format!("function `{name}`: {problem}"));
        false
    }
}

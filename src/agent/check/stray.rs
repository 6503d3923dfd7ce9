//! `${env:NAME}` where swagent does not read it. It is read once at load in
//! a language's `voice`, `params.ai_model`, an include's `url`, an action's
//! destination, and in http handlers; anywhere else it would reach the platform as written, where a
//! `${...}` means a SWML variable: a warning says so.

use super::Checker;

/// The places outside functions where `${env:NAME}` is read.
fn reads_env(path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    matches!(
        p.as_slice(),
        ["languages", _, "voice"]
            | ["params", "ai_model"]
            | ["includes", _, "url"]
            | ["functions", _, "actions", _, "transfer", "to", ..]
            | ["functions", _, "actions", _, "send_sms", "from"]
            | ["functions", _, "outcomes", _, _, "transfer", "to", ..]
            | ["functions", _, "outcomes", _, _, "send_sms", "from"]
    )
}

impl Checker<'_> {
    /// A warning at each string outside the places above, and outside
    /// the handlers of functions and hooks (checked with their templates),
    /// holding `${env:`.
    pub(super) fn stray_env(&mut self) {
        if !self.source.contains("${env:") {
            return;
        }
        let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(self.source) else {
            return;
        };
        let mut found = Vec::new();
        walk(&value, &mut Vec::new(), &mut found);
        for path in found {
            let at: Vec<&str> = path.iter().map(String::as_str).collect();
            let pos = self.spans.value(&at);
            let pos = self.refine(pos, "${env:");
            self.warn(
                pos,
                format!(
                    "`${{env:...}}` is not read in `{}`: it is sent to the platform as written (it is read in `languages[].voice`, `params.ai_model`, `includes[].url` and http handlers)",
                    path.join(".")
                ),
            );
        }
    }
}

fn walk(value: &serde_yaml::Value, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    use serde_yaml::Value as Y;
    let handler = match path.as_slice() {
        [f, _, h] => f == "functions" && ["shell", "http", "static"].contains(&h.as_str()),
        [hook, h] => {
            ["on_call_start", "on_call_end", "summary"].contains(&hook.as_str())
                && ["shell", "http"].contains(&h.as_str())
        }
        _ => false,
    };
    if handler || reads_env(path) {
        return;
    }
    match value {
        Y::String(s) if s.contains("${env:") => found.push(path.clone()),
        Y::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, path, found);
                path.pop();
            }
        }
        Y::Mapping(map) => {
            for (k, v) in map {
                path.push(k.as_str().map(str::to_owned).unwrap_or_default());
                walk(v, path, found);
                path.pop();
            }
        }
        Y::Tagged(t) => walk(&t.value, path, found),
        _ => {}
    }
}

//! The agent's items of `check --production`: functions that change
//! something are secure and confirmed, verification is bound and locked,
//! arguments are constrained, upstreams are HTTPS, and so on.

use serde_json::Value;

use crate::agent::contexts::{ContextPrompt, SectionText};
use crate::agent::{Agent, Function, Handler, Method, PromptBody, Section};
use crate::config::Finding;
use crate::template::Var;

/// The agent's items of the checklist: what the agent file leaves weaker
/// than production needs.
pub(super) fn items(agent: &Agent) -> Vec<Finding> {
    let mut unguarded = Vec::new();
    let mut open = Vec::new();
    let mut loose = Vec::new();
    for f in agent.functions.values() {
        if changes_something(&f.handler) {
            if !f.secure {
                open.push(f.name.clone());
            }
            if !f.confirm && f.confirm_reason.is_none() {
                unguarded.push(f.name.clone());
            }
        }
        let props = f.parameters.get("properties");
        for arg in used_args(f) {
            let p = props.and_then(|p| p.get(&arg)).unwrap_or(&Value::Null);
            if !constrained(p) {
                loose.push(format!("`{}.{arg}`", f.name));
            }
        }
    }
    vec![
        none_of(
            "secure_changes",
            "Functions that change something are secure",
            &open,
            "every shell function and non-GET http function needs a token",
            "`secure: false` on",
        ),
        none_of(
            "confirmation",
            "Functions that change something are confirmed",
            &unguarded,
            "each has `confirm: true` or `confirm: false` with a `reason`",
            "neither `confirm: true` nor a `reason` for `confirm: false`",
        ),
        verification_bound(agent),
        verification_lockout(agent),
        none_of(
            "constrained_arguments",
            "Arguments used by handlers are constrained",
            &loose,
            "every string has an anchored pattern, enum, format or maxLength, every number a minimum and maximum",
            "no anchored pattern (`^...$`), enum, format, maxLength or min/max on",
        ),
        none_of(
            "https_upstreams",
            "Upstreams are called over HTTPS",
            &plain_http(agent),
            "every http function calls https or loopback",
            "plain http (arguments and headers in clear on the network)",
        ),
        none_of(
            "rate_limits",
            "Secure functions have rate limits",
            &agent
                .functions
                .values()
                .filter(|f| f.secure && !has_rate_limit(f))
                .map(|f| f.name.clone())
                .collect::<Vec<_>>(),
            "every secure function has `rate_limit`",
            "no `rate_limit` on",
        ),
        prompt_boundaries(agent),
        Finding::pass(
            "literal_secrets",
            "No literal secrets in the agent file",
            "the loader refuses literal credentials",
        ),
        if agent.alerts.is_empty() {
            Finding::unless("alerts", "Alert rules", vec!["no `alerts:` in the agent file".into()], "")
        } else {
            Finding::pass("alerts", "Alert rules", format!("{} rule(s)", agent.alerts.len()))
        },
    ]
}

/// An item that passes when `offenders` is empty, saying `ok`, and else
/// fails, saying `bad` and then who.
fn none_of(
    id: &'static str,
    title: &'static str,
    offenders: &[String],
    ok: &str,
    bad: &str,
) -> Finding {
    let problems = match offenders.is_empty() {
        true => Vec::new(),
        false => vec![format!("{bad}: {}", offenders.join(", "))],
    };
    Finding::unless(id, title, problems, ok)
}

/// http functions that call a plain-http upstream other than loopback.
fn plain_http(agent: &Agent) -> Vec<String> {
    agent
        .handlers()
        .filter_map(|f| match &f.handler {
            Handler::Http(h) => {
                let url = url::Url::parse(&h.url.to_string()).ok()?;
                let local = match url.host()? {
                    url::Host::Domain(d) => d == "localhost",
                    url::Host::Ipv4(ip) => ip.is_loopback(),
                    url::Host::Ipv6(ip) => ip.is_loopback(),
                };
                (url.scheme() == "http" && !local).then(|| f.key_in_file().to_owned())
            }
            _ => None,
        })
        .collect()
}

/// The prompt says what the caller says is data, and that actions need
/// the caller's confirmation.
fn prompt_boundaries(agent: &Agent) -> Finding {
    let text = prompt_text(agent);
    let data_rule = text.contains("data") && text.contains("instruction");
    let confirm_rule = text.contains("confirm");
    let problem = match (data_rule, confirm_rule) {
        (true, true) => None,
        (false, _) => {
            Some("the prompt does not say that what the caller says is data, never instructions")
        }
        (true, false) => {
            Some("the prompt does not say that sensitive actions need the caller's confirmation")
        }
    };
    Finding::unless(
        "prompt_boundaries",
        "Prompt sets security boundaries",
        problem.map(str::to_owned).into_iter().collect(),
        "the prompt says caller speech is data, not instructions, and that actions need confirmation",
    )
}

/// Functions whose handler may change something: any shell program (we
/// cannot know what it does) and http methods other than GET.
fn changes_something(h: &Handler) -> bool {
    match h {
        Handler::Shell(_) => true,
        Handler::Http(h) => h.method != Method::Get,
        Handler::Static(_) => false,
    }
}

/// Argument names a shell or http handler uses: for a shell handler every
/// declared one, since each reaches the program on stdin and as
/// `SWAIG_ARG_*` whether its command line names it or not.
fn used_args(f: &Function) -> Vec<String> {
    let mut names = Vec::new();
    if let Handler::Shell(_) = &f.handler {
        if let Some(props) = f.parameters.get("properties").and_then(Value::as_object) {
            names.extend(props.keys().cloned());
        }
    }
    names.extend(
        f.handler
            .action_templates()
            .iter()
            .flat_map(|t| t.vars())
            .filter_map(|(v, _)| match v {
                Var::Args(name, _) => Some(name.clone()),
                _ => None,
            }),
    );
    names.sort();
    names.dedup();
    names
}

/// True when a property schema constrains its value.
fn constrained(p: &Value) -> bool {
    let has = |k: &str| p.get(k).is_some();
    match p.get("type").and_then(Value::as_str) {
        Some("string") => {
            let anchored = p
                .get("pattern")
                .and_then(Value::as_str)
                .is_some_and(crate::agent::is_anchored);
            let named =
                anchored || has("enum") || has("maxLength") || has("format") || has("const");
            // `^.*$` is anchored and constrains nothing: the schema itself is
            // asked whether it takes any text at all.
            named && !takes_anything(p)
        }
        Some("number" | "integer") => {
            (has("minimum") || has("exclusiveMinimum"))
                && (has("maximum") || has("exclusiveMaximum"))
                || has("enum")
        }
        Some("boolean") => true,
        _ => has("enum") || has("const"),
    }
}

/// Whether a string schema accepts every one of some very different texts
/// (shell metacharacters, quotes, a leading dash, a long run): then its
/// `pattern` or `format` narrows nothing a handler should fear, even if it
/// refuses a line break as `^.*$` does.
fn takes_anything(schema: &Value) -> bool {
    let Ok(validator) = crate::agent::schema_validator(schema) else {
        return false;
    };
    let long = "x".repeat(300);
    ["", "-rf /", "a;b|c&d$(e)`f`", "'\"\\", "é ✓", long.as_str()]
        .iter()
        .all(|probe| validator.is_valid(&Value::from(*probe)))
}

fn has_rate_limit(f: &Function) -> bool {
    f.rate_limit.per_call.is_some() || f.rate_limit.global.is_some()
}

/// Everything the model is told as instructions, lowercased: the prompt,
/// and each context's and step's text.
fn prompt_text(agent: &Agent) -> String {
    fn walk(s: &Section, out: &mut String) {
        for t in s.title.as_deref().into_iter().chain(s.content.body()) {
            out.push_str(t);
            out.push('\n');
        }
        for b in s.content.bullets().unwrap_or_default() {
            out.push_str(b);
            out.push('\n');
        }
        s.subsections.iter().for_each(|sub| walk(sub, out));
    }
    let mut out = String::new();
    match &agent.prompt.body {
        PromptBody::Text(t) => out.push_str(t),
        PromptBody::Pom(sections) => sections.iter().for_each(|s| walk(s, &mut out)),
    }
    for context in agent.contexts.iter().flat_map(|c| c.0.values()) {
        let own = match &context.prompt {
            Some(ContextPrompt::Text(text)) => vec![text.as_str()],
            Some(ContextPrompt::Pom(sections)) => sections
                .iter()
                .flat_map(|(title, text)| {
                    let lines = match text {
                        SectionText::Body(body) => vec![body.as_str()],
                        SectionText::Bullets(bullets) => {
                            bullets.iter().map(String::as_str).collect()
                        }
                    };
                    std::iter::once(title.as_str()).chain(lines)
                })
                .collect(),
            None => Vec::new(),
        };
        let steps = context.steps.iter().map(|s| s.text.as_str());
        for text in own
            .into_iter()
            .chain(context.system_prompt.as_deref())
            .chain(steps)
        {
            out.push('\n');
            out.push_str(text);
        }
    }
    out.to_lowercase()
}

/// A verifier whose grant holds for the whole call, though it checks
/// something named by an argument (an account, a customer number): a PIN
/// right for one account would open every other for the rest of the call.
fn verification_bound(agent: &Agent) -> Finding {
    let title = "Verification is bound to what was verified";
    if !agent.functions.values().any(|f| f.requires_verification) {
        return Finding::pass(
            "verification_bound",
            title,
            "no function requires verification",
        );
    }
    let mut unbound = Vec::new();
    for f in agent
        .functions
        .values()
        .filter(|f| f.verifies_caller && f.identity.is_empty())
    {
        let props = f.parameters.get("properties").and_then(Value::as_object);
        let all: Vec<(&str, bool)> = props
            .into_iter()
            .flatten()
            .map(|(name, schema)| {
                (
                    name.as_str(),
                    schema.get("sensitive") == Some(&Value::Bool(true)),
                )
            })
            .collect();
        // The secret alone (a PIN) verifies the caller. Anything beside it
        // says what the secret was checked for, sensitive or not (account
        // numbers are often marked sensitive too).
        let mut named: Vec<&str> = all.iter().filter(|(_, s)| !s).map(|(n, _)| *n).collect();
        if named.is_empty() && all.len() > 1 {
            named = all.iter().map(|(n, _)| *n).collect();
        }
        if all.is_empty() {
            unbound.push(format!(
                "`{}` declares no arguments, so nothing says what it checks, and its grant holds for the whole call",
                f.name
            ));
            continue;
        }
        if let Some(first) = named.first() {
            unbound.push(format!(
                "`{}` checks `{}` but its grant holds for the whole call (`verifies_caller: {{ binds: [{first}] }}`)",
                f.name,
                named.join("`, `")
            ));
        }
    }
    Finding::unless(
        "verification_bound",
        title,
        unbound,
        "each verifier binds what it checks, or takes nothing but its secret",
    )
}

fn verification_lockout(agent: &Agent) -> Finding {
    let (id, title) = (
        "verification_lockout",
        "Failed verifications lock the account out",
    );
    let binding: Vec<&Function> = agent
        .functions
        .values()
        .filter(|f| f.verifies_caller && !f.identity.is_empty())
        .collect();
    if binding.is_empty() {
        return Finding::pass(id, title, "no verifier binds an account");
    }
    let mut problems = Vec::new();
    for f in binding {
        if f.max_failures.is_none() {
            problems.push(format!("`{}` has `max_failures: false`", f.name));
        }
        if f.rate_limit.global.is_none() {
            problems.push(format!(
                "`{}` has no `rate_limit.global`, so guesses spread over many accounts have no limit",
                f.name
            ));
        }
    }
    Finding::unless(
        id,
        title,
        problems,
        "each verifier that binds an account counts its failures (`max_failures`) and has a global rate limit",
    )
}

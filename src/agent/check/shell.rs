//! The checks of a `shell` handler: a program that exists and runs, argv
//! that `exec` can carry, arguments that cannot be read as options, the
//! variables it may see, and its limits.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::template::Slot;
use super::Checker;
use crate::agent::model::ShellFile;
use crate::agent::{defaults, ShellSpec};
use crate::template::{Part, Template, Var};

/// Whether an argument's schema refuses every value that starts with `-`.
/// The schema itself is asked about candidates: negative numbers, the
/// dash-led members of any `enum` or `const`, the dash-led texts each
/// `pattern` matches (found by walking its automaton, so `^-z$` and
/// `^[a-z0-9-]{8,64}$` do not pass), and probes for what the walk cannot
/// see: formats (`format: email` takes `-@a.b`), patterns with look-around,
/// and `-` or `--` followed by runs of one character of each common class.
fn refuses_leading_dash(schema: &Value) -> bool {
    let Ok(validator) = crate::agent::schema_validator(schema) else {
        return false;
    };
    let numbers = [Value::from(-1), Value::from(-1.5)];
    if numbers.iter().any(|n| validator.is_valid(n)) {
        return false;
    }
    let mut listed = Vec::new();
    let mut walked = Vec::new();
    dash_led_candidates(schema, &mut listed, &mut walked);
    if listed.iter().any(|v| validator.is_valid(v))
        || walked
            .iter()
            .any(|t| validator.is_valid(&Value::from(t.as_str())))
    {
        return false;
    }
    let mixed = [
        "-@a.b",
        "-a@b.c",
        "-x@y",
        "-oProxyCommand=x@a.b",
        "-a1",
        "-1a",
        "-x=1",
        "-a.b",
        "-a_b",
        "--a-b",
        "-a/b",
        "-a:b",
        "-a b",
        "--help",
        "-rf",
    ];
    if mixed.iter().any(|p| validator.is_valid(&Value::from(*p))) {
        return false;
    }
    let lengths = (0..=64).chain([95, 127, 191, 255]);
    !lengths
        .flat_map(|n| {
            ["-", "--"].into_iter().flat_map(move |lead| {
                ['a', 'A', '0', 'f', 'x', '_', '-', '.', '=']
                    .into_iter()
                    .map(move |c| {
                        let mut probe = String::from(lead);
                        probe.extend(std::iter::repeat_n(c, n));
                        probe
                    })
            })
        })
        .any(|probe| validator.is_valid(&Value::String(probe)))
}

/// A value that reaches argv starting with `-`.
fn dash_led(v: &Value) -> bool {
    match v {
        Value::String(s) => s.starts_with('-'),
        Value::Number(n) => n.to_string().starts_with('-'),
        _ => false,
    }
}

/// Every dash-led `enum` and `const` value, and the dash-led texts of every
/// `pattern`, anywhere in `schema` (under `anyOf`, `items`, ...): whichever
/// the whole schema accepts is a value a caller can send.
fn dash_led_candidates(schema: &Value, listed: &mut Vec<Value>, walked: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("enum", Value::Array(items)) => {
                        listed.extend(items.iter().filter(|v| dash_led(v)).cloned())
                    }
                    ("const", v) if dash_led(v) => listed.push(v.clone()),
                    ("pattern", Value::String(p)) => walked
                        .extend(crate::agent::pattern::dash_led_matches(p).unwrap_or_default()),
                    _ => dash_led_candidates(value, listed, walked),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| dash_led_candidates(i, listed, walked)),
        _ => {}
    }
}

impl Checker<'_> {
    pub(super) fn shell(
        &mut self,
        name: &str,
        s: ShellFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<ShellSpec> {
        self.shell_at(&["functions", name, "shell"], name, s, declared)
    }

    /// [`Self::shell`] of the handler at `at` (a function's, or a call
    /// hook's such as `on_call_start.shell`).
    pub(super) fn shell_at(
        &mut self,
        at: &[&str],
        name: &str,
        s: ShellFile,
        declared: &serde_json::Map<String, Value>,
    ) -> Option<ShellSpec> {
        let Some(program) = s.command.first() else {
            let pos = self.spans.value(&[at, &["command"]].concat());
            self.error(
                pos,
                format!("function `{name}`: `command` needs at least the program"),
            );
            return None;
        };
        let program_path = [at, &["command", "0"]].concat();
        if program.contains("${") {
            let pos = self.spans.value(&program_path);
            self.error(
                pos,
                format!(
                    "function `{name}`: the program (`command[0]`) must be literal, not a template"
                ),
            );
            return None;
        }
        let program = self.resolve_program(name, program, &program_path)?;
        let mut args = Vec::new();
        let mut after_dashdash = false;
        for (i, arg) in s.command.iter().enumerate().skip(1) {
            let index = i.to_string();
            let path = [at, &["command", index.as_str()]].concat();
            let t = self.template(name, arg, &path, Slot::ShellArg, declared)?;
            self.exec_limits(name, i, &t, &path);
            if let Some(Var::Args(arg_name, _)) = t.as_single_var() {
                let constrained = declared.get(arg_name).is_some_and(refuses_leading_dash);
                if !after_dashdash && !constrained {
                    let pos = self.spans.value(&path);
                    self.warn(
                        pos,
                        format!(
                            "function `{name}`: `{arg}` is a whole argument a caller controls; a value starting with `-` would be read as an option. Give `{arg_name}` a `pattern` or `enum` that refuses a leading `-`, put `--` before it, or write `--opt={arg}`"
                        ),
                    );
                }
            }
            for (var, _) in t.vars() {
                let Var::Args(arg_name, _) = var else {
                    continue;
                };
                let sensitive = declared.get(arg_name).and_then(|d| d.get("sensitive"))
                    == Some(&Value::Bool(true));
                if sensitive {
                    // The audit log redacts it; the process table does not.
                    let pos = self.spans.value(&path);
                    self.warn(
                        pos,
                        format!(
                            "function `{name}`: the sensitive argument `{arg_name}` is on the command line, where any user on this host can read it while the program runs (`ps`); the program gets it as `SWAIG_ARG_{}` and on stdin",
                            arg_name.to_ascii_uppercase()
                        ),
                    );
                }
            }
            if let Some((flag, _)) = arg.split_once('=') {
                self.literal_secret(name, flag.trim_start_matches('-'), &t, &path);
            }
            after_dashdash |= arg == "--";
            args.push(t);
        }
        for var in s.env.iter().flatten() {
            let problem = if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                "is not a variable name"
            } else if crate::config::env::is_own_variable(var) {
                "is swagent's own setting; its secrets never reach a handler"
            } else if var.starts_with("SWAIG_") {
                "is set by swagent for each call (`SWAIG_ARG_*`, `SWAIG_FUNCTION`, `SWAIG_CALL_ID`)"
            } else if var.starts_with("LD_")
                || ["BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "IFS"].contains(&var.as_str())
            {
                "changes how programs load or shells start; set it in the program instead"
            } else {
                continue;
            };
            let pos = self.spans.value(&[at, &["env"]].concat());
            self.error(pos, format!("function `{name}`: `{var}` {problem}"));
        }
        let arg_env = self.arg_env(name, declared);
        Some(ShellSpec {
            program,
            args,
            arg_env,
            timeout: self.timeout(name, at, s.timeout.map(|d| d.0)),
            env: s.env.unwrap_or_default(),
            max_output: self.size(
                name,
                at,
                "max_output",
                s.max_output.map(|b| b.0),
                defaults::MAX_OUTPUT,
            ),
            concurrency: self.concurrency(name, at, s.concurrency, defaults::CONCURRENCY),
        })
    }

    /// The `SWAIG_ARG_*` variables of the declared arguments whose names can
    /// be variable names. Two names that upper-case alike are an error: one
    /// variable cannot hold both.
    fn arg_env(
        &mut self,
        name: &str,
        declared: &serde_json::Map<String, Value>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for arg in declared.keys().filter(|k| crate::template::is_name(k)) {
            let var = format!("SWAIG_ARG_{}", arg.to_ascii_uppercase());
            if let Some((first, _)) = out.iter().find(|(_, v)| *v == var) {
                let pos =
                    self.spans
                        .key(&["functions", name, "parameters", "properties", arg.as_str()]);
                self.error(
                    pos,
                    format!("function `{name}`: arguments `{first}` and `{arg}` would both be `{var}`; rename one"),
                );
                continue;
            }
            out.push((arg.clone(), var));
        }
        out
    }

    /// What no value can mend: the argument's own text already holds a NUL
    /// or is too long to `exec`, so every call would fail.
    fn exec_limits(&mut self, name: &str, index: usize, t: &Template, path: &[&str]) {
        let literal = || {
            t.parts().iter().filter_map(|p| match p {
                Part::Lit(text) => Some(text.as_str()),
                Part::Var(..) => None,
            })
        };
        let why = if literal().any(|text| text.contains('\0')) {
            "holds a NUL byte, which no argument can carry".to_owned()
        } else {
            let len: usize = literal().map(str::len).sum();
            if len < crate::agent::MAX_ARG_STRLEN {
                return;
            }
            format!(
                "is {len} bytes before any value is filled in, and an argument may hold at most {}",
                crate::agent::MAX_ARG_STRLEN - 1
            )
        };
        let pos = self.spans.value(path);
        self.error(pos, format!("function `{name}`: argument {index} {why}"));
    }

    pub(super) fn resolve_program(
        &mut self,
        name: &str,
        program: &str,
        path: &[&str],
    ) -> Option<PathBuf> {
        let pos = self.spans.value(path);
        let resolved = if program.contains('/') {
            let p = Path::new(program);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.dir.join(p)
            }
        } else {
            let found = std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(program))
                    .find(|c| c.is_file())
            });
            match found {
                Some(p) => p,
                None => {
                    self.error(
                        pos,
                        format!("function `{name}`: program `{program}` is not on PATH"),
                    );
                    return None;
                }
            }
        };
        match std::fs::metadata(&resolved) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Some(resolved),
            Ok(m) if m.is_file() => {
                self.error(
                    pos,
                    format!("function `{name}`: `{program}` is not executable (try `chmod +x`)"),
                );
                None
            }
            _ => {
                self.error(
                    pos,
                    format!(
                        "function `{name}`: `{program}` does not exist (relative paths start at the agent file's folder)"
                    ),
                );
                None
            }
        }
    }
}

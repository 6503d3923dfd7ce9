//! The process environment as swagent's configuration: `.env` loaded into
//! it, and the one way a variable is read ([`non_empty`], [`boolean`]).
//!
//! `.env` is loaded before the command line is parsed, so the flags that
//! read variables see it. Only the values are checked here (UTF-8, no empty
//! variable hiding a `.env` value); what they mean is [`super::serve`]'s.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The largest `.env` read.
pub const DOTENV_LIMIT: u64 = 1024 * 1024;

/// swagent's own settings (`SWML_*`, `SIGNALWIRE_*`, `SWAGENT_*`): they hold
/// its credentials and token secret, which no handler or upstream may see.
pub fn is_own_variable(name: &str) -> bool {
    ["SWML_", "SIGNALWIRE_", "SWAGENT_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Loads `.env` from the working directory into the environment (the real
/// environment wins), then checks swagent's own variables. Nothing is set
/// unless the whole file reads. Call it before parsing the command line:
/// options such as `--audit-log` and `--state-file` read their variables
/// while parsing, and `.env` must already be there.
pub fn load() -> anyhow::Result<()> {
    load_dotenv(Path::new(".env"))?;
    for (name, value) in std::env::vars_os() {
        if let Some(name) = name.to_str().filter(|n| is_own_variable(n)) {
            if value.to_str().is_none() {
                // Read as unset, it would turn a check off.
                anyhow::bail!("`{name}` is not UTF-8 text");
            }
        }
    }
    Ok(())
}

/// A variable's value; empty or blank counts as unset.
pub fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The one boolean parser, for every variable and for `--trust-proxy`'s:
/// `true`/`false`, `yes`/`no`, `on`/`off`, `y`/`n`, `t`/`f`, `1`/`0`, in
/// any case. `None` for anything else, which is refused, never read as no.
pub fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" | "t" | "1" => Some(true),
        "false" | "no" | "off" | "n" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// A boolean variable: `default` when unset, an error naming it when it is
/// not a boolean.
pub fn flag(name: &str, default: bool) -> anyhow::Result<bool> {
    match non_empty(name) {
        None => Ok(default),
        Some(v) => boolean(&v)
            .ok_or_else(|| anyhow::anyhow!("`{name}` must be `true` or `false`, not `{v}`")),
    }
}

/// [`boolean`] as clap's value parser, for a flag that reads a variable.
/// clap says which flag and variable; this says what was wrong, in clap's words.
pub fn boolean_arg(text: &str) -> Result<bool, &'static str> {
    boolean(text).ok_or("value was not a boolean")
}

fn load_dotenv(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let (bytes, meta) = match crate::files::read_regular_with_meta(path, DOTENV_LIMIT) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A link to nothing is a secrets volume that did not mount, not
            // "no settings here": development mode would generate a password.
            if let Ok(target) = std::fs::read_link(path) {
                anyhow::bail!(
                    "`{shown}` is a link to `{}`, which does not exist (a volume that is not mounted?)",
                    target.display()
                );
            }
            return Ok(());
        }
        Err(e) => anyhow::bail!("cannot read `{shown}`: {e}"),
    };
    // Editors on Windows start a file with a byte-order mark; it is no part
    // of the first name.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    // It sets credentials and where webhooks point: only its owner (or
    // root) may be able to change it. Judged on the file that was read.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        anyhow::bail!(
            "`{shown}` belongs to another user (uid {}); swagent reads settings only from its own user's or root's file",
            meta.uid()
        );
    }
    if meta.mode() & 0o002 != 0 {
        anyhow::bail!(
            "`{shown}` has mode {:04o}: anyone on this host could change swagent's settings (`chmod o-w {shown}`)",
            meta.mode() & 0o7777
        );
    }
    // A file its group can write is a hardening finding (`serve`, `check`).
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in dotenvy::from_read_iter(bytes) {
        match item {
            // The shell (`set -a; . ./.env`) and the Python SDK take the
            // last of two; taking either here would surprise someone. The
            // same value twice is only untidy.
            Ok((name, value)) if is_own_variable(&name) || name == "PORT" => {
                match pairs.iter().find(|(n, _)| *n == name) {
                    Some((_, first)) if *first != value => anyhow::bail!(
                        "`{shown}` sets `{name}` twice, to different values: keep one (a shell that sources it takes the last)"
                    ),
                    Some(_) => {}
                    None => pairs.push((name, value)),
                }
            }
            Ok(pair) => pairs.push(pair),
            // dotenvy's message quotes the line, which may hold a secret.
            Err(dotenvy::Error::LineParse(line, _)) => {
                let text = String::from_utf8_lossy(bytes);
                let at = text
                    .find(&line)
                    .map(|i| format!("line {}", text[..i].matches('\n').count() + 1))
                    .unwrap_or_else(|| "a line".into());
                anyhow::bail!(
                    "cannot read `{shown}`: {at} is not `NAME=value` (its text is not shown: it may hold a secret)"
                );
            }
            Err(dotenvy::Error::EnvVar(_)) => {
                anyhow::bail!(
                    "cannot read `{shown}`: a `${{...}}` in it names a variable that is not UTF-8"
                )
            }
            Err(e) => anyhow::bail!("cannot read `{shown}`: {e}"),
        }
    }
    // Every check before the first variable is set: a refused file sets none.
    for (name, value) in &pairs {
        if std::env::var_os(name).is_some_and(|set| hides(name, &set, value)) {
            anyhow::bail!(
                "`{name}` is set but empty, which hides its value in `{shown}` and would turn it off; unset it or give it a value"
            );
        }
    }
    let mut loaded = Vec::new();
    for (name, value) in pairs {
        if std::env::var_os(&name).is_none() {
            std::env::set_var(&name, &value);
            loaded.push(name);
        }
    }
    let _ = FROM_DOTENV.set(loaded);
    Ok(())
}

/// The variables `.env` set, which were not in the real environment.
static FROM_DOTENV: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// True when `name` is set by the real environment (a systemd
/// `Environment=`, an `export`), which wins over whatever `.env` says.
pub fn set_outside_dotenv(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
        && !FROM_DOTENV
            .get()
            .is_some_and(|from_file| from_file.iter().any(|n| n == name))
}

/// An empty variable of swagent's own, where `.env` has a value: read as
/// unset, it would quietly drop a password, key or check the file sets.
fn hides(name: &str, set: &OsStr, from_file: &str) -> bool {
    is_own_variable(name) && set.to_string_lossy().trim().is_empty() && !from_file.trim().is_empty()
}

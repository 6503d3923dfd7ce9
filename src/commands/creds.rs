//! `swagent gen-creds`: strong credentials, printed or merged into a `.env`.
//! `--rotate` replaces the password and token secret, and puts a new webhook
//! secret before the old ones: every secret listed signs, so backends that
//! know only the old one still verify until it is removed by hand.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;

use crate::cli::{CredsFormat, GenCredsArgs};
use crate::config::vars::SECRET as SECRET_VAR;
use crate::config::vars::WEBHOOK_SECRET as WEBHOOK_VAR;
use crate::config::vars::{PASSWORD as PASSWORD_VAR, USER as USER_VAR};

/// What `gen-creds` sets: each variable and its new value.
type Values = [(&'static str, String); 4];

/// Shortest and longest password `gen-creds` makes (past the longest, no
/// Basic Auth header a proxy takes would carry it).
const MIN_LENGTH: usize = 32;
const MAX_LENGTH: usize = 1024;

pub(super) fn run(args: &GenCredsArgs) -> anyhow::Result<u8> {
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&args.length) {
        anyhow::bail!(
            "`--length` must be from {MIN_LENGTH} to {MAX_LENGTH}, not {}",
            args.length
        );
    }
    if args.user.is_empty()
        || !args
            .user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c))
    {
        anyhow::bail!("`--user` must be letters, digits or `_.-@`");
    }
    let values: Values = [
        (USER_VAR, args.user.clone()),
        (PASSWORD_VAR, crate::random::password(args.length)),
        (SECRET_VAR, crate::random::hex(32)),
        (WEBHOOK_VAR, crate::webhook::new_secret()),
    ];
    match &args.write {
        Some(_) if args.format.is_some_and(|f| !matches!(f, CredsFormat::Env)) => {
            anyhow::bail!("`--write` writes `NAME=value` lines; `--format` is for printing")
        }
        Some(path) => write(path, &values, args),
        None => {
            let out = match args.format.unwrap_or(CredsFormat::Env) {
                CredsFormat::Env => values.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
                CredsFormat::Shell => values
                    .iter()
                    .map(|(k, v)| format!("export {k}='{v}'\n"))
                    .collect(),
                CredsFormat::Json => {
                    let m: serde_json::Map<String, serde_json::Value> = values
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                        .collect();
                    format!("{}\n", serde_json::Value::Object(m))
                }
            };
            super::print_out(&out)?;
            Ok(0)
        }
    }
}

/// The key a `.env` line sets, if any (`KEY=...` or `export KEY=...`).
fn line_key(line: &str) -> Option<&str> {
    let l = line.trim_start();
    // `export` and a space or tab, as a shell reads it (and dotenvy).
    let l = l
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(l, str::trim_start);
    let (k, _) = l.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.starts_with('#')).then_some(k)
}

/// The line where a quoted value starts that does not end on it, if any:
/// `gen-creds` edits line by line and would misread the lines inside.
fn open_quote(text: &str) -> Option<usize> {
    text.lines().enumerate().find_map(|(i, line)| {
        let (_, value) = line.split_once('=').filter(|_| line_key(line).is_some())?;
        let value = value.trim();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let rest = &value[1..];
        let closed = if quote == '"' {
            // An escaped quote does not close it.
            let mut escaped = false;
            rest.chars().any(|c| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            })
        } else {
            rest.contains('\'')
        };
        (!closed).then_some(i + 1)
    })
}

/// The `.env` at `path` as text, without a byte-order mark; `None` when
/// there is none. One another user owns is refused to root.
fn read_existing(path: &Path) -> anyhow::Result<Option<String>> {
    Ok(
        match crate::files::read_regular_with_meta(path, crate::config::env::DOTENV_LIMIT) {
            Ok((t, meta)) => {
                // Root's replacement would be root's, 0600: the service that
                // owns the file could no longer read it, and would not start.
                // (Giving it the old owner is no answer: whoever owns the folder
                // can swap what the path names, and so get root's new secrets.)
                // SAFETY: geteuid has no preconditions.
                if unsafe { libc::geteuid() } == 0 && meta.uid() != 0 {
                    anyhow::bail!(
                    "`{}` belongs to uid {}: rewritten by root it would become root's, and that user could no longer read it; run this as that user (`sudo -u '#{}' swagent gen-creds ...`)",
                    path.display(),
                    meta.uid(),
                    meta.uid()
                );
                }
                // A byte-order mark is no part of the first key (`.env` is read
                // without it), and is not written back.
                let t = match t.strip_prefix("\u{feff}".as_bytes()) {
                    Some(rest) => rest.to_vec(),
                    None => t,
                };
                Some(
                    String::from_utf8(t)
                        .map_err(|_| anyhow::anyhow!("`{}` is not UTF-8 text", path.display()))?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        },
    )
}

/// The value a `.env` line sets, without its quotes, or for an unquoted
/// one, its trailing comment.
fn line_value(line: &str) -> &str {
    let v = line.split_once('=').map_or("", |(_, v)| v.trim());
    for quote in ['"', '\''] {
        if let Some((inner, _)) = v.strip_prefix(quote).and_then(|r| r.split_once(quote)) {
            return inner;
        }
    }
    v.split(" #").next().unwrap_or_default().trim()
}

/// The webhook secrets after a rotation: the new one first, then those of
/// `line`, so a backend that knows only an old one still verifies. Quoted
/// when there are several: `.env` values with spaces need it.
fn rotated_webhook(new: &str, line: &str) -> String {
    let old: Vec<&str> = line_value(line).split_whitespace().collect();
    if old.is_empty() {
        return new.to_owned();
    }
    format!("\"{new} {}\"", old.join(" "))
}

fn write(path: &Path, values: &Values, args: &GenCredsArgs) -> anyhow::Result<u8> {
    let existing = read_existing(path)?;
    if let Some(line) = existing.as_deref().and_then(open_quote) {
        // Its value's lines would be read as settings of their own.
        anyhow::bail!(
            "`{}` has a quoted value over several lines (from line {line}); edit it by hand",
            path.display()
        );
    }
    if args.rotate {
        // Run in the wrong folder, `--rotate` would make a new file and leave
        // the credentials in use as they were, while saying it wrote them.
        let sets = |key: &str| {
            existing
                .as_deref()
                .is_some_and(|t| t.lines().any(|l| line_key(l) == Some(key)))
        };
        if !sets(PASSWORD_VAR) && !sets(SECRET_VAR) {
            anyhow::bail!(
                "`{}` {}: there is nothing to rotate (run it where the service reads its `.env`, or leave out `--rotate` to make new credentials)",
                path.display(),
                if existing.is_some() {
                    format!("sets neither `{PASSWORD_VAR}` nor `{SECRET_VAR}`")
                } else {
                    "does not exist".to_owned()
                }
            );
        }
    }
    let replace = |key: &str| args.force || (args.rotate && key != USER_VAR);
    let mut lines: Vec<String> = Vec::new();
    let mut present = Vec::new();
    if let Some(text) = &existing {
        for line in text.lines() {
            match line_key(line).and_then(|k| values.iter().find(|(name, _)| *name == k)) {
                Some((k, v)) => {
                    present.push(*k);
                    if args.rotate && *k == WEBHOOK_VAR {
                        lines.push(format!("{k}={}", rotated_webhook(v, line)));
                    } else if replace(k) {
                        lines.push(format!("{k}={v}"));
                    } else if args.rotate && *k == USER_VAR {
                        lines.push(line.to_owned());
                    } else {
                        anyhow::bail!(
                            "`{}` already sets `{k}`; pass `--force` to replace it (or `--rotate` to replace the password and secret)",
                            path.display()
                        );
                    }
                }
                None => lines.push(line.to_owned()),
            }
        }
    }
    let mut written = Vec::new();
    for (k, v) in values {
        if present.contains(k) {
            if replace(k) {
                written.push(*k);
            }
        } else {
            lines.push(format!("{k}={v}"));
            written.push(*k);
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    // A crash never leaves half a file, the file is 0600 (0640 if its group
    // could read it) from its first byte, and a `.env` that is a link to the
    // real one is written through.
    crate::files::replace(path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    if args.rotate {
        say_rotated(present.contains(&WEBHOOK_VAR));
    }
    warn_if_committable(path);
    super::report_done(&format!(
        "wrote {} to {}\n",
        written.join(", "),
        path.display()
    ));
    Ok(0)
}

/// After a rotation: the old tokens stop verifying, the old webhook secret
/// (when there was one) still signs until removed, and a variable set
/// outside `.env` still wins over the new value.
fn say_rotated(webhook_kept: bool) {
    crate::say!(
        "note: every token handed out with the old `{SECRET_VAR}` stops verifying; restart every replica with the new values"
    );
    if webhook_kept {
        crate::say!(
            "note: `{WEBHOOK_VAR}` lists the new secret first and keeps the old ones, so every one signs; once each backend verifies with the new one, remove the old and restart"
        );
    }
    for key in [PASSWORD_VAR, SECRET_VAR, WEBHOOK_VAR] {
        if crate::config::env::set_outside_dotenv(key) {
            crate::say!(
                "warning: `{key}` is also set in this shell's environment, which wins over `.env`: rotate it where it is set too"
            );
        }
    }
}

/// Credentials must never be committed: warn when git tracks the file or
/// does not ignore it. Silent outside a git work tree.
fn warn_if_committable(path: &Path) {
    let dir = crate::files::folder_of(path);
    let name = path.file_name().map(Path::new).unwrap_or(path);
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .arg(name)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
    };
    let Some(inside) = Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
    else {
        return;
    };
    if !inside.success() {
        return;
    }
    if git(&["ls-files", "--error-unmatch", "--"]).is_some_and(|s| s.success()) {
        crate::say!("warning: `{}` is tracked by git: credentials must never be committed (git rm --cached)", path.display());
    } else if git(&["check-ignore", "-q", "--"]).is_some_and(|s| !s.success()) {
        crate::say!("warning: `{}` is not ignored by git: add it to .gitignore so credentials are never committed", path.display());
    }
}

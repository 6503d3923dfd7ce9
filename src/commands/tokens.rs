//! `swagent verify-token` and `swagent token mint`, on [`crate::token`].

use std::io::{BufRead as _, Read as _};

use anyhow::Context as _;
use serde_json::json;

use crate::cli::{MintArgs, SecretArgs, VerifyTokenArgs};
use crate::config::env::non_empty as non_empty_env;
use crate::config::vars::SECRET as SECRET_VAR;
use crate::text::printable;
use crate::token::{self, Expect, Secret, Verdict};

/// The largest `--secret-file` read.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// The secret from `--secret-file`, `--prompt`, or the environment / `.env`.
fn secret(args: &SecretArgs) -> anyhow::Result<Secret> {
    let value = if let Some(path) = &args.secret_file {
        // A file or a pipe, bounded: not `/dev/zero`.
        let bytes = crate::files::read_file_or_pipe(path, SECRET_FILE_LIMIT)
            .with_context(|| format!("cannot read secret file `{}`", path.display()))?;
        let text = String::from_utf8(bytes)
            .ok()
            .with_context(|| format!("secret file `{}` is not UTF-8 text", path.display()))?;
        // The first line without its line ending, spaces kept: the server
        // uses `SIGNALWIRE_SWAIG_SECRET` as it is, so trimming here would
        // mint with a different secret than a server given the same text.
        text.lines().next().unwrap_or("").to_owned()
    } else if args.prompt {
        rpassword::prompt_password("token secret: ")
            .context("cannot read the secret from the terminal")?
    } else {
        non_empty_env(SECRET_VAR).with_context(|| {
            format!("no secret: set `{SECRET_VAR}` (environment or `.env`), or use `--secret-file PATH` or `--prompt`")
        })?
    };
    if value.trim().is_empty() {
        anyhow::bail!("the secret is blank");
    }
    Ok(Secret::new(&value))
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).map_or_else(
        || "out of range".into(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn relative(expiry: u64, now: u64) -> String {
    let (delta, future) = if expiry >= now {
        (expiry - now, true)
    } else {
        (now - expiry, false)
    };
    let text = match delta {
        d if d < 120 => format!("{d} s"),
        d if d < 7200 => format!("{} min", d / 60),
        d if d < 172_800 => format!("{} h", d / 3600),
        d => format!("{} days", d / 86400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// The most `verify-token -` reads from stdin.
const MAX_TOKEN_INPUT: u64 = 64 * 1024;

/// The token in what an operator pasted: the token itself, or a
/// `web_hook_url` from the SWML (its `__token` parameter), percent-encoded
/// as the SWML writes it or not.
fn as_pasted(given: &str) -> String {
    let given = given.trim();
    let token = match given.split_once("__token=") {
        Some((_, rest)) => rest.split(['&', '#']).next().unwrap_or(""),
        None => given,
    };
    percent_encoding::percent_decode_str(token)
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn verify(args: &VerifyTokenArgs) -> anyhow::Result<u8> {
    let given = if args.token == "-" {
        let mut line = String::new();
        // A token is well under 1 KiB; more is not one, and is not read.
        std::io::stdin()
            .lock()
            .take(MAX_TOKEN_INPUT)
            .read_line(&mut line)
            .context("cannot read the token from stdin")?;
        line
    } else {
        args.token.clone()
    };
    let token = as_pasted(&given);
    let secret = secret(&args.secret)?;
    let now = crate::clock::now();
    let (verdict, claims) = token::check(
        &secret,
        &token,
        Expect {
            function: args.function.as_deref(),
            call_id: args.call_id.as_deref(),
            now,
        },
    );
    if args.json {
        // JSON escapes what a terminal would run.
        let out = json!({
            "verdict": verdict.code(),
            "reason": verdict.reason(),
            "call_id": claims.as_ref().map(|c| &c.call_id),
            "function": claims.as_ref().map(|c| &c.function),
            "expires_at": claims.as_ref().map(|c| rfc3339(c.expiry)),
            "nonce": claims.as_ref().map(|c| &c.nonce),
        });
        super::print_out(&format!("{out}\n"))?;
    } else {
        let mut out = String::new();
        if let Some(c) = &claims {
            // Read from a token that may be forged: escaped, so it cannot
            // move the cursor or retitle the terminal.
            out.push_str(&format!(
                "call id:  {}\nfunction: {}\nexpires:  {} ({})\nnonce:    {}\n",
                printable(&c.call_id),
                printable(&c.function),
                rfc3339(c.expiry),
                relative(c.expiry, now),
                printable(&c.nonce)
            ));
        }
        out.push_str(&format!(
            "verdict:  {} ({})\n",
            verdict.code(),
            verdict.reason()
        ));
        super::print_out(&out)?;
    }
    Ok(if verdict == Verdict::Valid { 0 } else { 1 })
}

pub(super) fn mint(args: &MintArgs) -> anyhow::Result<u8> {
    // The function name is a field of the token: one with `.` or `:` in it
    // would mint a token no server can read back.
    if !crate::template::is_name(&args.function) {
        anyhow::bail!(
            "`{}` is not a function name (letters, digits and `_`, not starting with a digit)",
            printable(&args.function)
        );
    }
    let secret = secret(&args.secret)?;
    if args.ttl == 0 {
        anyhow::bail!("`--ttl` must be at least 1 second");
    }
    // An expiry past u64 would wrap round to a token already expired.
    let expiry = crate::clock::now()
        .checked_add(args.ttl)
        .context("`--ttl` is too large: the expiry would pass the largest time a token can hold")?;
    let t = token::mint(&secret, &args.call_id, &args.function, expiry)
        .with_context(|| format!("cannot mint a token for call id `{}`", args.call_id))?;
    // The same base `swml --base-url` takes: a URL with credentials, a query
    // or no host would print a webhook URL no server answers.
    let base = args
        .url
        .as_deref()
        .map(|b| crate::config::settings::base_url("`--url`", b))
        .transpose()?;
    let out = match &base {
        Some(base) => {
            let leaf = if args.function == "post_prompt" {
                "post_prompt"
            } else {
                "swaig"
            };
            let encoded: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
            format!("{}/{leaf}/?__token={encoded}\n", base.trim_end_matches('/'))
        }
        None => format!("{t}\n"),
    };
    super::print_out(&out)?;
    Ok(0)
}

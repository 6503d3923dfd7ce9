//! What each command's exit code means, in one table. It feeds each
//! command's `--help`, the top-level `--help`, the README's table, and a
//! test that fails when the README drifts from it.

/// The exit codes of one command.
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    /// The command as typed after `swagent` (`token mint`).
    pub command: &'static str,
    /// Its arguments, for the README (`FILE`).
    pub args: &'static str,
    /// 0.
    pub ok: &'static str,
    /// 1: the thing checked is bad.
    pub bad: Option<&'static str>,
    /// 2: a usage error, an unreadable file, a bad configuration.
    pub error: Option<&'static str>,
}

/// Every command, in the order of `swagent --help`.
pub const TABLE: &[Codes] = &[
    Codes {
        command: "serve",
        args: "FILE",
        ok: "stopped cleanly (SIGTERM/SIGINT; requests in flight get 30 s to finish)",
        bad: None,
        error: Some("could not start: bad agent file or setting, a failing finding with --production, port in use"),
    },
    Codes {
        command: "validate",
        args: "PATH...",
        ok: "every file is valid",
        bad: Some("some file is invalid (or has a warning, with --strict)"),
        error: Some("usage error or unreadable path"),
    },
    Codes {
        command: "schema",
        args: "",
        ok: "printed",
        bad: None,
        error: None,
    },
    Codes {
        command: "gen-creds",
        args: "",
        ok: "printed or written",
        bad: None,
        error: Some("usage error, refusing to overwrite without --force, or nothing to rotate (--rotate where the file sets neither the password nor the secret)"),
    },
    Codes {
        command: "verify-token",
        args: "TOKEN",
        ok: "valid",
        bad: Some("invalid: expired, bad_signature, wrong_function, wrong_call, malformed"),
        error: Some("usage error or no secret"),
    },
    Codes {
        command: "token mint",
        args: "",
        ok: "printed",
        bad: None,
        error: Some("usage error or no secret"),
    },
    Codes {
        command: "swml",
        args: "FILE",
        ok: "printed",
        bad: Some("the agent file is invalid"),
        error: Some("usage error"),
    },
    Codes {
        command: "graph",
        args: "FILE",
        ok: "printed",
        bad: Some("the agent file is invalid"),
        error: Some("usage error"),
    },
    Codes {
        command: "call",
        args: "FILE FUNCTION",
        ok: "the handler replied",
        bad: Some("invalid arguments, handler failure, or disabled by the kill switch"),
        error: Some("usage error or invalid agent file"),
    },
    Codes {
        command: "disable",
        args: "FUNCTION...",
        ok: "written",
        bad: None,
        error: Some("usage error, unknown function (with --agent), unwritable file, or a state file that does not parse (but with --all)"),
    },
    Codes {
        command: "enable",
        args: "FUNCTION...",
        ok: "written",
        bad: None,
        error: Some("usage error, unknown function (with --agent), unwritable file, or a state file that does not parse (but with --all)"),
    },
    Codes {
        command: "check",
        args: "FILE --production",
        ok: "nothing fails (cannot-tell items are listed for a person to verify)",
        bad: Some("some item fails"),
        error: Some("usage error, invalid agent file, or settings `serve` would refuse"),
    },
    Codes {
        command: "outbox list",
        args: "DIR",
        ok: "listed",
        bad: None,
        error: Some("usage error, or a folder that is not an outbox"),
    },
    Codes {
        command: "outbox retry",
        args: "DIR [ID]",
        ok: "sent back for delivery (none given up: nothing to do)",
        bad: Some("no given-up summary with that id"),
        error: Some("usage error, or a folder that is not an outbox or cannot be written"),
    },
    Codes {
        command: "outbox drop",
        args: "DIR ID",
        ok: "dropped",
        bad: Some("no summary with that id"),
        error: Some("usage error, or a folder that is not an outbox or cannot be written"),
    },
    Codes {
        command: "completions",
        args: "SHELL",
        ok: "printed",
        bad: None,
        error: None,
    },
];

fn codes(command: &str) -> &'static Codes {
    TABLE
        .iter()
        .find(|c| c.command == command)
        .unwrap_or_else(|| panic!("`{command}` is not in the exit-code table"))
}

/// The end of `swagent COMMAND --help`.
pub fn help(command: &str) -> String {
    let c = codes(command);
    let mut out = format!("Exit codes:\n  0  {}", c.ok);
    for (code, text) in [(1, c.bad), (2, c.error)] {
        if let Some(text) = text {
            out.push_str(&format!("\n  {code}  {text}"));
        }
    }
    out
}

/// The end of `swagent --help`: what 1 means for each command that uses it.
pub fn summary() -> String {
    let mut out = String::from(
        "Exit codes (each command's --help has its own):\n  0  success\n  1  the thing checked is bad:",
    );
    for c in TABLE {
        if let Some(bad) = c.bad {
            out.push_str(&format!("\n       {:<13} {bad}", c.command));
        }
    }
    out.push_str(
        "\n  2  usage error, unreadable file, bad configuration, or a server that could not start",
    );
    out
}

/// The README's table: a row per command.
pub fn markdown() -> String {
    let mut out = String::from("| command | 0 | 1 | 2 |\n| --- | --- | --- | --- |\n");
    for c in TABLE {
        let usage = match c.args {
            "" => format!("`{}`", c.command),
            args => format!("`{} {args}`", c.command),
        };
        out.push_str(&format!(
            "| {usage} | {} | {} | {} |\n",
            c.ok,
            c.bad.unwrap_or(""),
            c.error.unwrap_or("")
        ));
    }
    out
}

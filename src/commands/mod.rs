//! One function per subcommand. Each turns typed CLI args into calls of the
//! library and returns the exit code; none re-implements what `serve` does.

mod call;
mod check;
mod creds;
mod graph;
mod outbox;
mod serve;
mod switch;
mod swml;
mod tokens;
mod validate;

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::agent::{self, Agent, LoadOptions};
use crate::cli::{Command, CompletionsArgs, TokenCommand};

/// Runs one subcommand and returns its exit code.
pub fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Serve(args) => serve::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Schema => {
            print_out(&crate::agent::model::schema_json())?;
            Ok(0)
        }
        Command::GenCreds(args) => creds::run(&args),
        Command::VerifyToken(args) => tokens::verify(&args),
        Command::Token(TokenCommand::Mint(args)) => tokens::mint(&args),
        Command::Swml(args) => swml::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Call(args) => call::run(&args),
        Command::Completions(args) => completions(&args),
        Command::Disable(args) => switch::run(&args, false),
        Command::Enable(args) => switch::run(&args, true),
        Command::Check(args) => check::run(&args),
        Command::Outbox(command) => outbox::run(&command),
    }
}

/// Writes to stdout, surfacing a broken pipe as an error `main` recognizes.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the output")
}

/// Says on stdout what a command did, once it is done. A stdout that cannot
/// take it is a warning, not a failure: the change stands, and a script
/// that retried on exit 2 would make it again (rotate twice).
fn report_done(text: &str) {
    if let Err(e) = print_out(text) {
        if !crate::closed_pipe(&e) {
            crate::say!("warning: {e:#} (the change was made)");
        }
    }
}

/// Loads an agent for a command that needs a valid one, printing warnings.
fn load_agent(path: &Path) -> anyhow::Result<Agent> {
    let (agent, report) = agent::load(path, LoadOptions::default())?;
    if !report.findings.is_empty() {
        crate::say_raw!("{}", report.human());
    }
    Ok(agent)
}

fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = crate::cli::Cli::command();
    // Into a buffer: `generate` panics when it cannot write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "swagent", &mut script);
    print_out(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

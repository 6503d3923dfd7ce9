//! swagent serves declarative YAML voice-AI agents to the SignalWire platform.
//!
//! An agent file has a prompt and SWAIG functions whose handlers are a program
//! (argv, never a shell string), an HTTP call or a static reply. `serve` answers
//! the platform's SWML fetch, runs functions on `/swaig` and takes the call
//! summary on `/post_prompt`, behind HTTP Basic Auth and per-function HMAC
//! tokens. Modules, by concern:
//!
//! - [`agent`]: the file format, loading and validation (the only YAML reader)
//! - [`template`]: `${...}` parsing and rendering, shared by handlers and validate
//! - [`swml`]: agent + call → SWML document
//! - [`token`]: function tokens (SignalWire Python SDK format)
//! - [`auth`]: Basic Auth decision and credential loading
//! - [`audit`]: the audit log
//! - [`guard`]: confirmation codes and caller-verification grants
//! - [`killswitch`], [`alerts`], [`metrics`]: incident operations and detection
//! - [`files`]: reading and replacing the small files an operator hands it
//! - [`config`]: the one configuration stage: variables, `.env`, `serve`'s settings
//! - [`handlers`]: shell, http and static handlers
//! - [`signature`]: SignalWire request signatures (`SIGNALWIRE_SIGNING_KEY`)
//! - [`webhook`]: signatures of swagent's own outbound requests (`SWAGENT_WEBHOOK_SECRET`)
//! - [`limits`]: rate limits (per address, failed authentication, per function)
//! - [`call`]: the call pipeline: a call's start, its functions, its summary
//! - [`state`]: the running service's shared state
//! - [`server`]: the actix-web app, adapting HTTP requests to the pipeline
//! - [`commands`]: one module per subcommand
//! - [`cli`]: the command line as typed

/// `eprintln!` that never panics. A stderr that is closed or full (a log
/// collector that died, `2>/dev/full`) must not take a server worker down,
/// nor stop a command halfway after its side effect; the line is lost.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see [`say!`]).
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod agent;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod call;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod exit;
pub mod files;
pub mod graph;
pub mod guard;
pub mod handlers;
pub mod killswitch;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod random;
pub mod server;
pub mod signature;
pub mod state;
pub mod swml;
pub mod template;
pub mod text;
pub mod token;
pub mod webhook;

/// Whether `err` is a closed pipe (`swagent swml x | head`): the reader
/// has what it wanted, which is no failure.
pub fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Runs a parsed command line. `Ok(code)` is the process exit code; an `Err`
/// is printed with its chain and exits 2.
pub fn run(cli: cli::Cli) -> anyhow::Result<u8> {
    handlers::seal_inherited_descriptors();
    commands::dispatch(cli.command)
}

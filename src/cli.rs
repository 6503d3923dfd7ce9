//! The command line as typed: clap derive types and nothing else.
//!
//! Each subcommand has its own Args struct; what the values mean (reading
//! files, resolving secrets, defaults from the environment) is decided by the
//! command modules, so these types stay a plain description of the CLI.

use std::path::PathBuf;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::config::env::boolean_arg;
use crate::config::vars;
use crate::exit;

/// Serve declarative YAML voice-AI agents to SignalWire, with layered security.
#[derive(Debug, Parser)]
#[command(name = "swagent", version, after_help = exit::summary(), propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an agent: SWML at its route, `/swaig`, `/post_prompt`, `/health`, `/ready`.
    #[command(after_help = exit::help("serve"))]
    Serve(ServeArgs),
    /// Check agent files for CI: syntax, schema and meaning.
    #[command(after_help = exit::help("validate"))]
    Validate(ValidateArgs),
    /// Print the JSON Schema of the agent file format.
    #[command(after_help = exit::help("schema"))]
    Schema,
    /// Print fresh credentials: Basic Auth user and password, token secret, webhook secret.
    #[command(after_help = exit::help("gen-creds"))]
    GenCreds(GenCredsArgs),
    /// Decode a function token and check it against the configured secret.
    #[command(after_help = exit::help("verify-token"))]
    VerifyToken(VerifyTokenArgs),
    /// Function tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the SWML document `serve` would answer.
    #[command(after_help = exit::help("swml"))]
    Swml(SwmlArgs),
    /// Print an agent's contexts and steps as a Mermaid or Graphviz graph.
    #[command(after_help = exit::help("graph"))]
    Graph(GraphArgs),
    /// Run a function's handler locally, as `serve` would after its security checks.
    #[command(after_help = exit::help("call"))]
    Call(CallArgs),
    /// Disable functions at once on every server watching the state file.
    #[command(after_help = exit::help("disable"))]
    Disable(SwitchArgs),
    /// Enable functions again.
    #[command(after_help = exit::help("enable"))]
    Enable(SwitchArgs),
    /// Check an agent and its environment against the production hardening checklist.
    #[command(after_help = exit::help("check"))]
    Check(CheckArgs),
    /// The summary outbox: what waits for delivery, and what was given up on.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Print shell completions.
    #[command(after_help = exit::help("completions"))]
    Completions(CompletionsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The agent file.
    pub file: PathBuf,
    /// Address to listen on. Not read from `HOST`, which shells and
    /// platforms set for their own reasons (zsh sets it to the machine's name).
    #[arg(long, env = vars::HOST, default_value = "127.0.0.1", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub host: String,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = vars::PORT, default_value_t = 3000)]
    pub port: u16,
    /// Trust the proxy's headers: webhook URLs from `X-Forwarded-Proto`/
    /// `X-Forwarded-Host`, the client's address from `X-Forwarded-For`.
    ///
    /// Only behind a proxy that sets them: otherwise a client chooses the host
    /// that webhook URLs, with their credentials, point at. The SDK's
    /// `SWML_TRUST_PROXY_HEADERS` turns it on too.
    #[arg(long, env = vars::TRUST_PROXY, value_parser = boolean_arg, default_value_t = false, action = clap::ArgAction::SetTrue)]
    pub trust_proxy: bool,
    /// Accept a configured password shorter than 16 characters (local experiments only).
    #[arg(long)]
    pub allow_weak_password: bool,
    /// Serve HTTPS with this PEM certificate chain (leaf first).
    ///
    /// Without the flags, `SWML_SSL_ENABLED=true` with `SWML_SSL_CERT_PATH` and
    /// `SWML_SSL_KEY_PATH` does the same. A reverse proxy that terminates TLS
    /// is the recommended setup; see `deploy/`.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Write the audit log (JSON lines) to this file, or `-` for stdout.
    #[arg(long, env = vars::AUDIT_LOG, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// Refuse requests (503) while the audit log cannot be written.
    #[arg(long, requires = "audit_log")]
    pub audit_required: bool,
    /// Folder shared by replicas that records used confirmation codes, so a
    /// code works once across replicas and restarts.
    #[arg(long, env = vars::CONFIRM_STORE, value_name = "DIR")]
    pub confirm_store: Option<PathBuf>,
    /// Folder where call summaries wait, durably, until their `summary`
    /// handler delivers them; made when missing. Without it they wait in
    /// memory, and a restart loses the undelivered.
    #[arg(long, env = vars::OUTBOX, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// Kill-switch state file to watch (written by `swagent disable`/`enable`).
    #[arg(long, env = vars::STATE_FILE, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Serve `/metrics` without Basic Auth (for a scraper on a private network).
    #[arg(long)]
    pub metrics_public: bool,
    /// Refuse to start while a hardening finding fails: what `check
    /// --production` lists, such as a generated password or token secret.
    #[arg(long, env = vars::PRODUCTION, value_parser = boolean_arg, default_value_t = false, action = clap::ArgAction::SetTrue)]
    pub production: bool,
}

#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// Functions to disable or enable.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub functions: Vec<String>,
    /// Every function.
    #[arg(long)]
    pub all: bool,
    /// The state file `serve --state-file` watches.
    #[arg(long, env = vars::STATE_FILE, value_name = "PATH")]
    pub state_file: PathBuf,
    /// Check the function names against this agent file.
    #[arg(long, value_name = "FILE")]
    pub agent: Option<PathBuf>,
}

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Human,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The agent file.
    pub file: PathBuf,
    /// Walk the production hardening checklist (the only checklist so far).
    #[arg(long)]
    pub production: bool,
    /// Credentials older than this fail (judged from the `.env` file's age).
    #[arg(long, default_value = "90d", value_name = "AGE")]
    pub max_credential_age: String,
    /// The audit log `serve` writes, as given to it.
    #[arg(long, env = vars::AUDIT_LOG, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// The `--confirm-store` folder `serve` is given.
    #[arg(long, env = vars::CONFIRM_STORE, value_name = "DIR")]
    pub confirm_store: Option<PathBuf>,
    /// The `--outbox` folder `serve` is given.
    #[arg(long, env = vars::OUTBOX, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// `serve` is given `--trust-proxy` (or `SWML_TRUST_PROXY_HEADERS`).
    #[arg(long, env = vars::TRUST_PROXY, value_parser = boolean_arg, default_value_t = false, action = clap::ArgAction::SetTrue)]
    pub trust_proxy: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
}

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindingFormat {
    /// `file:line:col: error: message`, with the line and a caret.
    Human,
    /// One array with an object per file.
    Json,
    /// GitHub Actions workflow commands (`::error file=...`).
    Github,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Agent files, or folders to search for `*.yaml`/`*.yml`.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Treat warnings (such as an unset `${env:NAME}`) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FindingFormat::Human)]
    pub format: FindingFormat,
    /// Also check each agent's SWML against this SWML schema (such as the
    /// `schema.json` of the SDK you run), with the context and step fields
    /// the SDK's builder emits.
    #[arg(long, value_name = "FILE")]
    pub swml_schema: Option<PathBuf>,
}

/// Output format of `gen-creds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredsFormat {
    /// `KEY=value` lines, as in a `.env` file.
    Env,
    /// One JSON object keyed by variable name.
    Json,
    /// `export KEY='value'` lines.
    Shell,
}

#[derive(Debug, clap::Args)]
pub struct GenCredsArgs {
    /// The Basic Auth user.
    #[arg(long, default_value = "signalwire")]
    pub user: String,
    /// Password length (32 to 1024).
    #[arg(long, default_value_t = 48)]
    pub length: usize,
    /// Output format when printing [default: env]; `--write` writes `NAME=value` lines.
    #[arg(long, value_enum)]
    pub format: Option<CredsFormat>,
    /// Write to this file (mode 0600) instead of printing: adds missing keys,
    /// keeps everything else.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
    /// With --write: replace keys that are already present.
    #[arg(long, requires = "write")]
    pub force: bool,
    /// With --write: replace the password and the token secret, keep the user,
    /// and put a new webhook secret before the old one (both sign until you
    /// remove the old).
    #[arg(long, requires = "write", conflicts_with_all = ["force", "user"])]
    pub rotate: bool,
}

/// Where `verify-token` and `token mint` get the secret. There is no flag that
/// takes the secret itself: it would show in `ps` and shell history.
#[derive(Debug, clap::Args)]
pub struct SecretArgs {
    /// Read the secret from this file: its first line, without the line
    /// ending but with any spaces, as the server takes the variable.
    #[arg(long, value_name = "PATH", conflicts_with = "prompt")]
    pub secret_file: Option<PathBuf>,
    /// Type the secret at a prompt (not echoed).
    #[arg(long)]
    pub prompt: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyTokenArgs {
    /// The token, or `-` to read it from stdin.
    pub token: String,
    /// Also check that the token names this function.
    #[arg(long)]
    pub function: Option<String>,
    /// Also check that the token names this call.
    #[arg(long)]
    pub call_id: Option<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List the summaries waiting for delivery and those given up on.
    #[command(after_help = exit::help("outbox list"))]
    List(OutboxListArgs),
    /// Send given-up summaries back for delivery: one by id, or all.
    #[command(after_help = exit::help("outbox retry"))]
    Retry(OutboxRetryArgs),
    /// Delete one summary, waiting or given up, for good.
    #[command(after_help = exit::help("outbox drop"))]
    Drop(OutboxDropArgs),
}

#[derive(Debug, clap::Args)]
pub struct OutboxListArgs {
    /// The `--outbox` folder.
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
}

#[derive(Debug, clap::Args)]
pub struct OutboxRetryArgs {
    /// The `--outbox` folder.
    pub dir: PathBuf,
    /// The summary to send again; without it, every one given up on.
    pub id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OutboxDropArgs {
    /// The `--outbox` folder.
    pub dir: PathBuf,
    /// The summary to delete.
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token with the configured secret, to try a secure function with curl.
    #[command(after_help = exit::help("token mint"))]
    Mint(MintArgs),
}

#[derive(Debug, clap::Args)]
pub struct MintArgs {
    /// The function the token is for.
    #[arg(long)]
    pub function: String,
    /// The call the token is for.
    #[arg(long)]
    pub call_id: String,
    /// Seconds the token lives.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    /// Print the full webhook URL under this base (e.g. `http://127.0.0.1:3000`).
    #[arg(long, value_name = "BASE")]
    pub url: Option<String>,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, clap::Args)]
pub struct SwmlArgs {
    /// The agent file.
    pub file: PathBuf,
    /// The call id to mint tokens for (default: random).
    #[arg(long)]
    pub call_id: Option<String>,
    /// Base URL of webhooks (default: `SWML_PROXY_URL_BASE`, else `http://127.0.0.1:3000`).
    #[arg(long)]
    pub base_url: Option<String>,
}

/// Output format of `graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart, for Markdown that renders Mermaid.
    Mermaid,
    /// Graphviz DOT, for `dot -Tsvg`.
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The agent file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The agent file.
    pub file: PathBuf,
    /// The function to run.
    pub function: String,
    /// An argument: taken as text when declared `type: string`, else parsed
    /// as JSON when it parses, else taken as text.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// All arguments as one JSON object (merged under --arg).
    #[arg(long, value_name = "JSON")]
    pub args_json: Option<String>,
    /// The call id the handler sees.
    #[arg(long, default_value = "local-call")]
    pub call_id: String,
    /// The kill-switch state file: a function it disables is not run.
    #[arg(long, env = vars::STATE_FILE, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Run the function even if the kill switch disables it (to try a fix
    /// before `swagent enable`).
    #[arg(long)]
    pub ignore_kill_switch: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

impl Command {
    /// Whether the command reads settings that `.env` may hold. Those that
    /// do not (the kill switch, the schema, completions, and `gen-creds`,
    /// which reads the file it writes itself) go on, with a
    /// warning, when `.env` cannot be read: an operator disabling functions
    /// from the service's folder must not be stopped by its `.env`.
    pub fn needs_dotenv(&self) -> bool {
        !matches!(
            self,
            Command::Disable(_)
                | Command::Enable(_)
                | Command::Schema
                | Command::Completions(_)
                | Command::GenCreds(_)
        )
    }
}

impl Cli {
    /// Parses the command line, exiting on a usage error as clap does
    /// (exit 2), but naming the variable when a bad value came from one:
    /// `PORT=abc` is otherwise reported as a bad `--port`, a flag the
    /// operator never typed.
    ///
    /// `unread` is why `.env` could not be read, said first on a usage error:
    /// a required option it would have given (`SWAGENT_STATE_FILE`) is
    /// otherwise reported missing without a word about why.
    pub fn parse_or_exit(unread: Option<&anyhow::Error>) -> Cli {
        Cli::try_parse().unwrap_or_else(|e| {
            if let Some(unread) = unread.filter(|_| e.use_stderr()) {
                crate::say!("warning: {unread:#}; `.env` was not read");
            }
            Cli::exit_with(e)
        })
    }

    fn exit_with(e: clap::Error) -> ! {
        match from_variable(&e) {
            Some(said) => {
                crate::say_raw!("{said}");
                std::process::exit(2)
            }
            None => e.exit(),
        }
    }
}

/// clap's message for a bad value, with the variable it came from, when the
/// flag was not on the command line.
fn from_variable(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split(' ').next()?;
    let typed = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| {
            a == flag
                || a.to_str()
                    .is_some_and(|a| a.starts_with(&format!("{flag}=")))
        });
    if typed {
        return None;
    }
    let long = flag.strip_prefix("--")?;
    let command = Cli::command();
    let variable = command
        .get_subcommands()
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    let text = e.render().to_string();
    let at = format!("for '{arg}'");
    text.contains(&at)
        .then(|| text.replacen(&at, &format!("{at} (from the variable `{variable}`)"), 1))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Every command has a row of exit codes, and every row a command.
    #[test]
    fn the_exit_code_table_has_every_command() {
        let cli = super::Cli::command();
        let mut commands: Vec<String> = Vec::new();
        for sub in cli.get_subcommands() {
            match sub.get_subcommands().next() {
                None => commands.push(sub.get_name().to_owned()),
                Some(_) => commands.extend(
                    sub.get_subcommands()
                        .map(|s| format!("{} {}", sub.get_name(), s.get_name())),
                ),
            }
        }
        let table: Vec<String> = crate::exit::TABLE
            .iter()
            .map(|c| c.command.to_owned())
            .collect();
        assert_eq!(commands, table);
    }
}

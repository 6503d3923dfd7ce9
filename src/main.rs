//! The `swagent` binary: parse arguments, run, map the outcome to an exit code.
//! Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before parsing, so that `.env` feeds the options read from variables;
    // its error is said after, so `--help` and `--version` still answer.
    let environment = swagent::config::env::load();
    let cli = swagent::cli::Cli::parse_or_exit(environment.as_ref().err());
    if let Err(err) = environment {
        // The kill switch must work in the service's folder whatever its
        // `.env` is (another user's, or broken): it needs none of it.
        if cli.command.needs_dotenv() {
            swagent::say!("error: {err:#}");
            return ExitCode::from(2);
        }
        swagent::say!(
            "warning: {err:#}; going on without `.env`, which this command does not need"
        );
    }
    match swagent::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`swagent swml x | head`) is not a failure.
            if swagent::closed_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            swagent::say!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

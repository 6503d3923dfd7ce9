//! `swagent graph FILE`: an agent's contexts and steps, printed as a
//! Mermaid flowchart or Graphviz DOT. The drawing is [`crate::graph`]'s;
//! this only loads the agent and picks the format.

use crate::agent::{self, LoadOptions};
use crate::cli::{GraphArgs, GraphFormat};

pub(super) fn run(args: &GraphArgs) -> anyhow::Result<u8> {
    let agent = match agent::load(&args.file, LoadOptions::default()) {
        Ok((agent, report)) => {
            // Warnings such as an unreachable step are what a reader of
            // the graph wants to know; they go to stderr, off the graph.
            if !report.findings.is_empty() {
                crate::say_raw!("{}", report.human());
            }
            agent
        }
        Err(agent::LoadError::Invalid { report }) => {
            crate::say_raw!("{}", report.human());
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let text = match args.format {
        GraphFormat::Mermaid => crate::graph::mermaid(&agent),
        GraphFormat::Dot => crate::graph::dot(&agent),
    };
    super::print_out(&text)?;
    Ok(0)
}

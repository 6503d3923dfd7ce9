//! `swagent validate`: every agent file under the given paths, for CI.

use std::path::PathBuf;

use crate::agent::findings::{Finding, Report};
use crate::agent::load::{agent_files, load_report};
use crate::agent::LoadOptions;
use crate::cli::{FindingFormat, ValidateArgs};

pub(super) fn run(args: &ValidateArgs) -> anyhow::Result<u8> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in &args.paths {
        let found = agent_files(path)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
        if found.is_empty() {
            anyhow::bail!(
                "no agent files (`*.yaml`, `*.yml`) under `{}`",
                path.display()
            );
        }
        files.extend(found);
    }
    let opts = LoadOptions {
        strict: args.strict,
    };
    let schema = args
        .swml_schema
        .as_deref()
        .map(crate::swml::conformance::load_schema)
        .transpose()?;
    let mut reports: Vec<Report> = Vec::with_capacity(files.len());
    for file in &files {
        let (agent, mut report) = load_report(file, opts)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", file.display()))?;
        if let (Some(schema), Some(agent)) = (&schema, &agent) {
            conforms(schema, agent, &mut report);
        }
        reports.push(report);
    }
    let failed = reports.iter().filter(|r| !r.passes(args.strict)).count();
    let out = match args.format {
        FindingFormat::Human => {
            let mut s: String = reports.iter().map(Report::human).collect();
            if failed == 0 {
                s.push_str(&format!("{} agent file(s) valid\n", reports.len()));
            } else {
                s.push_str(&format!(
                    "{failed} of {} agent file(s) invalid\n",
                    reports.len()
                ));
            }
            s
        }
        FindingFormat::Github => reports.iter().map(Report::github).collect(),
        FindingFormat::Json => {
            let all: Vec<_> = reports.iter().map(|r| r.json(args.strict)).collect();
            format!("{}\n", serde_json::to_string_pretty(&all)?)
        }
    };
    if args.format == FindingFormat::Human && failed > 0 {
        // Findings are diagnostics: stderr, like a compiler.
        crate::say_raw!("{out}");
    } else {
        super::print_out(&out)?;
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// The agent's SWML against the user's schema: each failure an error at
/// the place in the file it comes from.
fn conforms(schema: &jsonschema::Validator, agent: &crate::agent::Agent, report: &mut Report) {
    use crate::swml::conformance::{failures, placeholder};
    let doc = placeholder(agent);
    for (pos, message) in failures(schema, agent, &report.source, &doc) {
        report.findings.push(Finding::error(pos, message));
    }
    report.findings.sort_by_key(|f| (f.line, f.column));
}

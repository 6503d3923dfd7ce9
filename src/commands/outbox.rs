//! `swagent outbox`: what an operator does with the summary outbox while
//! `serve` runs: list it, send given-up summaries back for delivery (the
//! worker picks them up within seconds), drop one. Never the summary text.

use serde_json::json;

use super::{print_out, report_done};
use crate::cli::{CheckFormat, OutboxCommand};
use crate::outbox::{now_ms, Entry, Files, Store as _, StoreError};

pub fn run(command: &OutboxCommand) -> anyhow::Result<u8> {
    match command {
        OutboxCommand::List(args) => {
            let files = Files::existing(&args.dir)?;
            let pending = files.pending()?;
            let dead = files.dead()?;
            let text = match args.format {
                CheckFormat::Human => human(&pending, &dead),
                CheckFormat::Json => json_list(&pending, &dead),
            };
            print_out(&text)?;
            Ok(0)
        }
        OutboxCommand::Retry(args) => {
            let files = Files::existing(&args.dir)?;
            match files.revive(args.id.as_deref()) {
                Ok(n) => {
                    report_done(&format!(
                        "{n} summar{} sent back for delivery\n",
                        if n == 1 { "y" } else { "ies" }
                    ));
                    Ok(0)
                }
                Err(StoreError::NotFound(id)) => not_found(&id, "given up on"),
                Err(e) => Err(e.into()),
            }
        }
        OutboxCommand::Drop(args) => {
            let files = Files::existing(&args.dir)?;
            match files.remove(&args.id) {
                Ok(()) => {
                    report_done(&format!("summary `{}` dropped\n", args.id));
                    Ok(0)
                }
                Err(StoreError::NotFound(id)) => not_found(&id, "in the outbox"),
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn not_found(id: &str, where_: &str) -> anyhow::Result<u8> {
    crate::say!(
        "error: no summary `{}` {where_}",
        crate::text::printable(id)
    );
    Ok(1)
}

/// One line per summary, oldest first, then a count.
fn human(pending: &[Entry], dead: &[Entry]) -> String {
    let now = now_ms();
    let mut out =
        String::from("ID                                STATE    AGE       AGENT  REASON\n");
    let rows = pending
        .iter()
        .map(|e| (e, "waiting"))
        .chain(dead.iter().map(|e| (e, "given-up")));
    for (entry, state) in rows {
        let reason = entry.dead.as_ref().map_or("", |d| d.reason.as_str());
        out.push_str(&format!(
            "{:<33} {state:<8} {:<9} {}  {}\n",
            entry.id,
            age(entry.age_ms(now)),
            entry.agent,
            crate::text::printable(reason)
        ));
    }
    out.push_str(&format!(
        "{} waiting, {} given up\n",
        pending.len(),
        dead.len()
    ));
    out
}

fn json_list(pending: &[Entry], dead: &[Entry]) -> String {
    let now = now_ms();
    let row = |e: &Entry, state: &str| {
        json!({
            "id": e.id,
            "state": state,
            "agent": e.agent,
            "received_ms": e.received_ms,
            "age_seconds": e.age_ms(now) / 1000,
            "bytes": e.request.len(),
            "reason": e.dead.as_ref().map(|d| d.reason.clone()),
        })
    };
    let rows: Vec<_> = pending
        .iter()
        .map(|e| row(e, "waiting"))
        .chain(dead.iter().map(|e| row(e, "given-up")))
        .collect();
    format!("{}\n", serde_json::Value::Array(rows))
}

/// `2h05m`, `3m10s`, `12s`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

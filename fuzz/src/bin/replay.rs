//! Replays the committed corpora (and any crash artifacts) through the fuzz
//! targets on stable Rust, without libFuzzer: a regression check that runs
//! anywhere (`just fuzz-replay`).
//!
//! Usage: `replay [TARGET [FILE_OR_DIR...]]`. Without arguments, every target
//! replays `fuzz/corpus/TARGET/` and `fuzz/artifacts/TARGET/`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let selected: Vec<_> = swagent_fuzz::TARGETS
        .iter()
        .filter(|(name, _)| args.first().is_none_or(|a| a == name))
        .collect();
    if selected.is_empty() {
        eprintln!("error: unknown target `{}`", args[0]);
        return ExitCode::from(2);
    }
    let mut failed = 0;
    for (name, run) in selected {
        let inputs: Vec<PathBuf> = if args.len() > 1 {
            args[1..].iter().flat_map(|p| files(Path::new(p))).collect()
        } else {
            ["corpus", "artifacts"]
                .iter()
                .flat_map(|d| files(&root.join(d).join(name)))
                .collect()
        };
        for input in &inputs {
            let data = std::fs::read(input).expect("the input is readable");
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                eprintln!("FAILED {name}: {}", input.display());
                failed += 1;
            }
        }
        println!("{name}: {} input(s) replayed", inputs.len());
    }
    if failed > 0 {
        eprintln!("{failed} input(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

//! The plain-spawn baseline for the shell handler benchmark: how many times
//! per second this machine can start a program, feed it stdin, read its
//! stdout and stderr, and wait for it, with no HTTP and no swagent.
//!
//! Each of THREADS threads loops for SECONDS doing what swagent's shell
//! handler does per call: a fresh process with an empty environment but
//! PATH, in its own process group, `{}` written to stdin, both outputs read to
//! the end, then wait. Running several threads lets the baseline use every
//! core, as swagent does with its concurrent requests, so the ratio compares
//! like with like.
//!
//! Usage: `spawn-loop SECONDS THREADS PROGRAM [ARG...]`; prints `SPAWN rate=N`.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn one(program: &str, args: &[String], path: &str) {
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    // Dropping stdin after the write closes it, as swagent does.
    let _ = child.stdin.take().expect("piped").write_all(b"{}");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut out)
        .expect("stdout reads");
    let mut err = Vec::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_end(&mut err)
        .expect("stderr reads");
    let status = child.wait().expect("the program is waited for");
    assert!(status.success(), "the program failed: {status}");
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() < 3 {
        eprintln!("usage: spawn-loop SECONDS THREADS PROGRAM [ARG...]");
        std::process::exit(2);
    }
    let seconds: f64 = argv[0].parse().expect("SECONDS is a number");
    let threads: usize = argv[1].parse().expect("THREADS is a number");
    let program = argv[2].clone();
    let args: Vec<String> = argv[3..].to_vec();
    let path = std::env::var("PATH").unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            let (program, args, path) = (program.clone(), args.clone(), path.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    one(&program, &args, &path);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a worker thread panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "SPAWN rate={:.1}",
        done.load(Ordering::Relaxed) as f64 / elapsed
    );
}

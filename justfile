# Everyday recipes. `just --list` shows them. Every recipe is plain bash, so
# without `just` the lines can be pasted into a shell as they are.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Build the release binary (target/release/swagent).
build:
    cargo build --release

# Run every test (the README's test command).
test:
    cargo test

# Formatting check and clippy with warnings as errors, as CI runs them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Serve an agent on 127.0.0.1:3000 (default: the bank example).
serve agent="agents/bank.yaml":
    cargo run --release -- serve {{agent}}

# Criterion micro-benchmarks, then the HTTP/startup/validate/handler run (bench/http.sh).
bench:
    cargo bench --bench core
    bench/http.sh

# User-space instructions per request (callgrind): repeatable where req/s is not.
bench-icount:
    bench/icount.sh

# Load test: SECONDS at 256 connections over valid and hostile requests.
bench-load seconds="60":
    DURATION={{seconds}} bench/load.sh

# Strangers' slow bodies with a signing key: RSS with the body budget and without.
bench-slow-bodies connections="500":
    N={{connections}} bench/slow-bodies.sh

# New inputs go to target/fuzz-corpus/TARGET, so the committed seeds stay small.
# The first run builds everything with ASan (about 20 min on 2 shared cores).
# Fuzz TARGET for SECONDS with libFuzzer (needs nightly and cargo-fuzz).
fuzz target seconds="600":
    mkdir -p target/fuzz-corpus/{{target}}
    cargo +nightly fuzz run {{target}} target/fuzz-corpus/{{target}} fuzz/corpus/{{target}} -- -max_total_time={{seconds}} -timeout=10

# Replay the committed fuzz corpora (and crash artifacts) through every target, on stable.
fuzz-replay:
    cargo run --release --manifest-path fuzz/Cargo.toml --target-dir target --bin replay

# The SignalWire Python SDK in target/sdk-venv (interop tests and the benchmark peer),
# with the Standard Webhooks package that checks swagent's outbound signatures.
sdk-venv:
    python3 -m venv target/sdk-venv
    target/sdk-venv/bin/pip install --quiet signalwire-sdk==3.7.5 standardwebhooks==1.3.0

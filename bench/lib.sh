# Shared helpers of bench/http.sh and bench/load.sh (sourced, not run).
#
# Everything a script starts is recorded in PIDS and killed by PID on exit;
# every server binds 127.0.0.1 and every request goes there.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/target/bench-work"
# SWAGENT may point at another build (e.g. another release profile).
SWAGENT="${SWAGENT:-$ROOT/target/release/swagent}"
BARE="$ROOT/target/release/actix-bare"
FORWARD="$ROOT/target/release/actix-forward"
SPAWN_LOOP="$ROOT/target/release/spawn-loop"
SDK_PYTHON="${SDK_PYTHON:-$ROOT/target/sdk-venv/bin/python}"
mkdir -p "$WORK"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "error: $*" >&2
  exit 1
}

# Throwaway credentials for this run only (loopback servers, killed at exit).
rand() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }
BENCH_USER=bench
BENCH_PASSWORD="$(rand 32)"
BENCH_SECRET="$(rand 40)"
BENCH_AUTH="Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASSWORD" | base64 -w0)"
export BENCH_AUTH

# cpu_ticks PID: the process's user and system time so far, in clock ticks.
cpu_ticks() {
  # Fields 14 and 15, counted after the `(comm)` field, which may hold spaces.
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http PORT PATH [AUTH]: polls until PATH answers 200, for at most 30 s.
wait_http() {
  local port=$1 path=$2 auth=${3:-} i
  for i in $(seq 1 300); do
    if curl -fsS -o /dev/null -m 1 ${auth:+-H "Authorization: $auth"} \
      "http://127.0.0.1:$port$path" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "nothing answered 200 on 127.0.0.1:$port$path within 30 s"
}

# Builds what the benchmarks run: swagent and the baselines, in release.
build_release() {
  if [ "${SKIP_BUILD:-0}" = 1 ]; then
    return 0
  fi
  (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
  # Same target dir: the baseline shares swagent's compiled actix-web.
  cargo build --release --quiet --manifest-path "$ROOT/bench/actix-bare/Cargo.toml" \
    --target-dir "$ROOT/target" || die "building bench/actix-bare failed"
  cargo build --release --quiet --manifest-path "$ROOT/bench/actix-forward/Cargo.toml" \
    --target-dir "$ROOT/target" || die "building bench/actix-forward failed"
}

# The SignalWire Python SDK in target/sdk-venv (or $SDK_PYTHON), created once.
ensure_sdk() {
  if ! "$SDK_PYTHON" -c 'import signalwire' 2>/dev/null; then
    # The version .ci/run and `just sdk-venv` install, so the peer in
    # bench/RESULTS.md is the one the interop tests ran against.
    echo "creating $ROOT/target/sdk-venv with signalwire-sdk 3.7.5 ..." >&2
    python3 -m venv "$ROOT/target/sdk-venv"
    "$ROOT/target/sdk-venv/bin/pip" install --quiet 'signalwire-sdk==3.7.5'
    SDK_PYTHON="$ROOT/target/sdk-venv/bin/python"
  fi
}

# rss_kb PID FIELD: VmHWM (peak) or VmRSS (now) in kB from /proc.
rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# start_swagent LOGNAME PORT AGENT [ARGS...]: serve in the background with the
# bench credentials; sets LAST_PID.
start_swagent() {
  local name=$1 port=$2 agent=$3
  shift 3
  env SWML_BASIC_AUTH_USER="$BENCH_USER" SWML_BASIC_AUTH_PASSWORD="$BENCH_PASSWORD" \
    SIGNALWIRE_SWAIG_SECRET="$BENCH_SECRET" ${SWAGENT_ENV:-} \
    "$SWAGENT" serve "$agent" --host 127.0.0.1 --port "$port" "$@" \
    >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  wait_http "$port" /health
}

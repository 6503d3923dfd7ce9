#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: a
# figure to compare builds by on a noisy shared machine, where req/s of one
# binary moved by 25% between runs and its instruction count by under 10%
# (some start-up work depends on timing, and only partly cancels out).
#
#   bench/icount.sh                      # swagent (SWML, static SWAIG) and the bare limit;
#                                        # an http function and the bare forwarder
#   SWAGENT=/path/to/other/swagent bench/icount.sh
#
# Each server runs twice under callgrind, answering N=1000 and then N=3000
# identical sequential requests (bench/seq_post.py); the difference divided by
# 2000 is the cost of one request, start-up and shutdown cancelled out.
# Kernel time (the larger part of a request on loopback) is not counted.
# Everything it starts is killed on exit; traffic goes to 127.0.0.1 only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

for tool in valgrind curl python3; do
  command -v "$tool" >/dev/null || die "\`$tool\` is not installed (Debian: apt-get install $tool)"
done
build_release

SWML_BODY='{"call_id":"bench-call"}'
HOURS_BODY='{"function":"get_hours","argument":{"parsed":[{}],"raw":"{}"},"call_id":"bench-call"}'

# instructions NAME N PATH BODY COMMAND...: total Ir of COMMAND serving N
# requests; the word PORT in COMMAND becomes a free port.
instructions() {
  local name=$1 n=$2 path=$3 body=$4 port out pid arg cmd=()
  shift 4
  port=$(free_port)
  for arg in "$@"; do cmd+=("${arg/#PORT/$port}"); done
  out="$WORK/callgrind.$name.$n.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" \
    >"$WORK/callgrind.$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 300); do
    curl -s -o /dev/null -m 1 -X POST "http://127.0.0.1:$port/health" && break
    sleep 0.2
  done
  python3 "$ROOT/bench/seq_post.py" "$port" "$path" "$body" "$n" ||
    die "$name: not every answer was 200"
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

# per_request NAME PATH BODY COMMAND...: prints instructions per request.
per_request() {
  local name=$1 path=$2 body=$3 a b
  shift 3
  a=$(instructions "$name" 1000 "$path" "$body" "$@")
  b=$(instructions "$name" 3000 "$path" "$body" "$@")
  echo "$name $(((b - a) / 2000))"
}

# For swagent (the bare server ignores them).
export SWML_BASIC_AUTH_USER="$BENCH_USER" SWML_BASIC_AUTH_PASSWORD="$BENCH_PASSWORD"
export SIGNALWIRE_SWAIG_SECRET="$BENCH_SECRET" SWML_RATE_LIMIT=0
SERVE=("$SWAGENT" serve "$ROOT/agents/bank.yaml" --host 127.0.0.1 --port PORT)

# The http handler (issue 28): a function that POSTs a small JSON body to the
# bare server, unsigned and signed, and bench/actix-forward doing the same.
# The upstream runs natively: only the server's instructions are counted.
# Under valgrind ring's SHA-256 takes its AVX path (no SHA-NI), so signing
# counts more here than it costs natively.
P_UP=$(free_port)
"$BARE" "$P_UP" 2377 >"$WORK/icount-upstream.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null -m 1 -X POST "http://127.0.0.1:$P_UP/" 2>/dev/null && break
  sleep 0.1
done
mkdir -p "$WORK/icount"
cat >"$WORK/icount/forward.yaml" <<EOF
name: forward
prompt: { text: Benchmark agent. }
functions:
  upstream_post:
    description: Posts to a local upstream, as the forwarder does.
    secure: false
    http:
      url: http://127.0.0.1:$P_UP/upstream
      method: POST
      body: { call_id: "\${call_id}" }
EOF
POST_BODY='{"function":"upstream_post","argument":{"parsed":[{}]},"call_id":"bench-call"}'
SERVE_HTTP=("$SWAGENT" serve "$WORK/icount/forward.yaml" --host 127.0.0.1 --port PORT)
WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
{
  per_request limit / "$SWML_BODY" "$BARE" PORT 2377
  per_request swagent_swml / "$SWML_BODY" "${SERVE[@]}"
  per_request swagent_swaig /swaig "$HOURS_BODY" "${SERVE[@]}"
  per_request forward / "$POST_BODY" "$FORWARD" PORT "http://127.0.0.1:$P_UP/upstream"
  per_request http_post /swaig "$POST_BODY" "${SERVE_HTTP[@]}"
  SWAGENT_WEBHOOK_SECRET="$WEBHOOK_SECRET" per_request http_signed /swaig "$POST_BODY" "${SERVE_HTTP[@]}"
} | awk '
  { ir[$1] = $2; printf "%-14s %8d instructions per request\n", $1, $2 }
  END {
    printf "swagent_swml / limit   %.2f\n", ir["swagent_swml"] / ir["limit"]
    printf "swagent_swaig / limit  %.2f\n", ir["swagent_swaig"] / ir["limit"]
    printf "http_post / forward    %.2f\n", ir["http_post"] / ir["forward"]
    printf "http_signed / forward  %.2f\n", ir["http_signed"] / ir["forward"]
  }'

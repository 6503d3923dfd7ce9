#!/usr/bin/env bash
# Strangers' slow bodies against a server with a signing key (review 12 #6):
# with `SIGNALWIRE_SIGNING_KEY` set, a body is read before Basic Auth to check
# its signature. N connections (default 500), no credentials, each send most
# of a 1 MiB body and hold it. Run twice in one go on the same binary: with
# the default `SWAGENT_UNVERIFIED_BODIES` (16 MiB, 2 MiB of it per address),
# and with a 4 GiB budget (512 MiB per address), which a run of up to 500
# connections does not reach, as the baseline without one. All connections
# come from 127.0.0.1. Prints RSS and answers.
#
#   bench/slow-bodies.sh            # 500 connections
#   N=200 bench/slow-bodies.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-500}
echo "building (release) ..." >&2
build_release
for budget in default 4294967296; do
  PORT=$(free_port)
  extra="SIGNALWIRE_SIGNING_KEY=PSK_bench_$(rand 16)"
  [ "$budget" = default ] || extra="$extra SWAGENT_UNVERIFIED_BODIES=$budget"
  SWAGENT_ENV="$extra" start_swagent "slow-bodies-$budget" "$PORT" "$ROOT/agents/hello.yaml"
  printf 'budget=%s connections=%s ' "$budget" "$N"
  python3 "$ROOT/bench/slow_bodies.py" "$PORT" "$LAST_PID" "$N"
  kill "$LAST_PID"
  wait "$LAST_PID" 2>/dev/null || true
done

#!/usr/bin/env bash
# Load test of issue 9: DURATION seconds (default 60) at 256 connections over
# a mix of valid and hostile requests against swagent serving agents/bank.yaml
# (plus one secure static function, so valid secure calls measure the token
# check and not a script's spawn rate).
#
#   bench/load.sh                  # 60 s
#   DURATION=15 bench/load.sh      # short
#
# Four wrk processes run at once, 64 connections each, one per kind:
#   swml       POST / with Basic Auth                       must get 200
#   swaig      POST /swaig?__token=VALID (secure function)   must get 200
#   bad_token  POST /swaig?__token=FORGED                    must get 403
#   bad_creds  POST / with a wrong password                  must get 401
# One process per kind makes every status attributable to its kind. Reported:
# statuses per kind, anything unexpected (a 5xx or a 2xx for a bad request is
# a failure), socket errors (resets, timeouts), and swagent's RSS at a third
# and at the end of the run (20 s and 60 s by default) with the growth.
# Exit 0 only if every valid request got 200, every bad one exactly its
# 401/403, no socket error, and RSS grew less than 10%.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-60}
CONNS_EACH=64

command -v wrk >/dev/null || die "\`wrk\` is not installed (Debian: apt-get install wrk)"
echo "building (release) ..." >&2
build_release

mkdir -p "$WORK/load/agents"
cp -r "$ROOT/agents/scripts" "$WORK/load/agents/"
# bank.yaml ends with its `functions:` map, so a function can be appended.
{
  cat "$ROOT/agents/bank.yaml"
  cat <<'YAML'
  get_rates:
    description: Today's exchange rates (secure, static).
    static:
      response: One euro is one dollar ten.
YAML
} >"$WORK/load/agents/load.yaml"

PORT=$(free_port)
# The flood guard would answer 429 to one loopback address; see http.sh.
# All traffic comes from one loopback address and half of it is deliberately
# refused: the per-address flood guard and the failed-authentication lock-out
# would turn the run into a count of 429s (both are tested in tests/it/).
SWAGENT_ENV="SWML_RATE_LIMIT=0 SWAGENT_AUTH_FAILURE_LIMIT=0" start_swagent load "$PORT" "$WORK/load/agents/load.yaml"
PID=$LAST_PID

CALL=load-call
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
VALID=$(SIGNALWIRE_SWAIG_SECRET="$BENCH_SECRET" "$SWAGENT" token mint \
  --function get_rates --call-id "$CALL" --ttl $((DURATION + 600)))
FORGED=$(SIGNALWIRE_SWAIG_SECRET="not-the-$BENCH_SECRET" "$SWAGENT" token mint \
  --function get_rates --call-id "$CALL" --ttl $((DURATION + 600)))
SWAIG_BODY="{\"function\":\"get_rates\",\"argument\":{\"parsed\":[{}]},\"call_id\":\"$CALL\"}"
BAD_AUTH="Basic $(printf '%s:%s' "$BENCH_USER" "wrong-$BENCH_PASSWORD" | base64 -w0)"

# Each kind must get its status before the load starts, or the run means nothing.
check_one() {
  local want=$1 path=$2 auth=$3 body=$4 got
  got=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $auth" \
    -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$PORT$path")
  [ "$got" = "$want" ] || die "$path answered $got before the load, expected $want"
}
check_one 200 / "$BENCH_AUTH" '{"call_id":"load-call"}'
check_one 200 "/swaig?__token=$(urlenc "$VALID")" "$BENCH_AUTH" "$SWAIG_BODY"
check_one 403 "/swaig?__token=$(urlenc "$FORGED")" "$BENCH_AUTH" "$SWAIG_BODY"
check_one 401 / "$BAD_AUTH" '{"call_id":"load-call"}'

run_kind() {
  local kind=$1 expect=$2 path=$3 auth=$4 body=$5
  BENCH_KIND=$kind BENCH_EXPECT=$expect BENCH_PATH=$path BENCH_AUTH=$auth BENCH_BODY=$body \
    wrk -t1 -c"$CONNS_EACH" -d"${DURATION}s" --timeout 5s -s "$ROOT/bench/wrk/load.lua" \
    "http://127.0.0.1:$PORT" >"$WORK/load-$kind.out" 2>&1
}
echo "load: ${DURATION}s, $((4 * CONNS_EACH)) connections ..." >&2
KINDS=()
run_kind swml 200 / "$BENCH_AUTH" '{"call_id":"load-call"}' &
KINDS+=("$!")
run_kind swaig 200 "/swaig?__token=$(urlenc "$VALID")" "$BENCH_AUTH" "$SWAIG_BODY" &
KINDS+=("$!")
run_kind bad_token 403 "/swaig?__token=$(urlenc "$FORGED")" "$BENCH_AUTH" "$SWAIG_BODY" &
KINDS+=("$!")
run_kind bad_creds 401 / "$BAD_AUTH" '{"call_id":"load-call"}' &
KINDS+=("$!")
PIDS+=("${KINDS[@]}")

FIRST=$((DURATION / 3))
sleep "$FIRST"
RSS_FIRST=$(rss_kb "$PID" VmRSS)
sleep $((DURATION - FIRST - 1))
RSS_LAST=$(rss_kb "$PID" VmRSS)
for k in "${KINDS[@]}"; do
  wait "$k" || die "wrk failed; see $WORK/load-*.out"
done
HEALTH=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
RSS_PEAK=$(rss_kb "$PID" VmHWM)

cat "$WORK"/load-*.out | grep '^LOAD' | sed 's/^LOAD /  /'
python3 - "$RSS_FIRST" "$RSS_LAST" "$RSS_PEAK" "$FIRST" "$((DURATION - 1))" "$HEALTH" "$WORK"/load-*.out <<'PY'
import sys
first, last, peak, t1, t2, health = (int(x) for x in sys.argv[1:7])
bad = []
for path in sys.argv[7:]:
    for line in open(path):
        if line.startswith("LOAD "):
            f = dict(kv.split("=", 1) for kv in line.split()[1:])
            if int(f["unexpected"]) or int(f["sockerr"]) or not int(f["ok"]):
                bad.append(f"{f['kind']}: {f['unexpected']} unexpected status(es) ({f['statuses']}), {f['sockerr']} socket error(s)")
growth = (last - first) * 100 / first
print(f"RSS at {t1} s: {first/1024:.1f} MB, at {t2} s: {last/1024:.1f} MB, growth {growth:+.1f}% (target < 10%), peak {peak/1024:.1f} MB")
print(f"/health after the load: {health}")
if growth >= 10:
    bad.append(f"RSS grew {growth:.1f}%")
if health != 200:
    bad.append(f"/health answered {health} after the load")
print("FAILED: " + "; ".join(bad) if bad else "ok: every valid request got 200, every bad one exactly its 401/403, no socket errors")
sys.exit(1 if bad else 0)
PY

#!/bin/sh
# Example handler for `get_balance`. A real one would query the core banking
# system; this one answers from a fixed table so the example runs anywhere.
# swagent passes the account as `--account=N`, as JSON on stdin, and as
# $SWAIG_ARG_ACCOUNT; the value already matched the schema's pattern.
set -eu
account=""
for arg in "$@"; do
  case "$arg" in
    --account=*) account="${arg#--account=}" ;;
  esac
done
[ -n "$account" ] || { echo "missing --account" >&2; exit 2; }
last4=$(printf '%s' "$account" | tail -c 4)
printf '{"response": "The balance of the account ending in %s is 1,234.56 dollars."}\n' "$last4"

#!/bin/sh
# Example verifier for `verify_pin`. A real one asks the PIN service; this one
# accepts PIN 4321 for any account so the example runs anywhere. It prints
# {"verified": true} only on a match; swagent then grants verification for
# the rest of the call (in production-bank.yaml, for this account only).
# The PIN arrives as `SWAIG_ARG_PIN` (already matched against the schema's
# pattern), not on the command line where `ps` shows it to every user, and
# never appears in swagent's audit log.
set -eu
pin="${SWAIG_ARG_PIN:-}"
if [ "$pin" = "4321" ]; then
  echo '{"verified": true, "response": "Thank you, you are verified."}'
else
  echo '{"verified": false, "response": "That PIN does not match. You can try again."}'
fi

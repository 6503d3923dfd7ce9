#!/bin/sh
# Example handler for `book`: `--slot=ID -- NAME`. A real one would call the
# scheduling system; this one confirms without booking anything.
set -eu
slot=""
while [ $# -gt 0 ]; do
  case "$1" in
    --slot=*) slot="${1#--slot=}"; shift ;;
    --) shift; break ;;
    *) echo "unexpected argument" >&2; exit 2 ;;
  esac
done
name="${1:-}"
[ -n "$slot" ] && [ -n "$name" ] || { echo "usage: book.sh --slot=ID -- NAME" >&2; exit 2; }
echo "Booked slot $slot. We look forward to seeing you."

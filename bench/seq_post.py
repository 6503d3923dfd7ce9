"""Sends N identical POSTs over one keep-alive connection, one at a time.

Usage: seq_post.py PORT PATH BODY N   (Authorization from BENCH_AUTH)

For bench/icount.sh: a fixed, sequential load, so that two runs that differ
only in N differ only in the work of the extra requests. Exits 1 if any
answer is not 200.
"""

# Not named requests.py: beside sdk_bank.py it would shadow the `requests`
# package the SignalWire SDK imports.
import http.client
import os
import sys


def main():
    port, path, body, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    headers = {"Content-Type": "application/json"}
    if os.environ.get("BENCH_AUTH"):
        headers["Authorization"] = os.environ["BENCH_AUTH"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    bad = 0
    for _ in range(n):
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        bad += resp.status != 200
    if bad:
        print(f"{bad} of {n} answers were not 200", file=sys.stderr)
        sys.exit(1)


main()

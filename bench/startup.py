"""Startup time: from exec to the first 200 on GET /health, over N runs.

Usage: startup.py RUNS PORT -- COMMAND...   (COMMAND must listen on 127.0.0.1:PORT)

The clock starts just before the process is spawned and stops when a raw
HTTP/1.1 GET /health on 127.0.0.1:PORT answers 200. Polling is every 0.5 ms
with a plain socket (no HTTP client library start-up in the measurement).
Each run is bounded (10 s) and the process is killed afterwards. Prints
`STARTUP median_ms=... min_ms=... max_ms=...`.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def health_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def once(cmd: list[str], port: int) -> float:
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = t0 + 10
        while time.perf_counter() < deadline:
            if health_ok(port):
                return (time.perf_counter() - t0) * 1000
            if p.poll() is not None:
                sys.exit(f"startup.py: `{cmd[0]}` exited with {p.returncode} before answering")
            time.sleep(0.0005)
        sys.exit(f"startup.py: `{cmd[0]}` did not answer /health within 10 s")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def main() -> None:
    runs, port = int(sys.argv[1]), int(sys.argv[2])
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    times = [once(cmd, port) for _ in range(runs)]
    print(
        f"STARTUP median_ms={statistics.median(times):.1f} "
        f"min_ms={min(times):.1f} max_ms={max(times):.1f}"
    )


if __name__ == "__main__":
    main()

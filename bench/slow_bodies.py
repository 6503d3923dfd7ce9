"""Strangers' slow bodies (review 12 #6): N connections each send the head
of a POST /swaig with a 1 MiB body, then 1,000,000 bytes of it, and hold.
No credentials, no signature. Prints the server's RSS before and 3 s after,
and how each connection was answered by then.

    python3 bench/slow_bodies.py PORT PID N
"""
import socket
import sys
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    before = rss_mb(pid)
    head = (
        b"POST /swaig HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
    )
    part = b" " * 1_000_000
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(head)
        s.setblocking(False)
        try:
            s.send(part)
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(3)
    after = rss_mb(pid)
    answers = {}
    for s in socks:
        try:
            data = s.recv(200)
            kind = data.split(b"\r\n")[0].decode() if data else "closed"
        except BlockingIOError:
            kind = "no answer yet"
        except ConnectionResetError:
            kind = "reset"
        answers[kind] = answers.get(kind, 0) + 1
        s.close()
    print(f"rss_before_mb={before} rss_after_mb={after} answers={answers}")


if __name__ == "__main__":
    main()

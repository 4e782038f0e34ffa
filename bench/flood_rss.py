#!/usr/bin/env python3
"""Resident memory of auth-proxy before, during and after floods of idle connections.

    python3 bench/flood_rss.py BIN [--idle 5000] [--h2 2000] [--rounds 3] [--env NAME=VALUE ...]

Starts BIN on 127.0.0.1 (its AUTH_URL a loopback port where nothing listens: only /healthz is
used), then, `--rounds` times: opens `--idle` HTTP/1 connections (half of them send one request
and stay idle, so the proxy parks them; half send half a request head and stall) and `--h2`
HTTP/2 connections (preface, SETTINGS, one GET /healthz stream answered, then idle), holds them,
closes them all, and waits until the proxy's descriptors are back to the baseline. VmRSS is read
from /proc at each step. A leak grows from round to round; memory the allocator keeps does not.
`--env` adds variables to the proxy's environment (MALLOC_ARENA_MAX=2, GLIBC_TUNABLES=...,
LD_PRELOAD=...) to compare allocator settings.

Everything is on 127.0.0.1, every loop is bounded in count, and every wait in time.
"""

import argparse
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import time

DEADLINE_S = 300  # the whole run
STEP_WAIT_S = 20  # any single wait


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def unused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary, extra_env):
    env = dict(os.environ)
    env.update(extra_env)
    auth = f"http://127.0.0.1:{unused_port()}"
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--auth-url", auth, "--access-log", "off"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    deadline = time.time() + STEP_WAIT_S
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if m:
            return proc, (m.group(1), int(m.group(2)))
    proc.kill()
    sys.exit("no `listening on` line")


def recv_until(sock, marker, limit=65536):
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def http1(addr, whole):
    s = socket.create_connection(addr, timeout=5)
    if whole:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        recv_until(s, b'{"status":"ok"}')
    else:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
    return s


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2(addr):
    s = socket.create_connection(addr, timeout=5)
    # HPACK: :method GET (2), :scheme http (6), :path and :authority as literals without indexing.
    block = b"\x82\x86" + b"\x04\x08/healthz" + b"\x01\x09127.0.0.1"
    s.sendall(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + h2_frame(4, 0, 0, b"")  # SETTINGS
        + h2_frame(1, 0x5, 1, block)  # HEADERS, END_STREAM | END_HEADERS
    )
    recv_until(s, b'{"status":"ok"}')
    return s


def wait_for(cond, what):
    deadline = time.time() + STEP_WAIT_S
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    print(f"  (gave up waiting for {what})", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--h2", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait after a flood ends")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    assert 0 < args.idle <= 20000 and 0 <= args.h2 <= 20000 and 0 < args.rounds <= 10
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.idle + args.h2 + 64:
        sys.exit(f"open-file hard limit {hard} is too low for {args.idle + args.h2} connections")
    extra_env = dict(e.split("=", 1) for e in args.env)
    started = time.time()
    proc, addr = start(args.binary, extra_env)
    pid = proc.pid
    rows = []

    def note(phase):
        rows.append((phase, rss_kib(pid), fds(pid)))
        print(f"{phase:<28} VmRSS {rows[-1][1] / 1024:7.1f} MiB  fds {rows[-1][2]}", flush=True)

    try:
        for _ in range(100):
            http1(addr, True).close()
        time.sleep(0.5)
        note("baseline")
        base_fds = fds(pid)
        for r in range(1, args.rounds + 1):
            assert time.time() - started < DEADLINE_S, "run took too long"
            held = [http1(addr, i % 2 == 0) for i in range(args.idle)]
            time.sleep(0.5)  # the idle half gets parked after 100 ms
            note(f"round {r}: {args.idle} HTTP/1 open")
            for s in held:
                s.close()
            held = []
            wait_for(lambda: fds(pid) <= base_fds, "HTTP/1 descriptors")
            time.sleep(args.settle)
            note(f"round {r}: HTTP/1 closed")
            if args.h2:
                held = [h2(addr) for _ in range(args.h2)]
                time.sleep(0.5)
                note(f"round {r}: {args.h2} HTTP/2 open")
                for s in held:
                    s.close()
                held = []
                wait_for(lambda: fds(pid) <= base_fds, "HTTP/2 descriptors")
                time.sleep(args.settle)
                note(f"round {r}: HTTP/2 closed")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STEP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    env_text = " ".join(args.env) or "(default)"
    print(f"\n| phase ({env_text}) | VmRSS MiB | fds |\n|---|---:|---:|")
    for phase, rss, n in rows:
        print(f"| {phase} | {rss / 1024:.1f} | {n} |")


if __name__ == "__main__":
    main()

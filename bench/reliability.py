#!/usr/bin/env python3
"""Floods, faults and a soak against auth-proxy on loopback; writes RELIABILITY.md.

    python3 bench/reliability.py                 every phase (about 6 minutes)
    python3 bench/reliability.py --quick         smaller floods, 10,000 chaos requests
    python3 bench/reliability.py --soak-minutes 30   add the steady-load soak
    python3 bench/reliability.py --only soak --soak-minutes 30   the soak alone: rewrites only
                                                 RELIABILITY.md's "Soak" section
    python3 bench/reliability.py --only diff      RELIABILITY.md's "Differential fuzzing" section
                                                 from bench/out/diff/summary.json (bench/diff_fuzz.py)

Everything runs on 127.0.0.1, every loop is bounded in count and time, and every process and
socket the script opens is closed on exit. It starts the release binary (built if missing)
against its own upstream: a small asyncio HTTP/1 server that answers like the central service,
or misbehaves on purpose (the chaos phase). While each attack runs, a well-behaved client sends
`GET /protected` on two keep-alive connections; its p50/p99 are compared with the same client
on the idle proxy, and the proxy's CPU, RSS and open fds are sampled from /proc. After each
attack the script waits for the fd count to return to its baseline.

The soak sends a steady mixed load (`--soak-rate` requests a second over `--soak-connections`
keep-alive connections, each reconnecting now and then): every route, valid and invalid bodies,
urlencoded and multipart logins, bad JSON, unknown paths, missing credentials; each answer's
status is checked. RSS and fds are sampled every 10 s and their least-squares slopes reported,
over the whole run and over its second half (after the allocator has warmed up).

Not a CI test: the figures depend on the machine. CI only checks that this file compiles.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OK_BODY = b'{"message":"Access granted"}'
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the upstream: a central service that answers, or misbehaves on purpose -------------------

class Upstream:
    """An asyncio HTTP/1 server. `mode` picks the behaviour per request."""

    def __init__(self, mode="ok", big=0):
        self.mode = mode
        self.big = big
        self.count = 0
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self):
        self.server.close()

    async def read_request(self, reader):
        """Reads one request; returns its path."""
        head = await reader.readuntil(b"\r\n\r\n")
        length, chunked = 0, False
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                chunked = True
        if chunked:
            for _ in range(100000):
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        return head.split(b" ", 2)[1]

    async def serve(self, reader, writer):
        served = 0
        try:
            while True:
                path = await self.read_request(reader)
                self.count += 1
                mode = self.mode if self.mode != "chaos" else CHAOS[self.count % len(CHAOS)]
                if mode == "big" and path != b"/protected":
                    mode = "ok"
                if not await self.answer(mode, served, writer):
                    return
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def answer(self, mode, served, writer):
        """Writes one answer; False when the connection is to end."""
        def head(length):
            return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(length).encode() + b"\r\n\r\n")
        if mode == "ok":
            writer.write(head(len(OK_BODY)) + OK_BODY)
        elif mode == "big":
            writer.write(head(self.big))
            chunk = b"x" * 65536
            for _ in range(self.big // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        elif mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif mode == "half_then_stall":
            writer.write(head(len(OK_BODY)) + OK_BODY[:5])
            await writer.drain()
            await asyncio.sleep(20)
            return False
        elif mode == "garbage":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            return False
        elif mode == "short_body":
            writer.write(head(1000) + OK_BODY)
            return False
        elif mode == "slow":
            await asyncio.sleep(20)
            writer.write(head(len(OK_BODY)) + OK_BODY)
        elif mode == "close_on_reuse":
            if served > 0:
                return False
            writer.write(head(len(OK_BODY)) + OK_BODY)
        await writer.drain()
        return True


# The chaos phase cycles through these, request by request: four in ten answer normally.
CHAOS = ["ok", "reset", "ok", "garbage", "short_body", "ok", "half_then_stall", "close_on_reuse",
         "ok", "slow"]


# ---- the proxy under test ----------------------------------------------------------------------

class Proxy:
    def __init__(self, binary, upstream_port, args=()):
        self.port = free_port()
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--auth-url",
             f"http://127.0.0.1:{upstream_port}", "--access-log", "off", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stderr.readline().decode()
            if "listening on" in line:
                break
        else:
            raise SystemExit("auth-proxy did not start")
        # Keep reading its log so that a full pipe never matters.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def sample(self):
        """(cpu seconds, RSS KiB, open fds) of the proxy process."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return cpu, rss, fds


# ---- a well-behaved client ---------------------------------------------------------------------

REQUEST = (b"GET /protected HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer t\r\n\r\n")
REFRESH = (b"POST /refresh HTTP/1.1\r\nHost: proxy.test\r\nContent-Type: application/json\r\n"
           b"Content-Length: 21\r\n\r\n{\"refresh_token\":\"t\"}")


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, head, body


async def probe(port, seconds, connections=2, request=REQUEST):
    """Latencies (ms) of sequential GETs on `connections` keep-alive connections; errors count."""
    latencies, errors = [], 0
    stop_at = time.monotonic() + seconds

    async def one():
        nonlocal errors
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 5)
        except (OSError, asyncio.TimeoutError):
            errors += 1
            return
        try:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                writer.write(request)
                status, _, _ = await asyncio.wait_for(read_response(reader), 10)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors += 1
                await asyncio.sleep(0.002)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return latencies, errors


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


# ---- attacks: each opens sockets, misbehaves until `stop` is set, then closes them ------------

async def open_many(port, count):
    socks = []
    for _ in range(count):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 5)
            socks.append((reader, writer))
        except (OSError, asyncio.TimeoutError):
            break
    return socks


async def hold(socks, stop, step):
    """Runs `step(writer, i)` on every socket each second until `stop`; closes them all."""
    i = 0
    try:
        while not stop.is_set():
            for _, writer in socks:
                try:
                    await step(writer, i)
                except (OSError, ConnectionError):
                    pass
            i += 1
            try:
                await asyncio.wait_for(stop.wait(), 1)
            except asyncio.TimeoutError:
                pass
    finally:
        for _, writer in socks:
            writer.close()


async def slowloris(port, n, stop):
    socks = await open_many(port, n)

    async def step(writer, i):
        writer.write(b"GET /protected HTTP/1.1\r\n" if i == 0 else f"X-{i}: a\r\n".encode())
    await hold(socks, stop, step)
    return len(socks)


async def slow_body(port, n, stop):
    socks = await open_many(port, n)

    async def step(writer, i):
        if i == 0:
            writer.write(b"POST /login HTTP/1.1\r\nHost: p\r\nContent-Type: "
                         b"application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\nu")
        else:
            writer.write(b"a")
    await hold(socks, stop, step)
    return len(socks)


async def idle_keepalive(port, n, stop):
    socks = await open_many(port, n)
    for reader, writer in socks:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n")
    for reader, writer in socks:
        try:
            await asyncio.wait_for(read_response(reader), 5)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass

    async def step(writer, i):
        pass
    await hold(socks, stop, step)
    return len(socks)


async def slow_readers(port, n, stop):
    socks = await open_many(port, n)
    for _, writer in socks:
        writer.write(REQUEST)
        # Read nothing: the kernel buffers fill, then the proxy's writes wait.
        writer.transport.pause_reading()

    async def step(writer, i):
        pass
    await hold(socks, stop, step)
    return len(socks)


def h2_frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2_headers_block(port):
    def literal(index, value):  # literal without indexing, indexed name (4-bit prefix)
        value = value.encode()
        name = bytes([index]) if index < 15 else bytes([0x0F, index - 15])
        return name + bytes([len(value)]) + value
    return (b"\x82\x86" + literal(4, "/protected") + literal(1, f"127.0.0.1:{port}")
            + literal(23, "Bearer t"))


async def h2_open(port, window=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    settings = b"" if window is None else struct.pack(">HI", 4, window)
    writer.write(H2_PREFACE + h2_frame(4, 0, 0, settings) + h2_frame(4, 1, 0))

    async def drain_reads():
        try:
            while await reader.read(65536):
                pass
        except (OSError, ConnectionError):
            pass
    return reader, writer, asyncio.ensure_future(drain_reads())


async def h2_attack(port, n, stop, kind):
    conns = []
    for _ in range(n):
        try:
            conns.append(await asyncio.wait_for(h2_open(port, 0 if kind == "zero_window" else None), 5))
        except (OSError, asyncio.TimeoutError):
            break
    block = h2_headers_block(port)
    stream = [1] * len(conns)
    deadline = time.monotonic() + 60
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            for i, (_, writer, _) in enumerate(conns):
                if writer.is_closing():
                    continue
                out = bytearray()
                for _ in range(10):
                    sid = stream[i]
                    stream[i] += 2
                    if kind == "rapid_reset":
                        out += h2_frame(1, 0x5, sid, block)
                    elif kind == "continuation":
                        out += h2_frame(1, 0x1, sid, block[:2])  # END_STREAM, no END_HEADERS
                        out += b"".join(h2_frame(9, 0, sid, b"\x40\x01a\x01b") for _ in range(50))
                        break
                    elif kind == "settings":
                        out += h2_frame(4, 0, 0, struct.pack(">HI", 3, 100))
                    elif kind == "ping":
                        out += h2_frame(6, 0, 0, b"12345678")
                    elif kind == "zero_window":
                        out += h2_frame(1, 0x5, sid, block)
                        break
                if kind == "rapid_reset":
                    writer.write(bytes(out))
                    await asyncio.sleep(0.002)
                    writer.write(b"".join(h2_frame(3, 0, stream[i] - 2 * k, b"\x00\x00\x00\x08")
                                          for k in range(1, 11)))
                else:
                    writer.write(bytes(out))
            try:
                await asyncio.wait_for(stop.wait(), 0.05 if kind != "zero_window" else 1)
            except asyncio.TimeoutError:
                pass
    finally:
        for _, writer, task in conns:
            writer.close()
            task.cancel()
    return len(conns)


# ---- the phases --------------------------------------------------------------------------------

async def attack_phase(name, proxy, attack, baseline, seconds, request=REQUEST):
    stop = asyncio.Event()
    cpu0, rss0, fds0 = proxy.sample()
    task = asyncio.ensure_future(attack(stop))
    await asyncio.sleep(min(3, seconds / 3))
    latencies, errors = await probe(proxy.port, seconds, request=request)
    cpu1, rss_peak, fds_peak = proxy.sample()
    stop.set()
    opened = await task
    # Back to baseline: fds within a few of where they were.
    settle_deadline = time.monotonic() + 30
    while time.monotonic() < settle_deadline:
        _, rss_after, fds_after = proxy.sample()
        if fds_after <= fds0 + 4:
            break
        await asyncio.sleep(0.5)
    _, rss_after, fds_after = proxy.sample()
    p99_ratio = pct(latencies, 0.99) / baseline["p99"] if latencies else float("nan")
    return {
        "attack": name, "connections": opened, "probe_requests": len(latencies),
        "probe_errors": errors, "p50_ms": round(pct(latencies, 0.5), 2),
        "p99_ms": round(pct(latencies, 0.99), 2), "p99_vs_idle": round(p99_ratio, 2),
        "proxy_cpu_s": round(cpu1 - cpu0, 2), "rss_before_kib": rss0, "rss_peak_kib": rss_peak,
        "rss_after_kib": rss_after, "fds_before": fds0, "fds_peak": fds_peak,
        "fds_after": fds_after, "fds_back": fds_after <= fds0 + 4,
    }


async def chaos_phase(binary, total, concurrency):
    upstream = Upstream("chaos")
    await upstream.start()
    proxy = Proxy(binary, upstream.port, ["--upstream-timeout", "2s", "--connect-timeout", "1s"])
    limit_s = 2 + 1 + 3  # upstream + connect timeouts, plus scheduling slack
    outcomes, hangs, wrong = {}, 0, []
    durations = []
    remaining = total
    _, _, fds0 = proxy.sample()

    async def worker():
        nonlocal remaining, hangs
        reader = writer = None
        while remaining > 0:
            remaining -= 1
            try:
                if writer is None or writer.is_closing():
                    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
                started = time.perf_counter()
                writer.write(REQUEST)
                status, head, body = await asyncio.wait_for(read_response(reader), limit_s + 10)
                took = time.perf_counter() - started
                durations.append(took)
                outcomes[status] = outcomes.get(status, 0) + 1
                if status == 200 and body != OK_BODY:
                    wrong.append(("200 with another body", body[:60]))
                elif status in (502, 504):
                    json.loads(body)
                    if took > limit_s:
                        wrong.append((f"{status} after {took:.1f}s", b""))
                elif status != 200:
                    wrong.append((f"status {status}", body[:60]))
                if b"connection: close" in head.lower():
                    writer.close()
                    writer = None
            except asyncio.TimeoutError:
                hangs += 1
                writer.close()
                writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                # A cut 200 (the upstream died mid-body): the client sees the cut, as it should.
                outcomes["cut"] = outcomes.get("cut", 0) + 1
                if writer:
                    writer.close()
                writer = None
        if writer:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await asyncio.sleep(3)
    _, rss, fds_after = proxy.sample()
    proxy.stop()
    await upstream.stop()
    return {
        "requests": total, "seconds": round(elapsed, 1), "outcomes": outcomes, "hangs": hangs,
        "wrong": len(wrong), "wrong_examples": [w[0] for w in wrong[:5]],
        "max_s": round(max(durations), 2) if durations else None,
        "fds_before": fds0, "fds_after": fds_after, "rss_after_kib": rss,
    }


# The soak's mix: (weight, request bytes, the status it must get). Bearer tokens vary so that
# coalescing does not fold the load into a few upstream calls.
SOAK_BOUNDARY = "soak7MA4YWxkTrZu0gW"


def soak_request(method, path, headers=(), body=b""):
    head = [f"{method} {path} HTTP/1.1", "Host: proxy.test", *headers]
    if body or method == "POST":
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def soak_mix(rng):
    form = "Content-Type: application/x-www-form-urlencoded"
    js = "Content-Type: application/json"
    multipart_body = "".join(
        f'--{SOAK_BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in [("username", "ada@example.com"), ("password", "pw"), ("scope", "a b")]
    ) + f"--{SOAK_BOUNDARY}--\r\n"
    token = rng.randrange(64)
    return [
        (40, soak_request("GET", "/protected", [f"Authorization: Bearer soak-{token}"]), 200),
        (3, soak_request("GET", "/protected"), 401),
        (15, soak_request("POST", "/login", [form], f"username=u{token}%40example.com&password=p"
                          f"&scope=read+write".encode()), 200),
        (5, soak_request("POST", "/login", [f"Content-Type: multipart/form-data; boundary="
                                            f"{SOAK_BOUNDARY}"], multipart_body.encode()), 200),
        (5, soak_request("POST", "/login", [form], b"username=u&grant_type=client_credentials"),
         422),
        (10, soak_request("POST", "/register", [js], json.dumps(
            {"email": f"user{token}@example.com", "password": "pw", "extra": [1, 2.5]}).encode()),
         200),
        (5, soak_request("POST", "/register", [js], b'{"email":"nope@localhost","password":"x"}'),
         422),
        (3, soak_request("POST", "/register", [js], b'{"email": "a@b.co", "password": [1,'), 422),
        (7, soak_request("POST", "/refresh", [js], f'{{"refresh_token":"r{token}"}}'.encode()), 200),
        (5, soak_request("GET", "/healthz"), 200),
        (2, soak_request("GET", "/nope"), 404),
    ]


def slope(xs, ys):
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    return round(statistics.linear_regression(xs, ys).slope, 2)


async def soak_phase(binary, minutes, rate, connections):
    upstream = Upstream("ok")
    await upstream.start()
    proxy = Proxy(binary, upstream.port)
    rng = random.Random(30)
    end = time.monotonic() + minutes * 60
    counts = {"requests": 0, "errors": 0, "reconnects": 0}
    wrong = {}
    latencies = []
    interval = connections / rate

    async def client(seed):
        crng = random.Random(seed)
        reader = writer = None
        left = 0
        next_at = time.monotonic() + crng.random() * interval
        while next_at < end:
            await asyncio.sleep(max(0, next_at - time.monotonic()))
            next_at += interval
            mix = soak_mix(crng)
            weights = [w for w, _, _ in mix]
            _, request, want = crng.choices(mix, weights)[0]
            try:
                if writer is None or left <= 0:
                    if writer is not None:
                        writer.close()
                        counts["reconnects"] += 1
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", proxy.port), 5)
                    left = crng.randint(50, 2000)
                left -= 1
                started = time.perf_counter()
                writer.write(request)
                status, head, _ = await asyncio.wait_for(read_response(reader), 10)
                latencies.append((time.perf_counter() - started) * 1000)
                counts["requests"] += 1
                if status != want:
                    counts["errors"] += 1
                    key = f"{request.split(b' ', 2)[1].decode()} {status} (want {want})"
                    wrong[key] = wrong.get(key, 0) + 1
                if b"connection: close" in head.lower():
                    left = 0
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                counts["requests"] += 1
                counts["errors"] += 1
                wrong[type(e).__name__] = wrong.get(type(e).__name__, 0) + 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    samples = []
    t0 = time.monotonic()

    async def sampler():
        while time.monotonic() < end:
            cpu, rss, fds = proxy.sample()
            samples.append((time.monotonic() - t0, rss, fds, counts["requests"], counts["errors"],
                            cpu))
            await asyncio.sleep(min(10, max(0.1, end - time.monotonic())))

    await asyncio.gather(sampler(), *(client(rng.random()) for _ in range(connections)))
    elapsed = time.monotonic() - t0
    # The slopes are over the samples taken under load; "after" is once the clients are gone.
    await asyncio.sleep(2)
    cpu_after, rss_after, fds_after = proxy.sample()
    proxy.stop()
    await upstream.stop()
    xs = [t / 60 for t, *_ in samples]
    half = [i for i, x in enumerate(xs) if x >= xs[-1] / 2]
    return {
        "minutes": minutes, "rate_target": rate, "connections": connections,
        "requests": counts["requests"], "errors": counts["errors"], "wrong": wrong,
        "reconnects": counts["reconnects"], "req_per_s": round(counts["requests"] / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.5), 2), "p99_ms": round(pct(latencies, 0.99), 2),
        "cpu_s": round(cpu_after - samples[0][5], 1),
        "rss_after_kib": rss_after, "fds_after": fds_after,
        "rss_first_kib": samples[0][1], "rss_last_kib": samples[-1][1],
        "rss_max_kib": max(s[1] for s in samples),
        "rss_slope_kib_per_min": slope(xs, [s[1] for s in samples]),
        "rss_slope_second_half_kib_per_min": slope([xs[i] for i in half],
                                                   [samples[i][1] for i in half]),
        "fds_first": samples[0][2], "fds_last": samples[-1][2],
        "fds_max": max(s[2] for s in samples),
        "fds_slope_per_min": slope(xs, [s[2] for s in samples]),
        "fds_slope_second_half_per_min": slope([xs[i] for i in half],
                                               [samples[i][2] for i in half]),
        "samples": [{"min": round(t / 60, 2), "rss_kib": r, "fds": f, "requests": n, "errors": e}
                    for t, r, f, n, e, _ in samples],
    }


async def main(args):
    # Upstream handlers still sleeping when a phase ends are cancelled: nothing to report.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "attacks": []}
    if args.only == "diff":  # no proxy to run: only the other script's summary to render
        with open(os.path.join(ROOT, "bench", "out", "diff", "summary.json")) as f:
            replace_section("## Differential fuzzing", diff_section(json.load(f)))
        return
    binary = args.bin
    if not os.path.exists(binary):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    if args.only == "soak":
        print(f"[reliability] soak {args.soak_minutes} min", file=sys.stderr)
        results["soak"] = await soak_phase(binary, args.soak_minutes, args.soak_rate,
                                           args.soak_connections)
        save(results, "reliability-soak.json")
        replace_soak_section(results, args)
        return
    scale = 0.2 if args.quick else 1.0
    seconds = 3 if args.quick else 6

    upstream = Upstream("ok")
    await upstream.start()
    big = Upstream("big", big=8 << 20)
    await big.start()
    proxy = Proxy(binary, upstream.port, ["--client-header-timeout", "10s"])
    big_proxy = Proxy(binary, big.port, ["--client-send-timeout", "5s"])
    latencies, _ = await probe(proxy.port, seconds)
    baseline = {"p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99)}
    results["baseline"] = {k: round(v, 2) for k, v in baseline.items()}
    n = lambda full: max(10, int(full * scale))  # noqa: E731
    plan = [
        ("slowloris", proxy, lambda s: slowloris(proxy.port, n(3000), s)),
        ("slow body", proxy, lambda s: slow_body(proxy.port, n(3000), s)),
        ("idle keep-alive", proxy, lambda s: idle_keepalive(proxy.port, n(10000), s)),
        ("slow readers of 8 MiB", big_proxy, lambda s: slow_readers(big_proxy.port, n(200), s)),
        ("h2 rapid reset", proxy, lambda s: h2_attack(proxy.port, n(20), s, "rapid_reset")),
        ("h2 CONTINUATION flood", proxy, lambda s: h2_attack(proxy.port, n(50), s, "continuation")),
        ("h2 SETTINGS flood", proxy, lambda s: h2_attack(proxy.port, n(50), s, "settings")),
        ("h2 PING flood", proxy, lambda s: h2_attack(proxy.port, n(50), s, "ping")),
        ("h2 zero-window readers", proxy, lambda s: h2_attack(proxy.port, n(500), s, "zero_window")),
    ]
    for name, target, attack in plan:
        print(f"[reliability] {name}", file=sys.stderr)
        # Against the proxy whose /protected answers 8 MiB, the client asks /refresh instead.
        request = REFRESH if target is big_proxy else REQUEST
        results["attacks"].append(
            await attack_phase(name, target, attack, baseline, seconds, request))
    proxy.stop()
    big_proxy.stop()
    await upstream.stop()
    await big.stop()

    print("[reliability] chaos central service", file=sys.stderr)
    results["chaos"] = await chaos_phase(binary, 10000 if args.quick else 100000, 256)
    if args.soak_minutes:
        print(f"[reliability] soak {args.soak_minutes} min", file=sys.stderr)
        results["soak"] = await soak_phase(binary, args.soak_minutes, args.soak_rate,
                                           args.soak_connections)
    save(results, "reliability.json")
    write_report(results, args)


def save(results, name):
    os.makedirs(os.path.join(ROOT, "bench", "out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "out", name), "w") as f:
        json.dump(results, f, indent=1)


def soak_section(r, args, alone=False):
    """The "Soak" section of RELIABILITY.md."""
    s = r["soak"]
    mib = lambda k: f"{k / 1024:.1f}"  # noqa: E731
    how = (f"Written by `python3 bench/reliability.py --only soak --soak-minutes {s['minutes']:g} "
           f"--soak-rate {s['rate_target']} --soak-connections {s['connections']}` on "
           f"{r['date']}, the rest of this file by the run named at its top. ") if alone else ""
    lines = [
        "## Soak",
        "",
        how + f"{s['minutes']:g} minutes of a steady mixed load at {s['req_per_s']} requests/s "
        f"(target {s['rate_target']}) over {s['connections']} keep-alive connections that "
        f"reconnected {s['reconnects']:,} times: `GET /protected` with 64 tokens and without "
        "credentials, urlencoded and multipart `/login`, `/register`, `/refresh`, valid and "
        "invalid bodies (422s), `/healthz`, an unknown path. Every answer's status is checked.",
        "",
        f"- requests: {s['requests']:,}; errors (wrong status, reset, timeout): "
        f"**{s['errors']}** {json.dumps(s['wrong']) if s['wrong'] else ''}",
        f"- client latency p50 / p99: {s['p50_ms']} / {s['p99_ms']} ms; proxy CPU "
        f"{s['cpu_s']} s ({s['cpu_s'] / max(1, s['requests']) * 1e6:.0f} µs a request); samples "
        "every 10 s",
        f"- RSS: {mib(s['rss_first_kib'])} MiB at the first sample, {mib(s['rss_max_kib'])} "
        f"MiB at most, {mib(s['rss_last_kib'])} MiB at the last, {mib(s['rss_after_kib'])} "
        "MiB once the clients had left; slope "
        f"**{s['rss_slope_kib_per_min']} KiB/min** over the whole run, "
        f"**{s['rss_slope_second_half_kib_per_min']} KiB/min** over its second half",
        f"- fds: {s['fds_first']} → {s['fds_last']} (at most {s['fds_max']}), "
        f"{s['fds_after']} once the clients had left; slope "
        f"**{s['fds_slope_per_min']} fds/min** over the whole run, "
        f"**{s['fds_slope_second_half_per_min']} fds/min** over its second half",
        "",
        "| minute | RSS (MiB) | fds | requests so far | errors so far |",
        "|---:|---:|---:|---:|---:|",
    ]
    samples = s["samples"]
    step = max(1, len(samples) // 10)
    shown = samples[::step]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    for p in shown:
        lines.append(f"| {p['min']} | {mib(p['rss_kib'])} | {p['fds']} | {p['requests']:,} | "
                     f"{p['errors']} |")
    return lines


def replace_soak_section(r, args):
    """Rewrites the "## Soak" section of RELIABILITY.md in place (added before the limits)."""
    replace_section("## Soak", soak_section(r, args, alone=True))


DIFF_FINDINGS = """What it found, and what became of it:

- fixed (`src/validate/form_parse.rs`, vectors `tests/vectors/multipart-0.0.34.jsonl`): each
  multipart part's `Content-Disposition` was read by multer, not by python-multipart's
  `parse_options_header` as Starlette reads it: `name="a\\"b"`, `name="n""`, `NAME=`, two
  `Content-Disposition` headers (the last counts), a filename sent as a Windows path
  (`C:\\dir\\f.txt` is `f.txt`); and a boundary outside ASCII (its latin-1 bytes).
- fixed (`src/validate/email_domain.rs`, `email_idna.rs`; vectors at the end of
  `tests/vectors/idna-3.21.jsonl`): for a domain outside ASCII, `EmailStr` gave another reason
  than email-validator (the same verdict in every case found): the proxy validated labels
  while mapping them, where email-validator maps (UTS-46) only, checks dots and hyphens, then
  runs `idna.alabel` label by label ("Label begins with an illegal combining character",
  "Label too long", ...).
- fixed (`src/validate/email_domain.rs`; vectors there too): an IP literal's reason is now
  CPython 3.11 `ipaddress`'s error word for word (a zone index, the `::` rules, hextets, an
  embedded IPv4), where the proxy said "... does not appear to be an IPv6 address".
- fixed (`src/validate/echo.rs`, vectors `tests/vectors/float-echo-0.165.jsonl`): a float a
  422 echoes, exactly halfway between two shortest forms, printed with Rust's digit (half up:
  `845682013503740.25` as `...740.3`) where Python's `repr` rounds half to even (`...740.2`).
- intended (README): a lone surrogate escape anywhere in a JSON body is a 400 (Python carries
  it, or drops it with a duplicate key, or fails with a 500 echoing it); nesting past 960 levels
  is a 400 (FastAPI's stack gives out between 950 and 1000); where FastAPI fails with a 500 to
  render its own 422 (a NaN or Infinity in `input`), the proxy sends the 422; an uploaded file
  in a 422's `input` is left out (FastAPI echoes its temporary file's internals).
- fixed since the run above (`src/validate/form_parse.rs`, vectors
  `tests/vectors/multipart-0.0.34.jsonl`): malformed multipart delimiters. An opening
  `--boundary-` followed by anything but `-` is a 400 (the proxy took it for the end of the
  form: all 114 empty-boundary differences, where the delimiter is `--` and a body opening
  `---` looked like the end); and part data now ends where python-multipart's part-data state
  ends it, only at `CRLF--boundary` followed by CRLF, `--` or padding then CRLF (multer ends a
  part at `CRLF--boundary` alone): a lookalike followed by any other byte is part data, and a
  body that stops inside its last delimiter loses its last part (the 28 truncated bodies). The
  body is re-delimited under a fresh boundary before multer parses it.
  `diff_fuzz.py --only form --count 20000 --seconds 300` (seed 19): 183 differences before,
  34 after; `--only login` (FastAPI's `/login` in-process): 126 before, 28 after.
- open: malformed part headers, where python-multipart's header state machine checks each
  header line as it arrives and multer (httparse) reads the header block as a whole. In the
  form run just named, 34 of the 20,000 form inputs: 17 that Python refuses (400) and the
  proxy parses (a header line with no colon or a bad byte in its name, a lone CR, a part whose
  headers never end: Python refuses the bad line, multer waits for the blank line and drops
  the part), 12 the other way round (a bare LF, NUL or other control byte inside a header
  value, which python-multipart keeps and httparse refuses), 5 refused by both with another
  detail (4 headers with a bare LF or NUL that Python reads and then finds no "name" in, where
  the proxy says "Invalid multipart data.", and 1 folded line the other way round). Closing
  these means porting python-multipart's header
  states in place of multer's header parsing. Well-formed forms, as browsers and HTTP clients
  send them, agree. Each is listed by `diff_fuzz.py` in `bench/out/diff/form.jsonl`.
"""


def diff_section(summary):
    """The "Differential fuzzing" section, from bench/diff_fuzz.py's summary.json."""
    targets = summary["targets"]
    total = sum(t["inputs"] for t in targets.values())
    lines = [
        "## Differential fuzzing",
        "",
        f"Written by `python3 bench/reliability.py --only diff` from the run of `bench/diff_fuzz.py "
        f"--count {summary['count']} --seed {summary['seed']}{' --proxy' if summary.get('proxy') else ''}` "
        f"on {summary.get('date', '?')} ({summary['seconds']} s): {total:,} inputs, each given to "
        "the proxy's code and to the Python it imitates (CPython 3.11 `json.loads`, Pydantic "
        "2.14.4 `EmailStr` on email-validator 2.4.0, Starlette's form parsing on python-multipart "
        "0.0.34, FastAPI 0.165 itself for the three validating routes; \"via proxy\": the same "
        "requests through the running release binary). Inputs: the repository's vectors and fuzz "
        "seeds, then a seeded grammar-aware generator and mutator. `intended`: a difference the "
        "README documents.",
        "",
        "| target | inputs | same | intended | differ |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in targets.items():
        lines.append(f"| {name} | {t['inputs']:,} | {t['same']:,} | "
                     f"{sum(t['intended'].values()):,} | {t['differ']:,} |")
    lines += ["", DIFF_FINDINGS.rstrip()]
    return lines


def replace_section(title, section_lines):
    """Rewrites one `## ` section of RELIABILITY.md in place (added before the limits)."""
    path = os.path.join(ROOT, "RELIABILITY.md")
    with open(path) as f:
        text = f.read()
    section = "\n".join(section_lines) + "\n\n"
    start = text.find(title + "\n")
    if start < 0:
        start = end = text.find("## Limits")
    else:
        end = text.find("\n## ", start + 1) + 1
    if start < 0 or end <= 0:
        text, start, end = text + "\n", len(text) + 1, len(text) + 1
    with open(path, "w") as f:
        f.write(text[:start] + section + text[end:])


def write_report(r, args):
    lines = [
        "# Reliability",
        "",
        "Written by `python3 bench/reliability.py"
        + (" --quick" if args.quick else "")
        + (f" --soak-minutes {args.soak_minutes}" if args.soak_minutes else "")
        + f"` on {r['date']} (2 shared cores, loopback; the release build, default flags unless "
        "named). During each attack a well-behaved client sends `GET /protected` (`POST /refresh` "
        "beside the slow readers, whose `/protected` answers are 8 MiB) on two "
        "keep-alive connections; its latency is compared with the same client against the idle "
        f"proxy (p50 {r['baseline']['p50']} ms, p99 {r['baseline']['p99']} ms). CPU is the "
        "proxy's during the client's measurement; fds and RSS are the proxy process's, "
        "\"after\" once the attack's sockets are closed.",
        "",
        "| attack | conns | client p50 / p99 (ms) | p99 vs idle | client errors | proxy CPU s | "
        "RSS before / peak / after (MiB) | fds before / peak / after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    mib = lambda k: f"{k / 1024:.1f}"  # noqa: E731
    for a in r["attacks"]:
        lines.append(
            f"| {a['attack']} | {a['connections']} | {a['p50_ms']} / {a['p99_ms']} | "
            f"{a['p99_vs_idle']}× | {a['probe_errors']} | {a['proxy_cpu_s']} | "
            f"{mib(a['rss_before_kib'])} / {mib(a['rss_peak_kib'])} / {mib(a['rss_after_kib'])} | "
            f"{a['fds_before']} / {a['fds_peak']} / {a['fds_after']} |")
    c = r["chaos"]
    lines += [
        "",
        "## Chaos central service",
        "",
        f"{c['requests']:,} requests at 256 connections in {c['seconds']} s against an upstream "
        "that, request by request, answers, resets, sends garbage, sends fewer bytes than its "
        "Content-Length, writes half an answer and stalls 20 s, delays 20 s, or closes a "
        "keep-alive connection as it is reused (`--upstream-timeout 2s --connect-timeout 1s`).",
        "",
        f"- outcomes: {json.dumps(c['outcomes'])} (`cut` = a 200 whose body the upstream cut: "
        "the client sees the cut)",
        f"- hangs (no answer within the timeouts + 10 s): **{c['hangs']}**; wrong answers: "
        f"**{c['wrong']}** {c['wrong_examples'] or ''}",
        f"- slowest answer: {c['max_s']} s; proxy fds before / after: {c['fds_before']} / "
        f"{c['fds_after']}; RSS after: {mib(c['rss_after_kib'])} MiB",
    ]
    if "soak" in r:
        lines += [""] + soak_section(r, args)
    # The differential section comes from another script's run (--only diff): kept as it is.
    path = os.path.join(ROOT, "RELIABILITY.md")
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        start = old.find("## Differential fuzzing\n")
        if start >= 0:
            end = old.find("\n## ", start + 1)
            lines += [""] + old[start:end if end > 0 else len(old)].rstrip("\n").split("\n")
    lines += ["", LIMITS]
    with open(os.path.join(ROOT, "RELIABILITY.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


LIMITS = """## Limits an operator should set

- `--max-connections`: the proxy holds each client connection in a few KiB (idle HTTP/1 ones are
  parked at about 3 KiB); set it to what the fd limit and memory allow (the process raises its
  soft fd limit to the hard one at start), and keep the balancer's own limit below it.
- `--client-header-timeout`, `--client-body-timeout`, `--client-send-timeout` (10 s each): how long
  one slow client may hold a connection in each phase. Lower them behind a balancer that buffers
  requests; every slowloris, slow-body, slow-reader and zero-window attack above is cut by them.
- `--upstream-max-connections` (256): the most requests the central service sees at once from one
  replica, whatever clients do; size it from what the central service can take divided by the
  number of replicas.
- `--upstream-timeout` / `--connect-timeout`: how long a client waits for a failing central service
  before its 504.
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "auth-proxy"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--soak-rate", type=int, default=300, help="requests/s during the soak")
    parser.add_argument("--soak-connections", type=int, default=8)
    parser.add_argument("--only", choices=["soak", "diff"],
                        help="run one phase and rewrite only its section of RELIABILITY.md")
    asyncio.run(main(parser.parse_args()))

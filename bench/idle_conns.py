#!/usr/bin/env python3
"""Memory per idle keep-alive connection: open N connections to a proxy, send one request on each,
keep them open, and report the proxy process's RSS growth divided by N, and the growth per
connection over the second N/2 (the cost of one more idle connection, without one-time growth).

Connections are opened one after another (each completes its request before the next opens), so
the proxy's upstream pool stays at one connection and only client-side state is counted.

With `burst` as a fourth argument, all N connections are opened at once instead, each sends its
request at once, and all are then held idle: the proxy serves N requests concurrently (its peak
memory is that of the burst) and what it keeps afterwards is measured 2 s after the last answer,
when every connection has been idle long enough to be parked. One mark: RSS growth per held
connection, which counts whatever the allocator did not give back after the burst.
Bounded: every step has a timeout and the whole run a deadline.

Usage: idle_conns.py PORT PID N   → prints `IDLE n=.. rss_before_kb=.. rss_half_kb=.. rss_after_kb=.. per_conn_bytes=.. marginal_bytes=..`
       idle_conns.py PORT PID N burst → prints `IDLEBURST n=.. rss_before_kb=.. rss_peak_kb=.. rss_after_kb=.. per_conn_bytes=..`
"""

import asyncio
import sys
import time

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
STEP_TIMEOUT = 5.0
DEADLINE = 120.0
# A burst's connect and answer wait: N requests queue behind each other on one proxy core.
BURST_TIMEOUT = 60.0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


async def one_request(port: int, timeout: float = STEP_TIMEOUT):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    writer.write(
        (
            "GET /protected HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nAccept: application/json\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"status {status!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await asyncio.wait_for(reader.readexactly(length), timeout)
    return reader, writer


async def burst(port: int, pid: int, count: int) -> None:
    _, warm = await one_request(port)
    warm.close()
    await asyncio.sleep(0.5)
    before = rss_kb(pid)
    held = await asyncio.wait_for(
        asyncio.gather(*(one_request(port, BURST_TIMEOUT) for _ in range(count))), DEADLINE
    )
    peak = vm_hwm_kb(pid)
    # Parking frees a connection's hyper buffers once it has been idle 100 ms; 2 s is ample.
    await asyncio.sleep(2.0)
    after = rss_kb(pid)
    per_conn = (after - before) * 1024 / count
    print(
        f"IDLEBURST n={count} rss_before_kb={before} rss_peak_kb={peak} rss_after_kb={after} "
        f"per_conn_bytes={per_conn:.0f}"
    )
    for _, writer in held:
        writer.close()


async def main(port: int, pid: int, count: int) -> None:
    started = time.monotonic()
    # Warm the proxy (upstream pool, allocator arenas) on a connection that is then closed.
    _, warm = await one_request(port)
    warm.close()
    await asyncio.sleep(0.5)
    before = rss_kb(pid)
    held = []

    async def open_until(n: int) -> int:
        while len(held) < n:
            if time.monotonic() - started > DEADLINE:
                raise RuntimeError("deadline passed")
            held.append(await one_request(port))
        await asyncio.sleep(1.0)
        return rss_kb(pid)

    # Two marks: the average over all connections includes one-time growth (memory the
    # allocator keeps after the opening burst, runtime tables); the slope between the marks is
    # what one more idle connection costs.
    half = await open_until(count // 2)
    after = await open_until(count)
    per_conn = (after - before) * 1024 / count
    marginal = (after - half) * 1024 / (count - count // 2)
    print(
        f"IDLE n={count} rss_before_kb={before} rss_half_kb={half} rss_after_kb={after} "
        f"per_conn_bytes={per_conn:.0f} marginal_bytes={marginal:.0f}"
    )
    for _, writer in held:
        writer.close()


if __name__ == "__main__":
    port, pid, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    if sys.argv[4:] == ["burst"]:
        asyncio.run(burst(port, pid, count))
    else:
        asyncio.run(main(port, pid, count))

#!/usr/bin/env python3
"""Memory per idle keep-alive connection: open N connections to a proxy, send one request on each,
keep them open, and report the proxy process's RSS growth divided by N, and the growth per
connection over the second N/2 (the cost of one more idle connection, without one-time growth).

Connections are opened one after another (each completes its request before the next opens), so
the proxy's upstream pool stays at one connection and only client-side state is counted.
Bounded: every step has a timeout and the whole run a deadline.

Usage: idle_conns.py PORT PID N   → prints `IDLE n=.. rss_before_kb=.. rss_half_kb=.. rss_after_kb=.. per_conn_bytes=.. marginal_bytes=..`
"""

import asyncio
import sys
import time

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
STEP_TIMEOUT = 5.0
DEADLINE = 120.0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def one_request(port: int):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), STEP_TIMEOUT)
    writer.write(
        (
            "GET /protected HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nAccept: application/json\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT)
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"status {status!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await asyncio.wait_for(reader.readexactly(length), STEP_TIMEOUT)
    return reader, writer


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
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))

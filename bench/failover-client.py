#!/usr/bin/env python3
"""The client (and, with `serve`, the backends) of bench/failover.sh: one HTTP/1.0 GET to ADDR:PORT every INTERVAL_MS,
each on its own connection with a TIMEOUT_MS deadline, whether or not the previous one
answered. Once a request has succeeded it writes READY_FILE, and SECONDS after that it
stops and prints, as `outage_ms=N answered_by=NAME ok=N failed=N`, the longest time
between the sending of two successive successful requests (the client-visible outage),
and which node answered last."""

import asyncio
import sys
import time


async def get(addr, port, timeout):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(addr, port), timeout)
        try:
            w.write(b"GET / HTTP/1.0\r\n\r\n")
            data = await asyncio.wait_for(r.read(), timeout)
        finally:
            w.close()
    except (OSError, asyncio.TimeoutError):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].split()
    if len(status) < 2 or status[1] != b"200":
        return None
    return body.decode(errors="replace").strip()


async def serve(port, name):
    """`serve PORT NAME`: the nodes' backend, answering every request with NAME."""
    body = name.encode()
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def handle(r, w):
        try:
            await r.readuntil(b"\r\n\r\n")
            w.write(reply)
            await w.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def main():
    if sys.argv[1] == "serve":
        return await serve(int(sys.argv[2]), sys.argv[3])
    addr, port, interval_ms, timeout_ms, seconds, ready_file = sys.argv[1:7]
    port, interval, timeout = int(port), int(interval_ms) / 1000, int(timeout_ms) / 1000
    seconds = float(seconds)
    ok = []  # (sent, body)
    failed = 0
    ready_at = None
    tasks = set()

    async def one(sent):
        nonlocal failed, ready_at
        body = await get(addr, port, timeout)
        if body is None:
            failed += 1
            return
        ok.append((sent, body))
        if ready_at is None:
            ready_at = time.monotonic()
            with open(ready_file, "w") as f:
                f.write("ready\n")

    start = time.monotonic()
    next_at = start
    while True:
        now = time.monotonic()
        if ready_at is not None and now >= ready_at + seconds:
            break
        if ready_at is None and now >= start + 30:
            print("outage_ms=nan answered_by=none ok=0 failed=%d" % failed)
            return
        t = asyncio.get_running_loop().create_task(one(now))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)
    ok.sort()
    gaps = [b[0] - a[0] for a, b in zip(ok, ok[1:])]
    outage = max(gaps) if gaps else float("nan")
    print(
        "outage_ms=%.0f answered_by=%s ok=%d failed=%d"
        % (outage * 1000, ok[-1][1] if ok else "none", len(ok), failed)
    )


asyncio.run(main())

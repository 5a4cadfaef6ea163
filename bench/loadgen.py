"""A fixed-rate (open-loop) HTTP/1.1 load generator, for latency under a steady load.

    python -m bench.loadgen --port P --path /api/auth/verify --cookie C --rate 2000

wrk is closed-loop: each connection sends its next request when the previous answer
arrives, so when the server stalls, wrk simply sends less and the stall barely shows in
its percentiles (coordinated omission). Here the schedule is fixed in advance: connection
k of K sends request i at `start + (k + i*K) / rate`, whatever happens. A request whose
slot came while its connection still waited for the previous answer is charged that
wait too (as wrk2 does), so a server stall counts in full; the client's own timer
lateness is not charged (it is not the server's). One JSON object on stdout.

Raw asyncio streams on uvloop, keep-alive, pre-built request bytes: a few microseconds of
client CPU per request, so a moderate rate leaves the server nearly all of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole answer (Content-Length or chunked body); its status. RuntimeError if
    the server closes the connection first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            await reader.readuntil(b"0\r\n\r\n")  # chunked: up to the last chunk
        elif length:
            await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise RuntimeError("connection closed mid-answer") from None
    return int(lines[0].split()[1])


async def _connection(
    k: int,
    connections: int,
    rate: float,
    start: float,
    end: float,
    port: int,
    request: bytes,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    previous_done = start
    i = 0
    try:
        while True:
            slot = start + (k + i * connections) / rate
            if slot >= end:
                break
            now = time.perf_counter()
            if slot > now:
                await asyncio.sleep(slot - now)
            sent = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            done = time.perf_counter()
            # Service time, plus the wait for this connection past the request's slot.
            latencies.append(done - sent + max(0.0, previous_done - slot))
            statuses[status] = statuses.get(status, 0) + 1
            previous_done = done
            i += 1
    finally:
        writer.close()


async def run(
    port: int, path: str, cookie: str, rate: float, connections: int, seconds: float
) -> dict[str, Any]:
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
    request = head.encode("latin-1")
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.05
    end = start + seconds
    await asyncio.gather(
        *(
            _connection(k, connections, rate, start, end, port, request, latencies, statuses)
            for k in range(connections)
        )
    )
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "rate": rate,
        "connections": connections,
        "seconds": seconds,
        "requests": len(ordered),
        "achieved_rate": len(ordered) / elapsed,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "p50_ms": percentile(ordered, 0.50) * 1e3,
        "p90_ms": percentile(ordered, 0.90) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "p999_ms": percentile(ordered, 0.999) * 1e3,
        "max_ms": ordered[-1] * 1e3 if ordered else math.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/auth/verify")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cpus", help="run on these CPUs only, e.g. 0 or 0,1")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    work = run(args.port, args.path, args.cookie, args.rate, args.connections, args.seconds)
    try:
        import uvloop
    except ImportError:  # the standard loop works too, with more client overhead
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

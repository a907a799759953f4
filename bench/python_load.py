"""The in-process Python load loop that observability_cost.py still measures with (an httpx client, same process).

Kept for the benchmarks not yet driven by a native load generator (bench/loadgen.py): there the client's own cost
is in every figure, on both sides of the ratio, so only the ratio means something.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from bench.processes import Processes

Call = Callable[[int], Awaitable[object]]


async def measure(call: Call, *, requests: int, concurrency: int) -> dict[str, float]:
    """`call(i)` for i in range(requests), `concurrency` at a time; throughput and latency percentiles."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


async def wait_ready(url: str, processes: Processes, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes.procs.values()):
                raise SystemExit(f"a process exited while waiting for {url}; logs in {processes.logs}")
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f}s; logs in {processes.logs}")

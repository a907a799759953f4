"""How every long-running process ends: SIGTERM (Kubernetes) or SIGINT (Ctrl-C) asks it to stop gracefully.

One place installs the handlers and one `serve()` runs every host the same way: start; on the signal, *drain*
(readiness turns red, HTTP responses say `Connection: close`, gRPC health says NOT_SERVING) while still serving for
`drain_delay_s`, so that Service endpoints, kube-proxy, DNS and peers' connection pools forget the process before it
stops listening; then stop, giving in-flight work the host's own grace. Without the delay (local runs, tests) a
stop is immediate. Kubernetes removes a terminating pod from its Services at the same moment it sends SIGTERM, and
that removal takes a few seconds to reach every node and client: a process that stopped listening at once would
refuse the requests still on their way (the operator sets the delay, VENTA_SHUTDOWN_DELAY_S).

`serve()` also readies the garbage collector for a long run: `venta serve` raises its young-generation threshold
(`tune_gc`, VENTA_GC_THRESHOLD) before the host is built, and `freeze_heap`, once it is built and before it starts
listening, moves everything built so far out of the collector's sight (VENTA_GC_FREEZE). Without both, a full
collection walked the whole heap of imported modules every few seconds under load: ~0.2 s in which no request was
answered, the gateway's p99 (bench/README.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("venta.lifecycle")


class Host(Protocol):
    """The one contract of a long-running process: the gRPC, ASGI, Socket.IO and search-sync hosts all keep it.

    Tests call `start()`/`stop()` (ports given as 0 are read back); `venta serve` calls `serve(host)`.
    """

    service: str
    drain_delay_s: float
    """How long `serve()` keeps serving, not ready, after a stop signal (0: stop at once)."""

    async def start(self) -> None: ...

    def drain(self) -> None:
        """Stop saying ready and ask clients to go elsewhere; keep serving what arrives."""

    async def stop(self) -> None: ...


@runtime_checkable
class EndsByItself(Protocol):
    """A host whose server can end without a signal (uvicorn after a fatal error): `serve()` returns then too."""

    async def ended(self) -> None: ...


async def close_all(closers: Iterable[Callable[[], Awaitable[object]]], *, owner: str) -> None:
    """Close each resource independently: one failing close is logged and must not leave the others open."""
    for close in closers:
        try:
            await close()
        except Exception:
            log.exception("%s: closing %s failed", owner, getattr(close, "__qualname__", close))


def stop_requested() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT (call from inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def tune_gc(threshold: int) -> None:
    """Collect the youngest generation every `threshold` allocations (the older generations' thresholds unchanged)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)


def freeze_heap() -> None:
    """Leave what start-up built out of every later collection: collect its garbage once, then `gc.freeze()`.

    A full collection walks every object the collector tracks; in a served process most of them are the imported
    modules and the objects built at start-up, which live as long as the process. Frozen, they are never walked
    again, and a full collection costs what the requests left behind.
    """
    gc.collect()
    gc.freeze()


async def serve(host: Host, *, freeze: bool = False) -> None:
    """Start `host`, serve until a stop signal (or until the host ends by itself), drain, stop.

    `freeze`: leave the built host, and the modules, out of every later garbage collection (`freeze_heap`), before
    the host listens: the one full collection that takes then delays no request.
    """
    stop = stop_requested()
    if freeze:
        freeze_heap()
    await host.start()
    loop = "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
    log.info(
        "%s serving (event loop: %s; garbage collector: threshold %d, %d objects frozen)",
        host.service,
        loop,
        gc.get_threshold()[0],
        gc.get_freeze_count(),
    )
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if isinstance(host, EndsByItself):
        waiters.append(asyncio.ensure_future(host.ended()))
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if stop.is_set() and host.drain_delay_s > 0:
        log.info("%s received a stop signal: draining, still serving for %.0fs", host.service, host.drain_delay_s)
        host.drain()
        await asyncio.sleep(host.drain_delay_s)
    log.info("%s stopping", host.service)
    await host.stop()

"""How every long-running process ends: SIGTERM (Kubernetes) or SIGINT (Ctrl-C) asks it to stop gracefully.

One place installs the handlers, so every host drains the same way instead of each re-implementing it.
"""

from __future__ import annotations

import asyncio
import signal


def stop_requested() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT (call from inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop

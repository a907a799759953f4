"""Which CPUs the servers under test get, and which the load generator and the shared back ends get.

On a 2-core machine a load generator beside the server on the same core measures its own scheduling as much as the
server. The server under test (one Python process: one event loop, at most one core) gets the first CPU to itself;
the load generator, PostgreSQL, Redis and any back-end service the server calls share the others. Both the Venta
server and its peer are placed the same way, so the ratio compares like with like. `taskset` does the pinning, for
new processes (a command prefix) and for running ones (a whole process tree: PostgreSQL's backends are forked from
the postmaster and inherit its CPUs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Placement:
    server: str | None  # a taskset CPU list, or None: nothing is pinned
    support: str | None

    @classmethod
    def for_this_machine(cls) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls(str(cpus[0]), ",".join(str(c) for c in cpus[1:]))

    def on_server_cpus(self, argv: Sequence[str]) -> list[str]:
        return ["taskset", "-c", self.server, *argv] if self.server else list(argv)

    def on_support_cpus(self, argv: Sequence[str]) -> list[str]:
        return ["taskset", "-c", self.support, *argv] if self.support else list(argv)

    def pin_support(self, pid: int) -> None:
        """Move a running process and all its descendants (e.g. PostgreSQL's postmaster) to the support CPUs."""
        _pin(pid, self.support)

    def pin_server(self, pid: int) -> None:
        """Move a running process and all its descendants to the server's CPU."""
        _pin(pid, self.server)

    @contextlib.contextmanager
    def on_server_cpus_here(self) -> Iterator[None]:
        """This process on the server's CPUs for the block (a peer measured inside the benchmark's own process)."""
        if not self.server:
            yield
            return
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(cpu) for cpu in self.server.split(",")})
        try:
            yield
        finally:
            os.sched_setaffinity(0, before)

    def describe(self, *, servers: str, support: str) -> str:
        if not self.server:
            return f"placement: not pinned ({os.cpu_count()} CPU(s) or no taskset): {servers}; {support}"
        return f"placement (taskset): CPU {self.server}: {servers}; CPU {self.support}: {support}"


def _pin(pid: int, cpus: str | None) -> None:
    if not cpus:
        return
    for each in [pid, *_descendants(pid)]:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(each)], check=True, capture_output=True)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found

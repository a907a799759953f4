"""What the kernel says of a process the tests or benchmarks started (Linux `/proc`)."""

from __future__ import annotations

from pathlib import Path


def status_kib(pid: int, field: str) -> int:
    """A memory field of `/proc/<pid>/status` in KiB: `VmRSS` (resident now), `VmHWM` (its high-water mark)..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise LookupError(f"no {field} in /proc/{pid}/status")

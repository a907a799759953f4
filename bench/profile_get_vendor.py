"""Where the vendor service's time goes under GetVendorById load: py-spy samples it while ghz drives it.

Not a benchmark (`python -m bench` does not run it): the profile behind issue 13's hot-path work, to run again after
each change. The set-up is grpc_get_vendor.py's (one PostgreSQL, 1,000 vendors, ghz with 32 concurrent calls, the
same CPU placement); py-spy records the vendor service's Python thread for the length of the load. Each sample is
charged to the innermost frame of a known kind (CATEGORIES, first match wins, walking from the running frame
outwards): the deepest layer that was running. Frames of no kind (the standard library's contextlib, functools, the
interpreter, libc) are charged to whoever called them.

Two modes. By default py-spy reads the stacks without stopping the service (`--nonblocking`), which leaves its
throughput as it is, but sees Python frames only: C code that the event loop calls directly (grpc's Cython
callbacks, asyncpg's protocol, asyncio's C tasks) shows as `Handle._run` and cannot be told apart. `--blocking`
stops the service for every sample and unwinds native frames too (`--native`), which splits that bucket, but slows
the service several times over; its shares of the busy samples are the ones to compare, not its throughput.

py-spy is not one of the project's dependencies; install it apart, e.g.
`python3 -m venv /tmp/pyspy-venv && /tmp/pyspy-venv/bin/pip install py-spy`. The collapsed stacks are kept (`--out`),
a format speedscope and flamegraph tools read.

Usage: `.venv/bin/python bench/profile_get_vendor.py --py-spy /tmp/pyspy-venv/bin/py-spy [--seconds 30]`
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/profile_get_vendor.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.grpc_get_vendor import CALL, PROTO, VENTA, vendor_servers, write_ids
from bench.loadgen import Load, MissingTool, find_tools, ghz
from bench.placement import Placement

WAITING = "event loop: waiting in epoll (not busy)"
# (category, regex searched in a frame "function (file:line)"), most specific first
CATEGORIES = (
    (WAITING, r"^epoll_wait |^EpollSelector\.select "),
    ("garbage collection (CPython's gc, triggered by allocations)", r"^gc_collect"),
    ("interceptors: ours (services/kit/grpc/interceptors.py)", r"services/kit/grpc/interceptors\.py"),
    ("interceptors: OpenTelemetry's gRPC instrumentation", r"opentelemetry/instrumentation/grpc/"),
    ("OpenTelemetry's asyncpg instrumentation (a span per statement)", r"opentelemetry/instrumentation/asyncpg"),
    ("OpenTelemetry: other instrumentation", r"opentelemetry/instrumentation/"),
    ("span creation and ending (OpenTelemetry SDK/API, context)", r"opentelemetry/"),
    ("metrics (prometheus_client)", r"prometheus_client/"),
    ("logging", r"/logging/|structlog/|services/kit/logging"),
    ("the kit's database session (services/kit/db)", r"services/kit/db/"),
    ("ORM: SQLAlchemy/SQLModel (session, compile, load)", r"sqlalchemy/|sqlmodel/"),
    ("asyncpg (protocol, pool)", r"asyncpg/"),
    ("pydantic (model construction, validation)", r"pydantic"),
    ("protobuf (messages, serialization)", r"google/_upb/|google/protobuf/|_pb2\.py"),
    ("the handler (servicer, repository, models)", r"services/vendors/|services/kit/validation"),
    ("the kit's other code", r"services/"),
    ("gRPC (grpc.aio, cygrpc)", r"grpc/|grpc_|cygrpc"),
    (
        "event loop callbacks in C, unattributed (cygrpc, asyncpg's protocol, asyncio's C tasks; --blocking splits it)",
        r"^Handle\._run \(.*asyncio/events\.py:80\)",
    ),
    ("event loop (asyncio, selectors)", r"asyncio/|_asynciomodule\.c|selectors\.py|epoll|uvloop"),
)
# The handler and what it calls: its own frames, and the ORM's greenlet. SQLAlchemy's asyncio bridge runs the ORM in a
# greenlet, whose sampled stack starts at the greenlet (its first Python frame is SQLAlchemy's or SQLModel's), not at
# the handler; only the handler starts one under this load.
HANDLER = re.compile(r"GetVendorById \(.*services/vendors/servicer\.py")
GREENLET_ROOT = re.compile(r"sqlalchemy/|sqlmodel/")


def in_handler(frames: list[str]) -> bool:
    if any(HANDLER.search(frame) for frame in frames):
        return True
    python = [frame for frame in frames if re.search(r"\.py:\d+\)$", frame)]
    return bool(python) and bool(GREENLET_ROOT.search(python[0]))


def categorise(stacks: dict[str, int]) -> tuple[collections.Counter[str], int, int]:
    """Samples per category; samples inside the handler (GetVendorById and what it calls); all samples."""
    shares: collections.Counter[str] = collections.Counter()
    handler = total = 0
    for stack, count in stacks.items():
        frames = stack.split(";")  # outermost first
        total += count
        if in_handler(frames):
            handler += count
        for frame in reversed(frames):
            kind = next((name for name, pattern in CATEGORIES if re.search(pattern, frame)), None)
            if kind:
                shares[kind] += count
                break
        else:
            shares["other (interpreter, standard library)"] += count
    return shares, handler, total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_collapsed(path: Path) -> dict[str, int]:
    stacks: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks[stack] = stacks.get(stack, 0) + int(count)
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--py-spy", required=True, type=Path, help="the py-spy binary")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--vendors", type=int, default=1000)
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause the service for each sample (exact stacks, native frames; slows the service down several times)",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/venta-profile-get-vendor.txt"))
    args = parser.parse_args()
    try:
        tools = find_tools("ghz")
    except MissingTool as exc:
        raise SystemExit(str(exc)) from None
    placement = Placement.for_this_machine()
    with (
        tempfile.TemporaryDirectory(prefix="venta-profile-") as tmp,
        vendor_servers(Path(tmp), placement, vendors=args.vendors, concurrency=args.concurrency, bare=False) as servers,
    ):
        data_file = write_ids(Path(tmp) / "ids.json", args.vendors)

        def drive(requests: int, duration_s: float | None = None) -> Load:
            return ghz(
                tools,
                placement,
                target=f"127.0.0.1:{servers.ports[VENTA]}",
                call=CALL,
                proto=PROTO,
                data_file=data_file,
                requests=requests,
                concurrency=args.concurrency,
                duration_s=duration_s,
            )

        drive(1000)  # warm-up
        record = [
            str(args.py_spy),
            "record",
            *("--pid", str(servers.processes.procs["vendors"].pid)),
            *("--duration", str(int(args.seconds)), "--rate", str(args.rate)),
            *("--format", "raw", "--full-filenames", "--output", str(args.out)),
            *(("--native",) if args.blocking else ("--nonblocking",)),
        ]
        pid = servers.processes.procs["vendors"].pid
        spy = subprocess.Popen(placement.on_support_cpus(record), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1)  # py-spy attaches; the load must cover all of its samples
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        measured = drive(0, duration_s=args.seconds + 2)
        busy = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
        printed = spy.communicate(timeout=60)[0].decode(errors="replace")
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed: {printed[-2000:]}")
    shares, in_handler, total = categorise(read_collapsed(args.out))
    print(
        f"vendor service under ghz: {measured.describe()}, {busy:.2f} CPU busy (all its threads); "
        f"{total} samples at {args.rate}/s"
    )
    print(placement.describe(servers="the vendor service", support="ghz, PostgreSQL, py-spy"))
    print(f"command: {' '.join(record)}")
    waiting = shares.pop(WAITING, 0)
    busy = total - waiting
    print(f"{waiting} samples ({waiting / total:.1%}) waiting in epoll; shares of the {busy} busy samples:")
    for name, count in shares.most_common():
        print(f"{count / busy:6.1%}  {name}")
    print(f"inside GetVendorById (the handler and all it calls, the ORM's greenlet included): {in_handler / busy:.1%}")
    print(f"collapsed stacks: {args.out}")


if __name__ == "__main__":
    main()

"""Where the vendor service's time goes under one call's load: py-spy samples it while ghz drives the call.

Not a benchmark (`python -m bench` does not run it): the profile behind issue 13's hot-path work, to run again after
each change. `--call` picks the benchmark whose load it is (GetVendorById: grpc_get_vendor.py, UpdateVendor:
grpc_update_vendor.py); the set-up is theirs (bench/vendor_grpc.py: one PostgreSQL, 1,000 vendors, ghz with 32
concurrent calls, the same CPU placement); py-spy records the vendor service's Python thread for the length of the
load. Each sample is
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

Usage: `.venv/bin/python bench/profile_vendor_service.py --py-spy /tmp/pyspy-venv/bin/py-spy [--call UpdateVendor]
[--seconds 30]`
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/profile_vendor_service.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import grpc_get_vendor, grpc_update_vendor
from bench.loadgen import Load
from bench.placement import Placement
from bench.vendor_grpc import VENTA, Driver, load_generator, vendor_servers
from tests.support.proc import cpu_seconds

WORKLOADS = {w.method: w for w in (grpc_get_vendor.WORKLOAD, grpc_update_vendor.WORKLOAD)}

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
    ("the kit's outbox and event envelope (services/kit/events)", r"services/kit/events/"),
    ("the handler (servicer, repository, models, the event's data)", r"services/vendors/|services/kit/validation"),
    ("the kit's other code", r"services/"),
    ("gRPC (grpc.aio, cygrpc)", r"grpc/|grpc_|cygrpc"),
    (
        "event loop callbacks in C, unattributed (cygrpc, asyncpg's protocol, asyncio's C tasks; --blocking splits it)",
        r"^Handle\._run \(.*asyncio/events\.py:80\)",
    ),
    ("event loop (asyncio, selectors)", r"asyncio/|_asynciomodule\.c|selectors\.py|epoll|uvloop"),
)
# What a call does, step by step (inclusive: a sample counts for every step whose regex matches its stack, frames
# joined by ";", outermost first; "^" anchors at the stack's first frame). Inside the ORM's greenlet py-spy sees only
# the greenlet's own frames, and in --nonblocking mode it sometimes loses a stack's outer part elsewhere too, so
# these are lower bounds; steps may overlap (BEGIN is sent with the first statement). A step no sample shows is left
# out of the printout (GetVendorById has no flush, outbox or commit).
STEPS = (
    ("request validation (`_changes`, `parse_uuid`: pydantic)", r"(^|;)(_changes|parse_uuid) \("),
    (
        "SELECT ... FOR UPDATE: the ORM query, its execution, loading the Vendor",
        r"(^|;)get_vendor \(|(^|;)(AsyncSession|Session)\.exec(ute)? \([^;]*(sqlmodel|sqlalchemy/orm)/",
    ),
    ("Core read (`read_vendor`: GetVendorById)", r"(^|;)read_vendor \("),
    ("the UPDATE: the ORM's flush", r"(^|;)(AsyncSession|Session)\._?flush \("),
    (
        "the outbox row: envelope, JSON, trace headers, the INSERT (`Outbox.add`, its Core execute)",
        r"(^|;)Outbox\.add \(|^Connection\.execute \([^;]*sqlalchemy/engine/base\.py",
    ),
    ("BEGIN (sent with the first statement)", r"_start_transaction \("),
    (
        "COMMIT (the session's transaction ending)",
        r"(^|;)(AsyncSessionTransaction\.__aexit__|SessionTransaction\.commit|TransactionalContext\.__exit__) \(|"
        r"_commit_and_discard \(",
    ),
    ("converting to protobuf (`to_proto`)", r"(^|;)to_proto \("),
)


def steps(stacks: dict[str, int]) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for stack, count in stacks.items():
        for name, pattern in STEPS:
            if re.search(pattern, stack):
                found[name] += count
    return found


# The handler and what it calls: its own frames, and the ORM's greenlet. SQLAlchemy's asyncio bridge runs the ORM in a
# greenlet, whose sampled stack starts at the greenlet (its first Python frame is SQLAlchemy's or SQLModel's), not at
# the handler; only the handler starts one under this load.
GREENLET_ROOT = re.compile(r"sqlalchemy/|sqlmodel/")


def in_handler(frames: list[str], handler: re.Pattern[str]) -> bool:
    if any(handler.search(frame) for frame in frames):
        return True
    python = [frame for frame in frames if re.search(r"\.py:\d+\)$", frame)]
    return bool(python) and bool(GREENLET_ROOT.search(python[0]))


def categorise(stacks: dict[str, int], method: str) -> tuple[collections.Counter[str], int, int]:
    """Samples per category; samples inside the handler (`method` and what it calls); all samples."""
    handler_frame = re.compile(rf"\.{method} \(.*services/vendors/servicer\.py")
    shares: collections.Counter[str] = collections.Counter()
    handler = total = 0
    for stack, count in stacks.items():
        frames = stack.split(";")  # outermost first
        total += count
        if in_handler(frames, handler_frame):
            handler += count
        for frame in reversed(frames):
            kind = next((name for name, pattern in CATEGORIES if re.search(pattern, frame)), None)
            if kind:
                shares[kind] += count
                break
        else:
            shares["other (interpreter, standard library)"] += count
    return shares, handler, total


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
    parser.add_argument("--call", choices=sorted(WORKLOADS), default="GetVendorById", help="the load: this call")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--vendors", type=int, default=1000)
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause the service for each sample (exact stacks, native frames; slows the service down several times)",
    )
    parser.add_argument("--out", type=Path, help="the collapsed stacks (default /tmp/venta-profile-<call>.txt)")
    args = parser.parse_args()
    workload = WORKLOADS[args.call]
    out: Path = args.out or Path(f"/tmp/venta-profile-{workload.method}.txt")
    tools, placement = load_generator(), Placement.for_this_machine()
    with (
        tempfile.TemporaryDirectory(prefix="venta-profile-") as tmp,
        vendor_servers(Path(tmp), placement, vendors=args.vendors, concurrency=args.concurrency, bare=False) as servers,
    ):
        driver = Driver(tools, placement, servers, workload, vendors=args.vendors, tmp=Path(tmp))

        def drive(requests: int, duration_s: float | None = None) -> Load:
            return driver(VENTA, requests, concurrency=args.concurrency, duration_s=duration_s)

        drive(1000)  # warm-up
        record = [
            str(args.py_spy),
            "record",
            *("--pid", str(servers.processes.procs["vendors"].pid)),
            *("--duration", str(int(args.seconds)), "--rate", str(args.rate)),
            *("--format", "raw", "--full-filenames", "--output", str(out)),
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
    stacks = read_collapsed(out)
    shares, in_handler, total = categorise(stacks, workload.method)
    print(
        f"vendor service under ghz ({workload.method}): {measured.describe()}, {busy:.2f} CPU busy (all its threads); "
        f"{total} samples at {args.rate}/s"
    )
    print(placement.describe(servers="the vendor service", support="ghz, PostgreSQL, py-spy"))
    print(f"command: {' '.join(record)}")
    waiting = shares.pop(WAITING, 0)
    busy = total - waiting
    print(f"{waiting} samples ({waiting / total:.1%}) waiting in epoll; shares of the {busy} busy samples:")
    for name, count in shares.most_common():
        print(f"{count / busy:6.1%}  {name}")
    inside = f"inside {workload.method} (the handler and all it calls, the ORM's greenlet included)"
    print(f"{inside}: {in_handler / busy:.1%}")
    print("steps of the call (inclusive, lower bounds, may overlap; see STEPS):")
    found = steps(stacks)
    for name, _ in STEPS:
        if found[name]:
            print(f"{found[name] / busy:6.1%}  {name}")
    print(f"collapsed stacks: {out}")


if __name__ == "__main__":
    main()

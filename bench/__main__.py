"""`python -m bench`: every benchmark, one after the other, and one table of their figures (docs/performance.md).

Each benchmark runs as its own process, exactly as `python bench/<name>.py` runs alone, so nothing here can make a
figure differ from the standalone one. Benchmarks driven by native load generators hand over their figures as JSON
(`--figures`); the others' printed summaries are parsed (bench/summaries.py). A benchmark that fails still gets a row
saying so, the table is still written, and the run exits non-zero. Each benchmark's full output is kept in the logs
directory. `--short` runs every benchmark in its quick configuration (what the tests run); its figures mean little,
so it writes docs/performance.md only when `--output` says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.figures import Figure, markdown, print_table, read_json
from bench.loadgen import MissingTool, find_tools
from bench.summaries import PARSERS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Benchmark:
    name: str
    short: tuple[str, ...]  # arguments of the quick configuration
    load: str  # what drives it, said in the document
    writes_figures: bool = False  # takes --figures PATH; otherwise its output is parsed
    needs: str = ""  # what it needs beyond the venv, said in the table when it fails
    describes: str = ""  # the start of the printed line that says how it ran (default: its first line)


BENCHMARKS = (
    Benchmark(
        "grpc_get_vendor", ("--short",), "ghz, pgbench", writes_figures=True, needs="ghz: bench/install-tools.sh"
    ),
    Benchmark(
        "grpc_update_vendor", ("--short",), "ghz, pgbench", writes_figures=True, needs="ghz: bench/install-tools.sh"
    ),
    Benchmark("gateway_read", ("--short",), "vegeta", writes_figures=True, needs="vegeta: bench/install-tools.sh"),
    Benchmark(
        "events_pipeline",
        ("--short",),
        "ghz (UpdateVendor); nats-py for the raw JetStream peer and search sync alone",
        writes_figures=True,
        needs="ghz: bench/install-tools.sh",
    ),
    Benchmark(
        "websocket_fanout",
        ("--watchers", "20", "--updates", "10", "--rate", "10", "--port-offset", "7300"),
        "socket.io-client (Node.js): every watcher its own connection, all in one process",
        needs="Node.js and bench/js: bench/install-tools.sh",
        describes="watchers, ",
    ),
    Benchmark(
        "observability_cost",
        ("--requests", "100", "--concurrency", "4", "--rounds", "1"),
        "vegeta",
        needs="vegeta: bench/install-tools.sh",
    ),
    Benchmark("operator_scale", ("3",), "kubectl apply", needs="the KWOK cluster's tools: tests/cluster/build.sh"),
    Benchmark(
        "real_node_platform",
        ("--loop-seconds", "5"),
        "one sequential Python client (httpx)",
        needs="root and the real node: tests/cluster/build.sh",
        describes="real node (",
    ),
)


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown CPU")
    mem_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or str(os.cpu_count())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{nproc} CPUs (`nproc`), {model}, {mem_kib / 2**20:.1f} GiB memory; load average {load} when the run "
        f"started; Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return head.stdout.strip() + (" with uncommitted changes" if dirty.strip() else "")


def run_one(bench: Benchmark, *, short: bool, logs: Path) -> tuple[list[Figure], list[str], bool]:
    """Its figures, the lines describing how it ran, and whether it succeeded."""
    argv = [sys.executable, str(ROOT / "bench" / f"{bench.name}.py"), *(bench.short if short else ())]
    figures_file = logs / f"{bench.name}.json"
    figures_file.unlink(missing_ok=True)
    if bench.writes_figures:
        argv += ["--figures", str(figures_file)]
    print(f"== {bench.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    with open(logs / f"{bench.name}.log", "w") as log:
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        log.write(done.stdout)
    took = time.monotonic() - started
    print(done.stdout, end="", flush=True)
    shown = " ".join(("python", f"bench/{bench.name}.py", *(bench.short if short else ())))
    printed = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    described = [line for line in printed if bench.describes in line][:1]
    how = [f"`{shown}` ({took / 60:.1f} min; load: {bench.load})"]
    how += [f"  {line}" for line in described + [x for x in printed if x.startswith(("placement", "tracing:"))]]
    if done.returncode != 0:
        last = (logs / f"{bench.name}.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
        reason = f"failed (exit {done.returncode}): {last[0][:200]}"
        if bench.needs:
            reason += f" [needs {bench.needs}]"
        return [Figure(bench.name, "(the whole benchmark)", reason)], how, False
    figures = read_json(figures_file) if bench.writes_figures else PARSERS[bench.name](done.stdout)
    if not figures:
        figures = [Figure(bench.name, "(the whole benchmark)", "ran, but printed no figure this harness reads")]
        return figures, how, False
    return figures, how, True


def document(figures: list[Figure], how: list[str], started: dt.datetime, host: str, short: bool) -> str:
    mode = " (short mode: quick configurations, figures not meaningful)" if short else ""
    return "\n".join(
        [
            "# Performance",
            "",
            f"Generated by `python -m bench`{mode} on {started:%Y-%m-%d %H:%M} UTC from commit {commit()}; "
            "do not edit: run it again.",
            "",
            f"Machine: {host}.",
            "",
            "Every figure is measured beside its peer in the same run on the same machine (the hand-written "
            "equivalent a user would otherwise deploy, or the physical limit), because these machines are shared "
            "and noisy: absolute numbers vary from run to run, ratios much less. Goals are issue 13's. How each "
            "benchmark works: bench/README.md.",
            "",
            markdown(figures),
            "## How each benchmark ran",
            "",
            *(f"- {line}" if not line.startswith("  ") else f"  {line.strip()}" for line in how),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    names = [b.name for b in BENCHMARKS]
    parser.add_argument("--short", action="store_true", help="every benchmark in its quick configuration")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"run only these: {names}")
    parser.add_argument("--skip", nargs="+", choices=names, metavar="NAME", default=[], help="do not run these")
    parser.add_argument("--output", type=Path, help=f"the table's file (default {DOC.relative_to(ROOT)}, not --short)")
    parser.add_argument("--logs", type=Path, help="where each benchmark's output goes (default: a new temporary dir)")
    parser.add_argument(
        "--check-tools", action="store_true", help="only check that the load generators are built (exit 1 if not)"
    )
    args = parser.parse_args()
    if args.check_tools:
        try:
            tools = find_tools()
        except MissingTool as exc:
            raise SystemExit(str(exc)) from None
        print(f"ghz {tools.ghz_version}: {tools.ghz}\nvegeta {tools.vegeta_version}: {tools.vegeta}")
        return
    output = args.output or (None if args.short else DOC)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="venta-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    started, host = dt.datetime.now(dt.UTC), machine()
    print(f"machine: {host}\nlogs: {logs}", flush=True)
    figures: list[Figure] = []
    how: list[str] = []
    ok = True
    for bench in BENCHMARKS:
        if (args.only and bench.name not in args.only) or bench.name in args.skip:
            continue
        got, ran, succeeded = run_one(bench, short=args.short, logs=logs)
        figures += got
        how += ran
        ok = ok and succeeded
    print("\n== all figures")
    print_table(figures)
    if output:
        output.write_text(document(figures, how, started, host, args.short))
        print(f"\nwritten: {output}")
    if not ok:
        raise SystemExit(f"some benchmarks failed; their output is in {logs}")


if __name__ == "__main__":
    main()

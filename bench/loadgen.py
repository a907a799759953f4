"""The native load generators (ghz for gRPC, vegeta for HTTP) and pgbench, run and read the same way for every row.

Why native: a Python client on the same two cores as the server measures its own event loop as much as the server
(issue 13). ghz and vegeta are built by bench/install-tools.sh (pinned, cached under ~/.cache/venta); this module never
builds them: when one is missing it says which command does. pgbench comes with PostgreSQL's binaries.

Every runner returns a `Load` (throughput, p50, p99 as the generator measured them) and refuses a run in which any
call failed: a fast error is not a result.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.placement import Placement

ROOT = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = ROOT / "bench" / "install-tools.sh"
INSTALL_COMMAND = "bench/install-tools.sh"


class MissingTool(RuntimeError):
    """A load generator is not built; the message names the command that builds it."""


class LoadError(RuntimeError):
    """A load generator failed or saw failed calls; the message carries what it reported."""


@dataclass(frozen=True)
class Tools:
    ghz: Path
    ghz_version: str
    vegeta: Path
    vegeta_version: str


def find_tools(*needed: str) -> Tools:
    """The binaries install-tools.sh builds (its `--print-env` names them); MissingTool, saying how to build them, when
    one of `needed` (default: all) is not there."""
    printed = subprocess.run([str(INSTALL_SCRIPT), "--print-env"], capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line and not line.startswith("#"))
    tools = Tools(Path(env["GHZ"]), env["GHZ_VERSION"], Path(env["VEGETA"]), env["VEGETA_VERSION"])
    missing = [
        f"{name} {version} (expected at {path})"
        for name, version, path in (
            ("ghz", tools.ghz_version, tools.ghz),
            ("vegeta", tools.vegeta_version, tools.vegeta),
        )
        if (not needed or name in needed) and not os.access(path, os.X_OK)
    ]
    if missing:
        raise MissingTool(f"load generator not built: {'; '.join(missing)}; build with: {INSTALL_COMMAND}")
    return tools


@dataclass(frozen=True)
class Load:
    """One measured row: what the load generator saw."""

    rps: float
    p50_ms: float
    p99_ms: float
    count: int

    def describe(self, unit: str = "req/s") -> str:
        return f"{self.rps:,.0f} {unit}, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"


def median(loads: Sequence[Load]) -> Load:
    return Load(
        rps=statistics.median(x.rps for x in loads),
        p50_ms=statistics.median(x.p50_ms for x in loads),
        p99_ms=statistics.median(x.p99_ms for x in loads),
        count=sum(x.count for x in loads),
    )


def _run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise LoadError(f"{what} exited with {done.returncode}: {(done.stderr or done.stdout)[-2000:]}")
    return done.stdout


def ghz(
    tools: Tools,
    placement: Placement,
    *,
    target: str,
    call: str,
    proto: Path,
    data_file: Path,
    requests: int,
    concurrency: int,
    duration_s: float | None = None,
    rps: float | None = None,
) -> Load:
    """`requests` unary calls (or as many as fit in `duration_s`), `concurrency` at a time over one connection; each
    call takes the next message of the data file's JSON array (ghz's round robin for unary calls). With `rps`, ghz
    paces the calls at that rate (an open schedule, at most `concurrency` outstanding) instead of as fast as answers
    come back."""
    amount = ["--total", str(requests)]
    if duration_s is not None:  # the calls still in flight at the end are left out, not counted as failed
        amount = ["--duration", f"{duration_s:g}s", "--duration-stop", "ignore"]
    if rps is not None:
        amount += ["--rps", str(max(1, round(rps)))]  # ghz takes whole calls per second
    argv = placement.on_support_cpus(
        [
            str(tools.ghz),
            "--insecure",
            "--proto",
            str(proto),
            "--import-paths",
            str(ROOT / "protos"),
            "--call",
            call,
            "--data-file",
            str(data_file),
            *amount,
            "--concurrency",
            str(concurrency),
            "--connections",
            "1",
            "--format",
            "json",
            target,
        ]
    )
    report = json.loads(_run(argv, f"ghz {call} at {target}"))
    failed = {code: n for code, n in (report.get("statusCodeDistribution") or {}).items() if code != "OK"}
    if failed or report.get("errorDistribution"):
        raise LoadError(f"ghz {call} at {target}: failed calls {failed} {report.get('errorDistribution')}")
    latency = {int(p["percentage"]): p["latency"] / 1e6 for p in report["latencyDistribution"]}  # ns -> ms
    return Load(rps=report["rps"], p50_ms=latency[50], p99_ms=latency[99], count=report["count"])


NO_MORE_TARGETS = "no targets to attack"  # the result vegeta records when `attack -lazy` reaches the targets' end


def vegeta(
    tools: Tools,
    placement: Placement,
    *,
    urls: Sequence[str],
    concurrency: int,
    work_dir: Path,
    headers: Sequence[str] = (),
) -> Load:
    """One GET per URL of `urls`, in order, from `concurrency` workers over kept-alive connections: a closed loop
    (`-rate=0`: each worker sends its next request when its last one is answered), ended by the targets' end
    (`-lazy` reads them one at a time and stops the attack at the end of the file)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    targets, results = work_dir / "targets.http", work_dir / "results.bin"
    header_lines = "".join(f"{header}\n" for header in headers)
    targets.write_text("".join(f"GET {url}\n{header_lines}\n" for url in urls))
    binary = str(tools.vegeta)
    attack = [binary, "attack", "-lazy", f"-targets={targets}", "-rate=0", "-duration=0", "-timeout=30s"]
    workers = [f"-workers={concurrency}", f"-max-workers={concurrency}", f"-output={results}"]
    what = f"vegeta {len(urls)} GETs like {urls[0]}"
    _run(placement.on_support_cpus([*attack, *workers]), what)
    report = json.loads(_run([binary, "report", "-type=json", str(results)], what))
    outcomes = [json.loads(line) for line in _run([binary, "encode", "-to=json", str(results)], what).splitlines()]
    answered = [r for r in outcomes if r["error"] != NO_MORE_TARGETS]
    failed = Counter(f"{r['code']} {r['error']}".strip() for r in answered if r["code"] != 200)
    if failed or len(answered) != len(urls):
        raise LoadError(f"{what}: {len(answered)} of {len(urls)} answered; failed {dict(failed)}")
    cuts = statistics.quantiles([r["latency"] / 1e6 for r in answered], n=100)  # ns -> ms
    elapsed_s = (report["duration"] + report["wait"]) / 1e9  # first request sent .. last answer received
    return Load(rps=len(answered) / elapsed_s, p50_ms=cuts[49], p99_ms=cuts[98], count=len(answered))


def pgbench(
    binary: Path,
    placement: Placement,
    *,
    dsn: str,
    script: str,
    transactions: int,
    clients: int,
    work_dir: Path,
) -> Load:
    """`script` (one transaction) `transactions` times over `clients` connections, prepared statements (as asyncpg
    sends them). PostgreSQL is on the support CPUs, so pgbench runs on the server CPUs, idle at that time."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for old in work_dir.glob("pgbench_log*"):
        old.unlink()
    script_file = work_dir / "script.sql"
    script_file.write_text(script)
    argv = placement.on_server_cpus(
        [
            str(binary),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            "--jobs=1",
            f"--transactions={max(1, transactions // clients)}",
            f"--file={script_file}",
            "--log",
            f"--log-prefix={work_dir / 'pgbench_log'}",
            dsn,
        ]
    )
    printed = _run(argv, "pgbench")
    tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", printed, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", printed, re.MULTILINE)
    if tps is None or (failed is not None and int(failed.group(1))):
        raise LoadError(f"pgbench: {printed[-2000:]}")
    # per-transaction log: client_id transaction_no time_us script_no epoch_s epoch_us
    latencies = [int(line.split()[2]) / 1000 for log in work_dir.glob("pgbench_log*") for line in log.open()]
    cuts = statistics.quantiles(latencies, n=100)
    return Load(rps=float(tps.group(1)), p50_ms=cuts[49], p99_ms=cuts[98], count=len(latencies))

"""The rows of the performance table: a figure, the peer it is compared with in the same run, the ratio, the goal.

A benchmark prints its figures as a table and, given `--figures PATH`, writes them as JSON for `python -m bench`,
which gathers every benchmark's rows into docs/performance.md. Goals are issue 13's; a figure without one has none.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from bench.loadgen import Load
from bench.processes import DEPLOYED_SAMPLING


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: str
    peer: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | None = None  # None: no goal, or not measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "not met", None: ""}[self.met]


def against(
    benchmark: str,
    name: str,
    load: Load,
    peer_name: str,
    peer: Load,
    *,
    min_ratio: float | None = None,
    p99_within_ms: float | None = None,
    unit: str = "req/s",
    peer_unit: str = "req/s",
) -> Figure:
    """A throughput figure against its peer's; the goal is a minimum ratio and, optionally, a p99 margin."""
    ratio = load.rps / peer.rps
    goal, met = "", None
    if min_ratio is not None:
        goal = f">= {min_ratio:g}x"
        met = ratio >= min_ratio
        if p99_within_ms is not None:
            goal += f", p99 within {p99_within_ms:g} ms"
            met = met and load.p99_ms - peer.p99_ms <= p99_within_ms
    return Figure(
        benchmark=benchmark,
        name=name,
        value=load.describe(unit),
        peer=f"{peer_name}: {peer.describe(peer_unit)}",
        ratio=f"{ratio:.2f}x (p99 {load.p99_ms - peer.p99_ms:+.1f} ms)",
        goal=goal,
        met=met,
    )


def write_json(figures: Sequence[Figure], path: Path) -> None:
    path.write_text(json.dumps([asdict(f) for f in figures], indent=1))


def read_json(path: Path) -> list[Figure]:
    return [Figure(**row) for row in json.loads(path.read_text())]


COLUMNS = ("figure", "measured", "peer (same run)", "ratio", "goal", "")


def _cells(figure: Figure) -> tuple[str, ...]:
    return (figure.name, figure.value, figure.peer, figure.ratio, figure.goal, figure.verdict)


def print_table(figures: Sequence[Figure], out: TextIO = sys.stdout) -> None:
    rows = [COLUMNS, *(_cells(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


def markdown(figures: Sequence[Figure]) -> str:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [
        "| benchmark | " + " | ".join(COLUMNS[:-1]) + " | met |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for f in figures:
        lines.append("| " + " | ".join(escape(c) for c in (f"`{f.benchmark}`", *_cells(f))) + " |")
    return "\n".join(lines) + "\n"


def benchmark_parser(description: str | None, unit: str) -> argparse.ArgumentParser:
    """The options every load-generator benchmark takes (its own, --short included, are added by it)."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0] if description else None)
    parser.add_argument("--requests", type=int, default=5000, help=f"{unit} per measured row and round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--figures", type=Path, help="also write the figures as JSON here (for python -m bench)")
    add_sampling_ratio(parser)
    return parser


def add_sampling_ratio(parser: argparse.ArgumentParser) -> None:
    """`--sampling-ratio`: the share of traces the services record (the operator's default when tracing is on)."""
    parser.add_argument(
        "--sampling-ratio",
        type=float,
        default=DEPLOYED_SAMPLING,
        help="share of the traces the services record and export (default: the operator's; 1 records every call)",
    )


def report(figures: Sequence[Figure], path: Path | None) -> None:
    """Print the figures as a table; also write them as JSON to `path` when given (`--figures`)."""
    print_table(figures)
    if path:
        write_json(figures, path)

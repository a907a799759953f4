"""Figures read from the printed summary of the benchmarks that print text rather than `--figures` JSON.

websocket_fanout, observability_cost, operator_scale and real_node_platform print their ratios as text; `python -m
bench` turns those lines into table rows here, so each of them keeps working alone, unchanged. A parser that finds
nothing returns no figure, and the harness reports the benchmark as giving none.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bench.figures import Figure

NUMBER = r"([\d.]+)"


def _find(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.MULTILINE)


def websocket_fanout(out: str) -> list[Figure]:
    setup = _find(rf"^(\d+) watchers, (\d+) updates at {NUMBER}/s", out)
    rows = {
        who: _find(
            rf"^\s+{who}\s+delivered (\d+)/(\d+)\s+{NUMBER}/s\s+p50\s+{NUMBER} ms\s+p99\s+{NUMBER} ms"
            rf"(?:.*peak RSS {NUMBER} MiB)?",
            out,
        )
        for who in ("bare python-socketio", "venta websocket")
    }
    bare, venta = rows["bare python-socketio"], rows["venta websocket"]
    if not (setup and bare and venta):
        return []
    watchers, rate = int(setup[1]), float(setup[3])
    printed = _find(rf"^ratio venta/bare: deliveries/s {NUMBER}x", out)  # its own, from unrounded figures
    ratio = float(printed[1]) if printed else float(venta[3]) / float(bare[3])
    p99 = float(venta[5])
    applies = watchers >= 1000 and rate <= 4
    return [
        Figure(
            "websocket_fanout",
            f"Socket.IO fan-out, {watchers} watchers at {rate:g} updates/s: venta websocket",
            f"{float(venta[3]):,.0f} deliveries/s, p50 {float(venta[4]):.1f} ms, p99 {p99:.1f} ms "
            f"({venta[1]}/{venta[2]} delivered){_peak(venta)}",
            f"bare python-socketio: {float(bare[3]):,.0f} deliveries/s, p99 {float(bare[5]):.1f} ms{_peak(bare)}",
            f"{ratio:.2f}x",
            ">= 0.9x, p99 < 50 ms (1,000 watchers, 4 updates/s)",
            (ratio >= 0.9 and p99 < 50) if applies else None,
        )
    ]


def _peak(row: re.Match[str]) -> str:
    return f", peak RSS {float(row[6]):.0f} MiB" if row[6] else ""


def observability_cost(out: str) -> list[Figure]:
    figures = []
    for path in ("cold (miss)", "cached (Redis)"):
        on = _find(rf"^on, {re.escape(path)}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out)
        off = _find(rf"^off, {re.escape(path)}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out)
        printed = _find(rf"^ratio on/off {path.split(' ')[0]}: throughput {NUMBER}x", out)  # from unrounded medians
        if on and off:
            figures.append(
                Figure(
                    "observability_cost",
                    f"GET vendor, {path}: tracing + metrics on",
                    f"{float(on[1]):,.0f} req/s, p50 {float(on[2]):.2f} ms, p99 {float(on[3]):.2f} ms",
                    f"off: {float(off[1]):,.0f} req/s, p50 {float(off[2]):.2f} ms, p99 {float(off[3]):.2f} ms",
                    f"{float(printed[1]) if printed else float(on[1]) / float(off[1]):.2f}x",
                )
            )
    return figures


def operator_scale(out: str) -> list[Figure]:
    name = "operator_scale"
    one = _find(rf"^apply -> Ready, 1 platform:\s+{NUMBER} s", out)
    many = _find(rf"^apply -> Ready, (\d+) platforms: first\s+{NUMBER} s, median\s+{NUMBER} s, all\s+{NUMBER} s", out)
    noop = _find(r"^no-op reconcile of one platform:\s+(\d+) reads \(([^)]*)\), (\d+) writes", out)
    drift = _find(r"^drift passes over (\d+) converged platforms: (\d+) passes, (\d+) writes", out)
    memory = _find(rf"^operator memory \(RSS\) with (\d+) platforms:\s+{NUMBER} MiB", out)
    figures = []
    ratio = _find(rf"ratio all-\d+ / one:\s+{NUMBER}x", out)  # its own, from unrounded figures
    if one and many:
        n, everything = int(many[1]), float(many[4])
        figures.append(
            Figure(
                name,
                f"operator on KWOK: {n} platforms apply -> Ready",
                f"all {everything:.1f} s (first {float(many[2]):.1f} s, median {float(many[3]):.1f} s)",
                f"1 platform: {float(one[1]):.1f} s",
                f"{float(ratio[1]) if ratio else everything / float(one[1]):.2f}x",
                "< 60 s for 50 platforms",
                everything < 60 if n >= 50 else None,
            )
        )
    floor = _find(rf"^physical limit, (\d+) platforms' children .* after\s+{NUMBER} s; operator / limit {NUMBER}x", out)
    if floor and many:
        figures.append(
            Figure(
                name,
                f"operator on KWOK: {floor[1]} platforms apply -> Ready, against the cluster's own limit",
                f"all {float(many[4]):.1f} s",
                f"every child of {floor[1]} platforms applied at once, no operator, no stages: all running after "
                f"{float(floor[2]):.1f} s",
                f"{float(floor[3]):.2f}x",
            )
        )
    if memory:
        platforms, mib = int(memory[1]), float(memory[2])
        figures.append(
            Figure(
                name,
                f"operator memory (RSS) with {platforms} platforms",
                f"{mib:.1f} MiB",
                goal="< 100 MiB with 50 platforms",
                met=mib < 100 if platforms >= 50 else None,
            )
        )
    if noop:
        drift_writes = int(drift[3]) if drift else 0
        writes = int(noop[3])
        figures.append(
            Figure(
                name,
                "operator: writes of a no-op reconcile (and of drift passes)",
                f"{writes} writes ({noop[1]} reads); drift passes: {drift_writes} writes",
                goal="0 writes",
                met=writes == 0 and drift_writes == 0,
            )
        )
    return figures


def real_node_platform(out: str) -> list[Figure]:
    figures = []
    in_table = False
    for line in out.splitlines():
        if line.startswith("real node (1 platform)"):
            in_table = True
            continue
        if not in_table or not line.startswith("  ") or line.startswith("   "):
            continue  # only the rows of the table (the "of which" detail row is indented further)
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 2:
            name, value, *rest = cells
            peer = rest[0] if rest else ""
            ratio = rest[1] if len(rest) > 1 else ""
            figures.append(Figure("real_node_platform", f"real node: {name}", value, peer, ratio))
    return figures


PARSERS: dict[str, Callable[[str], list[Figure]]] = {
    "websocket_fanout": websocket_fanout,
    "observability_cost": observability_cost,
    "operator_scale": operator_scale,
    "real_node_platform": real_node_platform,
}

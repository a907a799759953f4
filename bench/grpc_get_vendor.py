"""GetVendorById under ghz: the vendor service as deployed beside a bare grpc.aio + asyncpg server on the same proto,
and the same query straight from PostgreSQL with pgbench (the physical limit), all in one run on one PostgreSQL.

The vendor service runs as its own process (`venta serve vendors` with its defaults: the kit's interceptors,
OpenTelemetry spans for every call, no exporter; the outbox relay off, reads never touch it). The bare peer is
bench/peers/grpc_vendor.py. Both answer the same 1,000 vendors to the same ghz (a Go load generator: 32 concurrent
calls on one connection, each call the next id of a shuffled list), and are placed on the same CPU, away from ghz and
PostgreSQL (bench/placement.py). Rounds alternate which server goes first; medians are reported (bench/vendor_grpc.py,
shared with grpc_update_vendor.py). The figure to improve: vendor service / bare peer (issue 13's goal: >= 0.8x, p99
within 2 ms). In that closed loop latency is mostly queueing (32 calls in flight / throughput: 0.8x the throughput
is 1.25x the latency), so both servers are then also paced at one rate (70% of the slower one's throughput, ghz
`--rps`, same rounds) and their p99 compared at that same offered load.

Usage: `.venv/bin/python bench/grpc_get_vendor.py [--requests 5000] [--rounds 3]`, `--short` for a quick check;
the load generators come from bench/install-tools.sh.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/grpc_get_vendor.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dataset
from bench.figures import Figure
from bench.vendor_grpc import Workload, cli, figures, measure

NAME = "grpc_get_vendor"
PACED_SHARE = 0.7
"""Both servers also paced at this share of the slower one's throughput: latency at one offered load."""


def request(n: int) -> dict[str, Any]:
    return {"id": dataset.vendor_id(n)}


WORKLOAD = Workload("GetVendorById", request)


def run(args: argparse.Namespace) -> list[Figure]:
    script = f"\\set n random(0, {args.vendors - 1})\nSELECT * FROM vendor WHERE id = {dataset.sql_vendor_id(':n')};\n"
    results = measure(WORKLOAD, args, limit_script=lambda _: script, paced_share=PACED_SHARE)
    return figures(
        NAME,
        WORKLOAD.method,
        results,
        min_ratio=0.8,
        p99_within_ms=2,
        limit="the same query, prepared",
        limit_unit="queries/s",
    )


if __name__ == "__main__":
    cli(__doc__, run)

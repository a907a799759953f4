"""The stores' exporters for real: postgres_exporter and redis_exporter, at the versions of the operator's default
images, built from their Go modules (tests/cluster/build-monitoring.sh), run as the operator's sidecars run them
(the same environment variables, arguments and probe paths, from the builders) against real PostgreSQL and Redis.

What it proves: every `pg_*` and `redis_*` metric name that the stores' dashboard and alerts read is really exported
(a renamed metric would leave a panel empty and an alert silent for ever), the probes' paths answer, and an
exporter whose server is gone reports `pg_up 0`/`redis_up 0`, which VentaStoreDown fires on.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.devkit.servers import Postgres, Redis, free_port
from tests.support.observability_assets import ROOT, store_queries
from tests.support.operator_plans import env_of, make
from venta_operator.builders.exporters import postgres_sidecars, redis_sidecars

BUILD = ROOT / "tests" / "cluster" / "build-monitoring.sh"
ON = {"observability": {"exporters": {"enabled": True}}}


@pytest.fixture(scope="module")
def binaries() -> dict[str, Path]:
    """postgres_exporter and redis_exporter, built once and cached under ~/.cache/venta by version."""
    done = subprocess.run([str(BUILD), "exporters"], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr
    paths = [Path(line) for line in done.stdout.split()]
    return {path.name: path for path in paths}


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def run_exporter(binary: Path, container: dict[str, Any], env: dict[str, str], args: list[str]) -> Iterator[int]:
    """The exporter with the sidecar's env and args, `{port}` in them replaced by a free loopback port; yields the
    port once the sidecar's readiness path answers there."""
    port = free_port()
    process = subprocess.Popen(
        [str(binary), *(a.format(port=port) for a in args)],
        env={"PATH": os.environ.get("PATH", ""), **{k: v.format(port=port) for k, v in env.items()}},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = container["readinessProbe"]["httpGet"]["path"]
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}{probe}")[0] == 200
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the exporter did not start"
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def resolved(container: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The container's plain env, with secret-backed variables given `values` (what the kubelet would inject)."""
    out = {}
    for name, value in env_of(container).items():
        out[name] = values[name] if isinstance(value, dict) else value
    return out


def postgres_exporter(binary: Path, server_port: int) -> Iterator[int]:
    (container,) = postgres_sidecars(make(ON))
    # the test server trusts local connections; a password as the operator generates them (secrets.token_urlsafe)
    env = resolved(container, {"DATA_SOURCE_PASS": secrets.token_urlsafe(24)})
    assert env["DATA_SOURCE_URI"].startswith("127.0.0.1:5432/")
    env["DATA_SOURCE_URI"] = env["DATA_SOURCE_URI"].replace(":5432/", f":{server_port}/")
    assert container["args"] == ["--web.listen-address=:9187"]
    yield from run_exporter(binary, container, env, ["--web.listen-address=127.0.0.1:{port}"])


def redis_exporter(binary: Path, server_port: int) -> Iterator[int]:
    (container,) = redis_sidecars(make(ON))
    env = resolved(container, {"REDIS_PASSWORD": ""})  # the test server has no password
    assert env["REDIS_ADDR"] == "redis://127.0.0.1:6379"
    env["REDIS_ADDR"] = f"redis://127.0.0.1:{server_port}"
    assert env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] == ":9121"
    env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] = "127.0.0.1:{port}"  # the variable's name is what is tested
    yield from run_exporter(binary, container, env, [])


def sample_names(text: str) -> set[str]:
    """The sample names as Prometheus stores them. Not `exported_names`: prometheus_client's parser adds `_total` to
    a counter exported without it (postgres_exporter's pg_stat_database_xact_commit), which Prometheus does not."""
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def scraped(port: int, until: str | None = None) -> tuple[set[str], str]:
    """One scrape, or (with `until`) scrapes for up to 10 s until the page holds that line: postgres_exporter
    reports `pg_up 0` on its very first scrape, before its connection is open (VentaStoreDown waits 2 minutes)."""
    deadline = time.monotonic() + 10
    while True:
        status, text = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        if until is None or until in text.splitlines() or time.monotonic() > deadline:
            return sample_names(text), text
        time.sleep(0.5)


def wanted(prefix: str) -> dict[str, set[str]]:
    """Per dashboard panel or alert, the names with this prefix it reads."""
    out = {}
    for query in store_queries():
        names = {n for n in query.metric_names if n.startswith(prefix)}
        if names:
            out[query.source] = names
    return out


def test_every_postgres_name_the_dashboard_and_alerts_read_is_exported(
    binaries: dict[str, Path], postgres: Postgres
) -> None:
    reads = wanted("pg_")
    assert reads, "the stores' dashboard and alerts read no pg_ series"
    for port in postgres_exporter(binaries["postgres_exporter"], postgres.port):
        names, text = scraped(port, until="pg_up 1")
        assert "pg_up 1" in text.splitlines()
        missing = {source: n - names for source, n in reads.items() if n - names}
        assert not missing, f"not exported by postgres_exporter: {missing}"


def test_every_redis_name_the_dashboard_and_alerts_read_is_exported(
    binaries: dict[str, Path], redis_server: Redis
) -> None:
    reads = wanted("redis_")
    assert reads, "the stores' dashboard and alerts read no redis_ series"
    for port in redis_exporter(binaries["redis_exporter"], redis_server.port):
        names, text = scraped(port, until="redis_up 1")
        assert "redis_up 1" in text.splitlines()
        missing = {source: n - names for source, n in reads.items() if n - names}
        assert not missing, f"not exported by redis_exporter: {missing}"


def test_an_exporter_without_its_server_reports_it_down(binaries: dict[str, Path]) -> None:
    nothing = free_port()  # nobody listens there
    for port in postgres_exporter(binaries["postgres_exporter"], nothing):
        assert "pg_up 0" in scraped(port)[1].splitlines()
    for port in redis_exporter(binaries["redis_exporter"], nothing):
        assert "redis_up 0" in scraped(port)[1].splitlines()

"""A real Prometheus server (built by build.sh) as a child process on a random port, and its promtool.

Why a real one: the question the observability tests answer is "does Prometheus accept and answer these rules and
queries over what the services really export", which only Prometheus's own parser, engine and rule manager can
settle. Scrapes and rule evaluations run every second, so a test needs seconds of data, not minutes. Everything
goes through the HTTP API (the build has no web UI). Stdlib and httpx only.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.devkit.servers import free_port
from tests.cluster.cluster_tools import ClusterError, build_tools, stop_process


class PrometheusError(RuntimeError):
    pass


def binaries() -> tuple[Path, Path]:
    """(prometheus, promtool): `$VENTA_PROMETHEUS`/`$VENTA_PROMTOOL` if set, else build.sh's (built if missing)."""
    overrides = os.environ.get("VENTA_PROMETHEUS"), os.environ.get("VENTA_PROMTOOL")
    if all(overrides):
        return Path(overrides[0] or ""), Path(overrides[1] or "")
    try:
        tools = build_tools(quiet=True)
    except ClusterError as error:
        raise PrometheusError(f"could not build Prometheus with tests/cluster/build.sh:\n{error}") from error
    if tools.prometheus is None or tools.promtool is None:
        raise PrometheusError("tests/cluster/build.sh did not list PROMETHEUS and PROMTOOL")
    return tools.prometheus, tools.promtool


def selector_names(ast: Any) -> set[str]:
    """Metric names of the vector and matrix selectors in an AST from /api/v1/parse_query."""
    names: set[str] = set()
    if isinstance(ast, dict):
        if ast.get("type") in ("vectorSelector", "matrixSelector"):
            names |= {m["value"] for m in ast.get("matchers", []) if m["name"] == "__name__" and m["type"] == "="}
        for value in ast.values():
            names |= selector_names(value)
    elif isinstance(ast, list):
        for value in ast:
            names |= selector_names(value)
    return names


class PrometheusServer:
    def __init__(
        self,
        binary: Path,
        workdir: Path,
        *,
        targets: Mapping[str, Sequence[str]],
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
    ) -> None:
        self.binary, self.workdir = binary, workdir
        self.targets, self.rule_files, self.interval = targets, rule_files, interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.interval,
                "scrape_timeout": self.interval,
                "evaluation_interval": self.interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
                for job, addresses in self.targets.items()
            ],
        }

    def start(self, timeout_s: float = 60) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait(self._ready, timeout_s, "Prometheus to be ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise PrometheusError(f"prometheus exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc)
        self.proc = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- the HTTP API ---------------------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        """`data` of an API answer; PrometheusError with its error otherwise. Queries are POSTed (they can be long)."""
        if path in ("query", "query_range", "parse_query"):
            answer = self.http.post(f"/api/v1/{path}", data=params)
        else:
            answer = self.http.get(f"/api/v1/{path}", params=params)
        body = answer.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now (a scalar becomes one sample without labels)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def parse(self, expr: str) -> Any:
        return self.api("parse_query", query=expr)

    def rules(self) -> Iterator[dict[str, Any]]:
        for group in self.api("rules")["groups"]:
            yield from group["rules"]

    def wait(self, check: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.25)
        raise PrometheusError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}; log: {self.log}")

    def wait_for_scrapes(self, count: int = 3, timeout_s: float = 60, jobs: Sequence[str] | None = None) -> None:
        """Until each of `jobs` (default: every target) was scraped successfully `count` more times, so that rate()
        and the rules have seen what just happened."""
        wanted = list(jobs if jobs is not None else self.targets)

        def scrapes() -> dict[str, float]:
            ok = self.query("sum by (job) (sum_over_time(up[1h]))")  # up is 1 per successful scrape
            return {r["metric"]["job"]: float(r["value"][1]) for r in ok}

        def done() -> bool:
            now = scrapes()
            return all(now.get(job, 0) >= before.get(job, 0) + count for job in wanted)

        before = scrapes()
        self.wait(done, timeout_s, f"{count} scrapes of {', '.join(wanted)}")

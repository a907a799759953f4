"""Services and peers started as their own processes, as in production, each on the CPUs its role gets.

Every process writes its log to a file of the run's directory; when a benchmark fails, `Processes.report` prints
the tails so the reason is on screen, not in a deleted temporary directory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from bench.placement import Placement
from services.devkit.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / "peers"
DEPLOYED_SAMPLING = 0.1  # the operator's default share of traces recorded (spec.observability.tracing.samplingRatio)


def tracing_described(ratio: float) -> str:
    """How the benchmark's services trace, said in its output (and so in docs/performance.md)."""
    return (
        f"tracing: OpenTelemetry on, {ratio:g} of the traces recorded (parentbased_traceidratio) and exported over "
        "OTLP to a collector stand-in that counts them, as the operator configures the services when tracing is on "
        f"(its default ratio: {DEPLOYED_SAMPLING:g}); metrics on"
    )


def mint_token(identity: str, user: str = "bench_user") -> str:
    """A bearer token for `user` from the local identity provider at `identity` (an hour long)."""
    request = urllib.request.Request(
        f"{identity}/v1/tokens",
        data=json.dumps({"user": user, "ttlSeconds": 3600}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token: str = json.load(response)["token"]
    return token


class Processes:
    def __init__(self, logs: Path, placement: Placement | None = None) -> None:
        self.logs = logs
        self.placement = placement or Placement(None, None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_python(
        self, name: str, args: Sequence[str], env: dict[str, str], *, cpus: Literal["server", "support"] = "support"
    ) -> None:
        """`python args...` in the repository, its output in `<logs>/<name>.log`, on the CPUs of its role."""
        argv = [sys.executable, *args]
        argv = self.placement.on_server_cpus(argv) if cpus == "server" else self.placement.on_support_cpus(argv)
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
            )

    def _check_alive(self, waiting_for: str) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode} while waiting for {waiting_for}")

    def wait_http(self, url: str, timeout_s: float = 90) -> None:
        """Until `url` answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive(url)
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{url} not ready after {timeout_s:.0f}s")

    def wait_port(self, port: int, timeout_s: float = 90) -> None:
        """Until something accepts connections on 127.0.0.1:`port` (for peers, which have no health endpoint)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive(f"port {port}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise SystemExit(f"nothing listening on port {port} after {timeout_s:.0f}s")

    def start_tracing_sink(self, ratio: float) -> dict[str, str]:
        """An OTLP/gRPC receiver that counts and drops spans (`services.devkit.otlp_sink`), on the support CPUs; the
        environment that makes a service trace as the operator deploys it with tracing on: `ratio` of the traces
        recorded, exported there."""
        port = free_port()
        self.start_python("otlp-sink", ["-m", "services.devkit.otlp_sink", "--port", str(port)], {})
        self.wait_port(port)
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": f"{ratio:g}",
        }

    def report(self, lines: int = 30) -> None:
        for name in self.procs:
            tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            if tail:
                print(f"--- {name} (log tail)", *tail, sep="\n", file=sys.stderr)

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs.values()):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

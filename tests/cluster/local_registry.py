"""The distribution registry (built by build.sh) as a child process on a free loopback port: the local registry of
kind's documentation, standing in for it where no container engine runs (the Tilt test pushes to it and the real
node pulls from it). Storage is a temporary directory, removed on stop. Standard library only."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from services.devkit.servers import free_port
from tests.cluster.cluster_tools import ClusterError, stop_process

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalRegistry:
    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.host = f"localhost:{self.port}"  # what images are named after, and what the node is told to trust
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30) -> LocalRegistry:
        self._dir = Path(tempfile.mkdtemp(prefix="venta-registry-"))
        config = self._dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self._dir / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '127.0.0.1:{self.port}'}}\n"
        )
        with (self._dir / "registry.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log_text = (self._dir / "registry.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise ClusterError(f"the registry did not start on {self.host}:\n{log_text}")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        try:
            with _DIRECT.open(f"http://127.0.0.1:{self.port}/v2/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def tags(self, name: str) -> list[str]:
        """The tags of a repository (empty when it has none)."""
        try:
            with _DIRECT.open(f"http://127.0.0.1:{self.port}/v2/{name}/tags/list", timeout=10) as response:
                return list(json.load(response).get("tags") or [])
        except OSError:
            return []

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

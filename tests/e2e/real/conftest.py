"""Fixtures for the tests that need real containers: one real node (tests/cluster/real_node.py) per test session.

Why session scope: a node takes about 8 s to start and is host-wide (one per machine: its bridge, pod subnet and
iptables rules), while tests isolate themselves cheaply with a namespace each. Marked ``realnode``; it needs root
and the packages of tests/cluster/install-packages.sh. See docs/test-cluster.md.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cluster.cluster_tools import ClusterError, ClusterTools, build_tools
from tests.cluster.local_images import build_images
from tests.cluster.real_node import RealNode, missing_prerequisites
from tests.support.platform_e2e import PHASE_REPORTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keeps each test's reports by phase, for fixtures that act on a failure (tests/support/platform_e2e.failed)."""
    report: pytest.TestReport = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


# The project image as two versions of the platform: the e2e installs the first and rolls to the second.
E2E_TAG, E2E_NEXT_TAG = "0.1.0-e2e.1", "0.1.0-e2e.2"


@pytest.fixture(scope="session")
def real_node_tools() -> ClusterTools:
    """The built tools (build.sh runs first; a no-op when cached)."""
    if os.geteuid() != 0:
        pytest.fail(
            "a real node needs root (cgroups, a bridge, iptables rules): run the tests as root, or leave "
            "these out with -m 'not realnode'",
            pytrace=False,
        )
    try:
        tools = build_tools()
    except ClusterError as error:
        pytest.fail(f"could not build the test cluster's tools:\n{error}", pytrace=False)
    if missing := missing_prerequisites(tools):
        pytest.fail("cannot run a real node here; missing: " + "; ".join(missing), pytrace=False)
    return tools


@pytest.fixture(scope="session")
def real_node(real_node_tools: ClusterTools) -> Iterator[RealNode]:
    """A started real node with the testbox image imported; stopped at the end, which must leave nothing behind."""
    assert real_node_tools.testbox_archive, "build.sh builds it with the pause image"
    node = RealNode(tools=real_node_tools, images=[real_node_tools.testbox_archive])
    try:
        node.start()
    except ClusterError as error:
        node.stop()
        pytest.fail(f"the real node did not start:\n{error}", pytrace=False)
    yield node
    node.stop()
    assert node.leftovers() == [], "the real node left things on the host"


@pytest.fixture(scope="session")
def testbox_image(real_node_tools: ClusterTools) -> str:
    """Name of the image whose only program is tests/cluster/go/testbox (imported into the node, never pulled)."""
    return real_node_tools.testbox_image


@pytest.fixture(scope="module")
def namespace(real_node: RealNode) -> Iterator[str]:
    """A fresh namespace for the module's objects, with its default ServiceAccount (needed to create Pods)."""
    name = f"real-{secrets.token_hex(3)}"
    real_node.kubectl("create", "namespace", name)
    real_node.kubectl("wait", "--for=create", f"--namespace={name}", "serviceaccount/default", "--timeout=60s")
    yield name
    real_node.kubectl("delete", "namespace", name, "--wait=false", check=False)


@dataclass(frozen=True)
class VentaImages:
    """The project image under two versions (a rollout goes from one to the other) and the stores' stand-ins, all
    imported into the node: what a test's VentaPlatform and the chart's values point at."""

    repository: str
    tag: str
    next_tag: str
    nats: str
    postgres: str
    redis: str


@pytest.fixture(scope="session")
def venta_images(real_node: RealNode) -> VentaImages:
    """Builds the images (tests/cluster/images/build.sh: seconds when cached, a few minutes cold) and imports them."""
    try:
        built = build_images("--tag", E2E_TAG, "--next-tag", E2E_NEXT_TAG, "all")
    except ClusterError as error:
        pytest.fail(f"could not build the images:\n{error}", pytrace=False)
    keys = ("VENTA", "VENTA_NEXT", "NATS", "POSTGRES", "REDIS")
    real_node.import_images(*(built.archive(key) for key in keys))
    repository, _, tag = built.name("VENTA").rpartition(":")
    assert tag == E2E_TAG and built.name("VENTA_NEXT") == f"{repository}:{E2E_NEXT_TAG}"
    return VentaImages(
        repository, E2E_TAG, E2E_NEXT_TAG, built.name("NATS"), built.name("POSTGRES"), built.name("REDIS")
    )

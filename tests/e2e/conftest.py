"""Fixtures for end-to-end tests: one real Kubernetes control plane (kwokctl, fake nodes) per test session.

Why session scope: starting the control plane takes several seconds and its first build 10-20 minutes (cached
afterwards), while tests isolate themselves cheaply with a namespace each. See docs/test-cluster.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.kwok import ClusterError, Kubectl, KwokCluster, build_tools


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KwokCluster]:
    """A started cluster (``.kubeconfig`` is its path), built first if needed and deleted at the end."""
    try:
        tools = build_tools()
    except ClusterError as error:
        pytest.fail(f"could not build the test cluster's tools:\n{error}", pytrace=False)
    with KwokCluster(nodes=2, tools=tools) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kubectl(kube_cluster: KwokCluster) -> Kubectl:
    """A callable running kubectl with the cluster's kubeconfig; it raises ClusterError on failure if ``check``."""
    return kube_cluster.kubectl

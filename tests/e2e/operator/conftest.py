"""The operator on a real API server: installed by its Helm chart, running with the chart's RBAC and nothing more.

The chart is `helm install`ed once per session (cluster-wide mode). Its Deployment is only simulated by KWOK (no
container runs), so the operator itself runs here as a subprocess, exactly as the chart runs it (`kopf run ...`),
but authenticated with a token of the chart's ServiceAccount: a missing RBAC rule fails these tests as it would in
production. Each test gets a namespace enforcing the `restricted` Pod Security Standard, so a child pod that is not
hardened is refused by the API server and its platform never becomes Ready.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.kwok import Kubectl, KwokCluster
from tests.support.operator_e2e import (
    OperatorProcess,
    Platforms,
    Release,
    install_chart,
    make_namespace,
    service_account_kubeconfig,
)


@pytest.fixture(scope="session")
def operator_release(kube_cluster: KwokCluster, kubectl: Kubectl) -> Release:
    return install_chart(kube_cluster, kubectl)


@pytest.fixture(scope="session")
def operator_kubeconfig(kubectl: Kubectl, operator_release: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return service_account_kubeconfig(kubectl, operator_release, tmp_path_factory.mktemp("operator") / "kubeconfig")


@pytest.fixture(scope="session")
def operator(operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator-log") / "operator.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def namespace(kubectl: Kubectl, operator_release: Release) -> Iterator[str]:
    name = make_namespace(kubectl)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def shared_namespace(kubectl: Kubectl, operator_release: Release) -> Iterator[str]:
    """One namespace for a module whose tests share one (expensive to converge) platform."""
    name = make_namespace(kubectl)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def platforms(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> Platforms:
    return Platforms(kubectl, namespace)

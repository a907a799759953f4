"""The API server's word on `spec.nats.managed.replicas` and `spec.nats.external.streamReplicas`: 1 or 3 servers,
1 to 5 stream copies, defaults of 1, and a server count that cannot change once the platform exists; and a platform
with three NATS servers converging on a real API server, then costing no writes (what the API server echoes back
of the cluster's StatefulSet, headless Service and budget is not mistaken for drift)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.cluster.kwok import Kubectl
from tests.support.operator_e2e import OperatorProcess, Platforms

pytestmark = pytest.mark.cluster


def platform(nats: dict[str, Any], name: str = "nats") -> dict[str, Any]:
    return {
        "apiVersion": "venta.io/v1alpha1",
        "kind": "VentaPlatform",
        "metadata": {"name": name},
        "spec": {"version": "1", "nats": nats},
    }


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any], *, dry_run: bool = True) -> tuple[int, str]:
    args = ["-n", namespace, "apply", "-o", "json", "-f", "-", *(["--dry-run=server"] if dry_run else [])]
    result = kubectl(*args, input=json.dumps(manifest), check=False)
    return result.returncode, result.stderr + result.stdout


@pytest.mark.parametrize(
    ("nats", "expected"),
    [
        ({"managed": {"replicas": 2}}, ["spec.nats.managed.replicas", "Unsupported value: 2", '"1", "3"']),
        ({"managed": {"replicas": 5}}, ["spec.nats.managed.replicas"]),
        ({"managed": {"replicas": 0}}, ["spec.nats.managed.replicas"]),
        ({"managed": {"replicas": "three"}}, ["spec.nats.managed.replicas", "integer"]),
        (
            {"external": {"url": "nats://n.example:4222", "streamReplicas": 6}},
            ["spec.nats.external.streamReplicas", "less than or equal to 5"],
        ),
        (
            {"external": {"url": "nats://n.example:4222", "streamReplicas": 0}},
            ["spec.nats.external.streamReplicas", "greater than or equal to 1"],
        ),
    ],
    ids=["two", "five", "zero", "a-word", "six-copies", "no-copies"],
)
def test_garbage_server_and_copy_counts_are_refused_naming_the_field(
    kubectl: Kubectl, namespace: str, nats: dict[str, Any], expected: list[str]
) -> None:
    code, output = apply(kubectl, namespace, platform(nats))
    assert code != 0, f"{nats} was accepted"
    for text in expected:
        assert text in output, f"{text!r} not in {output}"


def test_one_server_and_one_copy_by_default(kubectl: Kubectl, namespace: str) -> None:
    code, output = apply(kubectl, namespace, platform({"managed": {}}))
    assert code == 0, output
    assert json.loads(output)["spec"]["nats"]["managed"]["replicas"] == 1
    code, output = apply(kubectl, namespace, platform({"external": {"url": "nats://n.example:4222"}}))
    assert code == 0, output
    assert json.loads(output)["spec"]["nats"]["external"]["streamReplicas"] == 1


def test_the_server_count_is_fixed_once_the_platform_exists(kubectl: Kubectl, namespace: str) -> None:
    code, output = apply(kubectl, namespace, platform({"managed": {"replicas": 3}}), dry_run=False)
    assert code == 0, output
    try:
        code, output = apply(kubectl, namespace, platform({"managed": {"replicas": 1}}))
        assert code != 0 and "spec.nats.managed.replicas" in output, output
        assert "cannot change once the platform exists" in output, output
        # the rest of the store can still change
        code, output = apply(kubectl, namespace, platform({"managed": {"replicas": 3, "image": "nats:2.11.1"}}))
        assert code == 0, output
    finally:
        kubectl("-n", namespace, "delete", "vp", "nats", "--wait=false", check=False)


def test_a_three_server_nats_converges_and_then_costs_no_writes(
    platforms: Platforms, operator: OperatorProcess
) -> None:
    platforms.apply(platform({"managed": {"replicas": 3}}, name="trio"))
    vp = platforms.wait_ready("trio", timeout=240)
    nats = vp["status"]["components"]["nats"]
    assert nats["readyReplicas"] == 3, nats
    assert "3/3" in platforms.condition("trio", "NatsReady")["message"]
    sts = platforms.get("statefulset", "trio-nats")
    assert sts is not None and sts["spec"]["podManagementPolicy"] == "Parallel"
    headless = platforms.get("service", "trio-nats-headless")
    assert headless is not None and "cluster" in [p["name"] for p in headless["spec"]["ports"]]
    budget = platforms.get("poddisruptionbudget", "trio-nats")
    assert budget is not None and budget["spec"]["maxUnavailable"] == 1
    config = platforms.get("configmap", "trio-config")
    assert config is not None and config["data"]["VENTA_EVENTS_STREAM_REPLICAS"] == "3"
    time.sleep(2)
    before = operator.writes()
    time.sleep(10)  # at least two drift passes (every 4 s in these tests)
    assert operator.writes() == before

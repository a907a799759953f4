"""A managed NATS of three servers: cluster routes, server names, its budget, its policy, the streams' copies.

A one-server NATS must stay exactly as it was (no cluster flags, no budget, no route port), which is what keeps
existing platforms from rolling their NATS pod when the operator is upgraded.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_plans import EXTERNAL, by_key, full_plan, make
from venta_operator.builders.configmap import settings
from venta_operator.builders.networkpolicy import network_policies
from venta_operator.builders.pdb import pdbs
from venta_operator.builders.service import services
from venta_operator.builders.statefulset import nats_statefulset
from venta_operator.spec import SpecError, parse_spec

CLUSTER = {"nats": {"managed": {"replicas": 3}}}


def nats_container(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    sts = nats_statefulset(make(spec))
    assert sts is not None
    return sts, sts["spec"]["template"]["spec"]["containers"][0]


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_one_server_has_no_cluster_flags() -> None:
    sts, c = nats_container({})
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert c["args"] == ["--jetstream", "--store_dir", "/data", "--port", "4222", "--http_port", "8222"]
    assert [p["name"] for p in c["ports"]] == ["client", "monitor"] and "env" not in c
    assert "affinity" not in sts["spec"]["template"]["spec"] and "startupProbe" not in c
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_three_servers_route_to_every_peer_under_their_pod_names() -> None:
    sts, c = nats_container(CLUSTER)
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel"  # the meta group needs a majority up to elect
    args = c["args"]
    assert "--jetstream" in args and flag(args, "--store_dir") == "/data"
    assert flag(args, "--cluster_name") == "demo-nats"
    assert flag(args, "--cluster") == "nats://0.0.0.0:6222"
    assert flag(args, "--routes").split(",") == [
        f"nats://demo-nats-{i}.demo-nats-headless.shop.svc:6222" for i in range(3)
    ]
    # a unique, stable server name per pod, from the downward API (the kubelet expands $(POD_NAME))
    assert flag(args, "--server_name") == "$(POD_NAME)"
    assert c["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
    ]
    assert {"name": "cluster", "containerPort": 6222, "protocol": "TCP"} in c["ports"]
    # alive while it waits for its peers; started (hence ready) only once its stream copies are current
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz?js-server-only=true"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"  # kube-score: not the same
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz" and c["startupProbe"]["failureThreshold"] >= 60
    term = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "nats"


def test_the_headless_service_publishes_the_route_port_of_pods_not_yet_ready() -> None:
    def nats_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            s["metadata"]["name"]: s["spec"]
            for s in services(make(spec))
            if s["metadata"]["labels"]["app.kubernetes.io/component"] == "nats"
        }

    one, three = nats_services({}), nats_services(CLUSTER)
    assert [p["name"] for p in one["demo-nats-headless"]["ports"]] == ["client", "monitor"]
    headless = three["demo-nats-headless"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {"name": "cluster", "port": 6222, "targetPort": "cluster", "protocol": "TCP"} in headless["ports"]
    # clients keep using the ClusterIP Service, which has no route port
    assert one["demo-nats"] == three["demo-nats"]


def test_a_clustered_nats_has_a_budget_of_one_pod() -> None:
    assert not [b for b in pdbs(make({})) if b["metadata"]["name"] == "demo-nats"]
    budget = next(b for b in pdbs(make(CLUSTER)) if b["metadata"]["name"] == "demo-nats")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "nats"


def test_the_route_port_is_open_only_between_the_nats_servers() -> None:
    def nats_policy(spec: dict[str, Any]) -> dict[str, Any]:
        spec = {**spec, "networkPolicy": {"enabled": True}}
        return next(n for n in network_policies(make(spec)) if n["metadata"]["name"] == "demo-nats")

    one, three = nats_policy({}), nats_policy(CLUSTER)
    assert not [r for r in one["spec"]["ingress"] if {"protocol": "TCP", "port": 6222} in r["ports"]]
    routes = [r for r in three["spec"]["ingress"] if {"protocol": "TCP", "port": 6222} in r["ports"]]
    assert routes == [
        {
            "from": [
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": "venta",
                            "app.kubernetes.io/instance": "demo",
                            "app.kubernetes.io/component": "nats",
                        }
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": 6222}],
        }
    ]


@pytest.mark.parametrize(
    ("spec", "copies"),
    [
        ({}, "1"),
        (CLUSTER, "3"),
        (EXTERNAL, "1"),
        ({**EXTERNAL, "nats": {"external": {"url": "nats://nats.example:4222", "streamReplicas": 5}}}, "5"),
    ],
)
def test_the_streams_get_one_copy_per_server(spec: dict[str, Any], copies: str) -> None:
    assert settings(make(spec))["VENTA_EVENTS_STREAM_REPLICAS"] == copies


def test_the_plan_of_a_cluster_holds_its_statefulset_and_budget() -> None:
    plan = by_key(full_plan(make(CLUSTER)).apply)
    assert plan[("StatefulSet", "demo-nats")]["spec"]["replicas"] == 3
    assert ("PodDisruptionBudget", "demo-nats") in plan


@pytest.mark.parametrize(
    ("nats", "field"),
    [
        ({"managed": {"replicas": 2}}, "spec.nats.managed.replicas"),
        ({"managed": {"replicas": "three"}}, "spec.nats.managed.replicas"),
        ({"external": {"url": "nats://n:4222", "streamReplicas": "x"}}, "spec.nats.external.streamReplicas"),
    ],
)
def test_garbage_replicas_are_a_spec_error(nats: dict[str, Any], field: str) -> None:
    """What the API server refuses (tests/e2e/operator), the operator refuses too if it ever gets it."""
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        parse_spec({"version": "1", "nats": nats})

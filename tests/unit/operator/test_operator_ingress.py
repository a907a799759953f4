"""The public door (`spec.ingress`: Ingress, HTTPRoute, Certificate) and who may talk to whom (NetworkPolicies)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_plans import by_key, full_plan, make
from venta_operator.builders.ingress import (
    CERTIFICATE,
    HTTP_ROUTE,
    LIVE_MAP_ANNOTATIONS,
    edge,
    edge_problems,
    tls_secret_refs,
)
from venta_operator.builders.job import REINDEX
from venta_operator.builders.networkpolicy import CALLERS, network_policies
from venta_operator.components import APP_COMPONENTS, IDENTITY
from venta_operator.endpoints import status_endpoints
from venta_operator.reconciler import Reconciler, referenced_secrets
from venta_operator.spec import SpecError, parse_spec

BOTH = frozenset({HTTP_ROUTE, CERTIFICATE})
ISSUER = {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}


def public(**ingress: Any) -> dict[str, Any]:
    return {"ingress": {"enabled": True, "host": "api.venta.example", **ingress}}


def test_no_ingress_unless_enabled() -> None:
    p = make()
    assert p.spec.ingress.enabled is False
    assert edge(p, BOTH) == [] and edge_problems(p, frozenset()) == []
    assert "public" not in status_endpoints(p)


def test_ingresses_route_the_api_and_the_live_map_on_one_host_over_tls() -> None:
    p = make(public(className="nginx", tls={"secretName": "venta-tls"}, annotations={"team": "maps"}))
    objs = by_key(edge(p, frozenset()))
    assert set(objs) == {("Ingress", "demo-gateway"), ("Ingress", "demo-websocket")}
    api, live = objs[("Ingress", "demo-gateway")], objs[("Ingress", "demo-websocket")]
    for ing in (api, live):
        assert ing["spec"]["ingressClassName"] == "nginx"
        assert ing["spec"]["tls"] == [{"hosts": ["api.venta.example"], "secretName": "venta-tls"}]
        assert ing["metadata"]["annotations"]["team"] == "maps"
    [rule] = api["spec"]["rules"]
    assert rule["host"] == "api.venta.example"
    assert rule["http"]["paths"][0]["path"] == "/"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "demo-gateway", "port": {"number": 5002}}
    [path] = live["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/socket.io" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "demo-websocket", "port": {"number": 5004}}
    # WebSocket-friendly on the live map only: long tunnels, cookie affinity for long-polling
    notes = live["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["haproxy.org/timeout-tunnel"] == "3600s"
    assert not any(k.startswith("nginx.") for k in api["metadata"]["annotations"])
    assert status_endpoints(p)["public"] == "https://api.venta.example"
    assert status_endpoints(p)["liveMap"] == "https://api.venta.example/socket.io"


def test_user_annotations_win_and_plain_http_without_tls() -> None:
    timeout = "nginx.ingress.kubernetes.io/proxy-read-timeout"
    p = make(public(annotations={timeout: "86400"}))
    live = by_key(edge(p, frozenset()))[("Ingress", "demo-websocket")]
    assert live["metadata"]["annotations"][timeout] == "86400"
    assert (
        live["metadata"]["annotations"]["haproxy.org/timeout-tunnel"]
        == LIVE_MAP_ANNOTATIONS["haproxy.org/timeout-tunnel"]
    )
    assert "tls" not in live["spec"] and "ingressClassName" not in live["spec"]  # the cluster's default class
    assert status_endpoints(p)["public"] == "http://api.venta.example"


def test_a_gateway_ref_gets_an_http_route_where_gateway_api_is_served() -> None:
    p = make(public(gatewayRef={"name": "edge", "namespace": "gateways", "sectionName": "https"}))
    [route] = edge(p, frozenset({HTTP_ROUTE}))
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "edge",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    assert route["spec"]["hostnames"] == ["api.venta.example"]
    live, api = route["spec"]["rules"]
    assert live["matches"] == [{"path": {"type": "PathPrefix", "value": "/socket.io"}}]
    assert live["backendRefs"][0]["name"] == "demo-websocket" and live["backendRefs"][0]["port"] == 5004
    assert api["backendRefs"][0]["name"] == "demo-gateway"
    assert edge_problems(p, frozenset({HTTP_ROUTE})) == []
    # without the Gateway API CRDs: nothing built, and the status says why
    assert edge(p, frozenset()) == []
    [problem] = edge_problems(p, frozenset())
    assert "gatewayRef" in problem and "HTTPRoute" in problem


def test_cert_manager_issues_the_certificate_where_it_is_installed() -> None:
    p = make(public(tls={"secretName": "venta-tls", "certManager": ISSUER}))
    cert = by_key(edge(p, BOTH))[("Certificate", "demo-public-tls")]
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["spec"] == {
        "secretName": "venta-tls",
        "dnsNames": ["api.venta.example"],
        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }
    assert tls_secret_refs(p) == []  # cert-manager writes it: its absence at first is not a problem
    kinds = [m["kind"] for m in edge(p, frozenset())]
    assert kinds == ["Ingress", "Ingress"]  # the Ingresses still go out; the certificate cannot
    [problem] = edge_problems(p, frozenset())
    assert "certManager" in problem and "cert-manager.io/v1 Certificate" in problem and "venta-tls" in problem


def test_a_user_provided_certificate_secret_is_checked_like_every_reference() -> None:
    p = make(public(tls={"secretName": "venta-tls"}))
    refs = {(r.name, r.key) for r in referenced_secrets(p)}
    assert {("venta-tls", "tls.crt"), ("venta-tls", "tls.key")} <= refs


async def test_missing_certificate_secret_and_missing_cert_manager_degrade(fake_kube: Any) -> None:
    rec = Reconciler(fake_kube)
    body = fake_kube.body(spec=public(tls={"secretName": "venta-tls"}))
    outcome = await rec.reconcile(body)
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "Secret venta-tls (key tls.crt) not found" in ready["message"]
    assert outcome.status["endpoints"]["public"] == "https://api.venta.example"
    assert ("Ingress", "shop", "demo-websocket") in fake_kube.objects

    body = fake_kube.body(name="cm", spec=public(tls={"secretName": "cm-tls", "certManager": ISSUER}))
    outcome = await Reconciler(fake_kube).reconcile(body)
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert "does not serve cert-manager.io/v1 Certificate" in ready["message"]


async def test_the_certificate_and_route_follow_discovery(fake_kube: Any) -> None:
    fake_kube.served = BOTH
    rec = Reconciler(fake_kube)
    spec = public(gatewayRef={"name": "edge"}, tls={"secretName": "venta-tls", "certManager": ISSUER})
    outcome = await rec.reconcile(fake_kube.body(spec=spec))
    assert ("HTTPRoute", "shop", "demo-public") in fake_kube.objects
    assert ("Certificate", "shop", "demo-public-tls") in fake_kube.objects
    assert not any(k == "Ingress" for k, _, _ in fake_kube.objects)
    assert not any("cert-manager" in c.get("message", "") for c in outcome.status["conditions"])


@pytest.mark.parametrize(
    ("ingress", "message"),
    [
        ({"enabled": True}, "spec.ingress.host"),
        ({"enabled": True, "host": "a.example", "tls": {"certManager": ISSUER}}, "spec.ingress.tls.secretName"),
        ({"enabled": True, "host": "a.example", "className": "nginx", "gatewayRef": {"name": "g"}}, "not both"),
        ({"enabled": True, "host": "a.example", "tls": {"secretName": "s", "certManager": {}}}, "issuerRef"),
        ({"enabled": [1], "host": "a.example"}, "spec.ingress.enabled"),
    ],
)
def test_an_unusable_ingress_is_a_spec_error(ingress: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec({"version": "1", "ingress": ingress})


# -- NetworkPolicies -----------------------------------------------------------------------------------------------


def _rules(policies: dict[tuple[str, str], Any], name: str) -> list[dict[str, Any]]:
    return list(policies[("NetworkPolicy", f"demo-{name}")]["spec"]["ingress"])


def _admitted(rules: list[dict[str, Any]], component: str, port: int) -> bool:
    """Whether a pod of `component` of the same platform may open `port` under these rules."""
    for r in rules:
        if port not in {p["port"] for p in r["ports"]}:
            continue
        if "from" not in r:
            return True
        for peer in r["from"]:
            labels = peer.get("podSelector", {}).get("matchLabels")
            if labels is None or "namespaceSelector" in peer:
                continue
            own = {"app.kubernetes.io/name": "venta", "app.kubernetes.io/instance": "demo"}
            mine = {**own, "app.kubernetes.io/component": component}
            if all(mine.get(k) == v for k, v in labels.items()):
                return True
    return False


def test_network_policies_are_on_by_default_and_admit_only_the_callers() -> None:
    policies = by_key(network_policies(make({"networkPolicy": {"metricsNamespaceLabels": {"name": "monitoring"}}})))
    assert ("NetworkPolicy", "demo-default-deny") in policies
    pods = [c.name for c in APP_COMPONENTS] + [IDENTITY.name, REINDEX, "migrate"]
    for c in [*APP_COMPONENTS, IDENTITY]:
        rules = _rules(policies, c.name)
        for port in c.ports.values():
            for caller in pods:
                expected = c.public or caller in CALLERS[c.name]
                assert _admitted(rules, caller, port) == expected, (caller, c.name, port)
        if not c.public:  # Prometheus, from the labelled namespaces, on the metrics port only
            scrape = [r for r in rules if any("namespaceSelector" in f for f in r.get("from", []))]
            assert scrape == [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
                    "ports": [{"protocol": "TCP", "port": c.http_port}],
                }
            ]
    # the stores: every pod of the platform (services, the migration and re-index Jobs), and nobody else
    for store, port in (("postgres", 5432), ("nats", 4222), ("redis", 6379)):
        rules = _rules(policies, store)
        assert all(_admitted(rules, pod, port) for pod in pods), store
        assert not any(r.get("from") is None for r in rules), store  # never from anywhere


def test_the_callers_table_covers_every_internal_component() -> None:
    internal = {c.name for c in [*APP_COMPONENTS, IDENTITY] if not c.public}
    assert set(CALLERS) == internal
    known = {c.name for c in [*APP_COMPONENTS, IDENTITY]} | {REINDEX}
    assert all(set(callers) <= known for callers in CALLERS.values())


def test_the_full_plan_publishes_the_door_in_the_foundation() -> None:
    p = make(public(tls={"secretName": "venta-tls"}))
    kinds = [m["kind"] for m in full_plan(p).apply]
    assert kinds.count("Ingress") == 2 and "NetworkPolicy" in kinds

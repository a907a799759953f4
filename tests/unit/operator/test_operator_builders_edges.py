"""What a platform needs at its edges in a real cluster: listening addresses, load spread over replicas, sticky
Socket.IO sessions, trusted proxies and a place for uploads. Each of these failed only on a real node before."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_plans import by_key, env_of, full_plan, make
from venta_operator.builders.configmap import UPLOADS_DIR, settings
from venta_operator.builders.pods import SHUTDOWN_DELAY_S
from venta_operator.components import APP_COMPONENTS, GATEWAY, IDENTITY
from venta_operator.spec import SpecError


def deployment(p: Any, component: str) -> dict[str, Any]:
    return by_key(full_plan(p).apply)[("Deployment", f"demo-{component}")]  # type: ignore[no-any-return]


def container(p: Any, component: str) -> dict[str, Any]:
    return deployment(p, component)["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("component", [*APP_COMPONENTS, IDENTITY], ids=lambda c: c.key)
def test_every_service_listens_on_the_pod_address_and_leaves_gracefully(component: Any) -> None:
    c = container(make(), component.name)
    env = env_of(c)
    assert env["VENTA_HOST"] == "0.0.0.0"  # identity's own default is loopback
    assert env["VENTA_SHUTDOWN_DELAY_S"] == str(SHUTDOWN_DELAY_S)  # serves, not ready, while endpoints update
    grace = deployment(make(), component.name)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > SHUTDOWN_DELAY_S + 10  # the delay, then the service's own drain (VENTA_SHUTDOWN_GRACE_S, 10 s)


@pytest.mark.parametrize(("timeout", "grace"), [(5, "10"), (0.5, "10"), (12, "13"), (300, "301")])
def test_a_stopping_service_outlasts_every_peer_call_it_started(timeout: float, grace: str) -> None:
    """A server stopping cancels what is still running after its grace; with a grace longer than any call's deadline
    the caller has always given up first, so a CANCELLED call is one the server never started (and is retried)."""
    p = make({"resilience": {"grpcTimeoutSeconds": timeout}})
    assert settings(p)["VENTA_SHUTDOWN_GRACE_S"] == grace
    for component in [*APP_COMPONENTS, IDENTITY]:
        pod = deployment(p, component.name)["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= SHUTDOWN_DELAY_S + float(grace) + 5


def test_grpc_peers_are_reached_through_headless_services_of_ready_pods() -> None:
    objects = by_key(full_plan(make()).apply)
    data = settings(make())
    for c in APP_COMPONENTS:
        headless = objects.get(("Service", f"demo-{c.name}-headless"))
        if c.grpc_port is None:
            assert headless is None, c.key
            continue
        assert headless["spec"]["clusterIP"] == "None"
        assert "publishNotReadyAddresses" not in headless["spec"]  # false: never a call to a pod that is not ready
        assert headless["spec"]["ports"] == [
            {"name": "grpc", "port": c.grpc_port, "targetPort": "grpc", "protocol": "TCP"}
        ]
        assert data[f"VENTA_{c.key.upper()}_ADDR"] == f"dns:///demo-{c.name}-headless.shop.svc:{c.grpc_port}"
        assert objects[("Service", f"demo-{c.name}")]["spec"].get("clusterIP") != "None"  # grpcurl & co keep theirs


def test_only_the_socketio_service_is_sticky() -> None:
    objects = by_key(full_plan(make()).apply)
    websocket = objects[("Service", "demo-websocket")]["spec"]
    assert websocket["sessionAffinity"] == "ClientIP"
    assert websocket["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= 3600
    for (kind, name), obj in objects.items():
        if kind == "Service" and name != "demo-websocket":
            assert "sessionAffinity" not in obj["spec"], name


def test_trusted_proxies_reach_the_gateway_only_when_set() -> None:
    assert "VENTA_FORWARDED_ALLOW_IPS" not in settings(make())  # by default no forwarded header is believed
    p = make({"network": {"trustedProxies": ["10.0.0.0/8", "192.168.1.7"]}})
    assert settings(p)["VENTA_FORWARDED_ALLOW_IPS"] == "10.0.0.0/8,192.168.1.7"


def test_uploads_default_to_scratch_space_and_an_in_cluster_url() -> None:
    p = make()
    data = settings(p)
    assert data["VENTA_UPLOAD_DIR"] == UPLOADS_DIR and data["VENTA_PUBLIC_URL"] == "http://demo-gateway.shop.svc:5002"
    pod = deployment(p, GATEWAY.name)["spec"]["template"]["spec"]
    assert {"name": "uploads", "emptyDir": {"sizeLimit": "512Mi"}} in pod["volumes"]
    assert {"name": "uploads", "mountPath": UPLOADS_DIR} in pod["containers"][0]["volumeMounts"]
    for other in ("users", "websocket", "search-sync"):  # nobody else gets a writable directory
        assert all(v["name"] != "uploads" for v in deployment(p, other)["spec"]["template"]["spec"]["volumes"])


def test_uploads_on_a_claim_with_a_public_url() -> None:
    p = make({"uploads": {"existingClaim": "venta-uploads", "publicBaseUrl": "https://api.venta.example"}})
    assert settings(p)["VENTA_PUBLIC_URL"] == "https://api.venta.example"
    pod = deployment(p, GATEWAY.name)["spec"]["template"]["spec"]
    assert {"name": "uploads", "persistentVolumeClaim": {"claimName": "venta-uploads"}} in pod["volumes"]


def test_uploads_to_cloudinary_take_the_url_from_a_secret() -> None:
    ref = {"name": "cloudinary", "key": "url"}
    p = make({"uploads": {"cloudinary": {"urlSecretRef": ref, "folder": "shop/images"}}})
    data = settings(p)
    assert "VENTA_UPLOAD_DIR" not in data and data["VENTA_CLOUDINARY_FOLDER"] == "shop/images"
    gateway = container(p, GATEWAY.name)
    assert env_of(gateway)["VENTA_CLOUDINARY_URL"] == {"secretKeyRef": ref}
    assert all(m["name"] != "uploads" for m in gateway["volumeMounts"])
    assert "VENTA_CLOUDINARY_URL" not in env_of(container(p, "users"))


def test_uploads_cannot_go_to_both() -> None:
    with pytest.raises(SpecError, match="uploads"):
        make({"uploads": {"cloudinary": {"urlSecretRef": {"name": "c", "key": "u"}}, "existingClaim": "c"}})

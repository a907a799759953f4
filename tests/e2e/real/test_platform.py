"""The whole platform on a real node, installed the way the README says: the operator as a real pod from the
project image (its RBAC really used), the documented example applied, every pod Running and Ready.

Then the platform is used and abused through its public doors only (the Services' ClusterIPs: identity, gateway,
Socket.IO gateway): a token, a vendor created, read and found; a vendor moving on the live map over WebSocket and
over long-polling; calls spread over both vendor-service replicas; an image uploaded to a claim every gateway
replica serves; pods of the vendor service, NATS and PostgreSQL deleted in turn under a request loop, with every
acknowledged write still there afterwards; a version rollout under a request loop with no failed request; the scale
subresource; and deleting the platform removes what its volume policy says.

The tests of this module run in order and share one platform (it takes minutes to converge on two cores).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.real_node import RealNode
from tests.support.edge_tls import HOST, SECRET, TlsEdge
from tests.support.operator_e2e import wait_for
from tests.support.platform_e2e import (
    FOLLOWED,
    Installer,
    Platform,
    PodLogs,
    RequestLoop,
    chart_values_for,
    error_lines,
    example_for,
    failed,
    pod_ready,
)
from tests.support.socket_clients import SocketClient
from tests.support.vendor_changes import VendorChanges, jetstream_streams

pytestmark = [pytest.mark.realnode, pytest.mark.slow, pytest.mark.timeout(1800)]

NAMESPACE = "venta"
GATEWAY, WEBSOCKET, IDENTITY = 5002, 5004, 5010
COMPONENTS = ("users", "location", "vendors", "gateway", "websocket", "search-sync", "notifications", "identity")


@dataclass
class Installed:
    platform: Platform
    installer: Installer
    images: Any
    ready_after_s: float
    edge: TlsEdge

    @property
    def gateway(self) -> str:
        return self.platform.url("gateway", GATEWAY)

    async def token(self, user: str) -> str:
        """Minted with the admin token the operator generated: in a cluster the issuer refuses to mint without it."""
        return await self.platform.mint(user)


@pytest.fixture(scope="module")
def installed(real_node: RealNode, venta_images: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    example = tmp_path_factory.mktemp("platform") / "platform.yaml"
    # the public door: spec.ingress names a certificate Secret, made (with the proxy's Service) once the namespace is
    edge = TlsEdge(real_node, NAMESPACE, tmp_path_factory.mktemp("tls"))
    example_for(venta_images, example, ingress=edge.ingress_spec())
    # PostgreSQL claims 5Gi by default, each of the three NATS servers 1Gi, the uploads 1Gi; nothing provisions
    # volumes on this node
    real_node.control_plane.create_persistent_volumes(7, capacity="5Gi", prefix="venta")
    installer = Installer(real_node, chart_values_for(venta_images), example, on_namespace=edge.prepare)
    platform = Platform(real_node, NAMESPACE)
    began = time.monotonic()
    try:
        installer.run()
        platform.wait_ready(timeout=900)
        yield Installed(platform, installer, venta_images, round(time.monotonic() - began, 1), edge)
    except BaseException:
        print(platform.pods_report())
        operator_log = real_node.kubectl(
            "-n", "venta-system", "logs", "deploy/venta-operator", "--tail=200", check=False
        )
        print(operator_log.stdout)
        raise
    finally:
        logs = platform.save_logs(tmp_path_factory.mktemp("platform-logs"))
        operator_log = real_node.kubectl("-n", "venta-system", "logs", "deploy/venta-operator", check=False)
        (logs / "operator.log").write_text(operator_log.stdout)
        print(f"platform logs: {logs}")
        real_node.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        installer.helm("uninstall", "venta-operator", "--namespace", "venta-system", "--wait")


@pytest.fixture(autouse=True)
def logs_of_a_failure(
    request: pytest.FixtureRequest, installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A failed test's post-mortem: the log of every pod that ran during it (those it deleted too), saved."""
    logs = tmp_path_factory.mktemp("logs")
    with PodLogs(installed.platform, logs):
        yield
    if failed(request):
        installed.platform.save_logs(logs)
        errors = error_lines(logs, FOLLOWED)[-40:]
        print(f"logs after {request.node.name}: {logs}; their last lines naming an error:", *errors, sep="\n  ")


def test_install_reaches_ready_with_real_pods(installed: Installed) -> None:
    platform = installed.platform
    print(f"apply -> Ready: {installed.ready_after_s}s ({installed.installer.timings})")
    operator = platform.node.kubectl("-n", "venta-system", "get", "pods", "-o", "json")
    operator_pods = json.loads(operator.stdout)["items"]
    assert [p["status"]["phase"] for p in operator_pods] == ["Running"] and pod_ready(operator_pods[0])
    assert operator_pods[0]["spec"]["containers"][0]["image"].endswith(f":{installed.images.tag}")

    pods = platform.pods()
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert all(pod_ready(p) for p in running), platform.pods_report()
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in running}
    assert set(COMPONENTS) | {"nats", "postgres", "redis"} <= components, components
    assert len([p for p in running if p["metadata"]["labels"]["app.kubernetes.io/component"] == "vendors"]) == 2
    jobs = platform.get("jobs")["items"]
    migration = [j for j in jobs if j["metadata"]["name"].startswith("venta-migrate-")]
    assert migration and migration[0]["status"].get("succeeded") == 1
    for pod in pods:
        restarts = sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))
        assert restarts == 0, f"{pod['metadata']['name']} restarted {restarts} times\n{platform.pods_report()}"
    status = platform.resource()["status"]
    assert status["version"] == installed.images.tag


async def test_a_vendor_is_created_read_and_found(installed: Installed) -> None:
    token = await installed.token("alice")
    async with httpx.AsyncClient(
        base_url=installed.gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:
        created = await api.post("/v1/vendors", json={"name": "Tacos Real Node", "description": "al pastor"})
        assert created.status_code == 201, created.text
        vendor_id = created.json()["id"]
        read = await api.get(f"/v1/vendors/{vendor_id}")
        assert read.status_code == 200 and read.json()["name"] == "Tacos Real Node"

        async def found() -> bool:
            hits = (await api.get("/v1/vendors/search", params={"q": "tacos real"})).json()
            return any(hit["id"] == vendor_id for hit in hits["hits"])

        deadline = time.monotonic() + 30
        while not await found():
            assert time.monotonic() < deadline, "the vendor never became searchable"
            await asyncio.sleep(0.5)
        # in a cluster the issuer mints and rotates only for its admin token (generated by the operator); its key is
        # the operator's Secret: read-only in the pod, so rotation is refused, clearly
        issuer = installed.platform.url("identity", IDENTITY)
        admin = {"Authorization": f"Bearer {installed.platform.identity_admin_token()}"}
        async with httpx.AsyncClient(timeout=10) as plain:
            anyone = await plain.post(f"{issuer}/v1/tokens", json={"user": "mallory"})
            rotated = await plain.post(f"{issuer}/v1/keys/rotate", headers=admin)
        assert anyone.status_code == 401 and anyone.json()["error"]["code"] == "ADMIN_TOKEN_INVALID", anyone.text
        assert rotated.status_code == 409 and rotated.json()["error"]["code"] == "KEYS_READ_ONLY", rotated.text
        garbage = await api.post("/v1/vendors", json={"name": 7})
        assert garbage.status_code == 400 and garbage.json()["error"]["type"] == "VALIDATION"


async def test_a_fan_is_notified_when_a_favourite_vendor_opens(installed: Installed) -> None:
    """The operator's notifications component, through the gateway, fed by the vendor service's events."""
    owner, fan = await installed.token("notified-owner"), await installed.token("notified-fan")
    async with httpx.AsyncClient(base_url=installed.gateway, timeout=10) as api:
        as_owner, as_fan = {"Authorization": f"Bearer {owner}"}, {"Authorization": f"Bearer {fan}"}
        created = await api.post("/v1/vendors", json={"name": "Churros Real Node"}, headers=as_owner)
        assert created.status_code == 201, created.text
        vendor_id = created.json()["id"]
        added = await api.put(f"/v1/users/me/favourites/{vendor_id}", headers=as_fan)
        assert added.status_code == 200, added.text
        opened = await api.put(f"/v1/vendors/{vendor_id}/open", json={"open": True}, headers=as_owner)
        assert opened.status_code == 200, opened.text

        async def kinds() -> list[str]:
            page = (await api.get("/v1/notifications", headers=as_fan)).json()
            return [n["kind"] for n in page["notifications"] if n["vendorId"] == vendor_id]

        deadline = time.monotonic() + 30
        while await kinds() != ["VENDOR_OPENED"]:
            assert time.monotonic() < deadline, "the fan was never notified"
            await asyncio.sleep(0.5)
        assert (await api.get("/v1/notifications/unread-count", headers=as_fan)).json() == {"unread": 1}
        first = (await api.get("/v1/notifications", headers=as_owner)).json()["notifications"]
        assert [n["kind"] for n in first] == ["FIRST_FAVOURITE"]
        garbage = await api.get("/v1/notifications", params={"cursor": "garbage"}, headers=as_fan)
        assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "INVALID_CURSOR", garbage.text


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_vendor_moves_on_the_live_map(installed: Installed, transport: str) -> None:
    owner, watcher = await installed.token(f"owner-{transport}"), await installed.token(f"watcher-{transport}")
    async with httpx.AsyncClient(base_url=installed.gateway, timeout=10) as api:
        created = await api.post(
            "/v1/vendors", json={"name": f"Live {transport}"}, headers={"Authorization": f"Bearer {owner}"}
        )
        assert created.status_code == 201, created.text
    vendor_id = created.json()["id"]
    url = installed.platform.url("websocket", WEBSOCKET)
    lat, long = (10.5, 20.5) if transport == "websocket" else (-10.5, -20.5)
    vendor, user = (
        SocketClient(url, "/vendor", transports=[transport]),
        SocketClient(url, "/user", transports=[transport]),
    )
    await vendor.connect(auth={"token": owner})
    await user.connect(auth={"token": watcher})
    try:
        assert vendor.sio.transport() == user.sio.transport() == transport
        moved = await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        assert moved["ok"] is True, moved
        await user.emit(
            "updateUserLocation",
            {
                "swLocation": {"lat": lat - 0.1, "long": long - 0.1},
                "neLocation": {"lat": lat + 0.1, "long": long + 0.1},
            },
        )
        assert [c["id"] for c in await user.next("vendor_channels")] == [vendor_id]
        for step in range(1, 4):
            await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + step / 1000, "long": long})
            sync = await user.next("vendor_sync")
            assert sync["id"] == vendor_id and abs(sync["location"]["lat"] - (lat + step / 1000)) < 1e-9, sync
    finally:
        await vendor.close()
        await user.close()


async def test_the_public_door_serves_https_and_wss_with_the_platforms_certificate(installed: Installed) -> None:
    """TLS on the gateway's ingress path: terminated in front of the gateway and websocket Services with the Secret
    spec.ingress.tls.secretName names, routed as the operator's Ingresses say (no ingress controller needed:
    tests/support/edge_tls.py), and checked with real clients: a vendor read over HTTPS, a live-map update over
    wss://, and clients that do not trust the CA refused."""
    platform, edge = installed.platform, installed.edge
    status = platform.resource()["status"]
    assert status["endpoints"]["public"] == f"https://{HOST}"
    ingresses = {i["metadata"]["name"]: i["spec"] for i in platform.get("ingresses")["items"]}
    assert set(ingresses) == {"venta-gateway", "venta-websocket"}
    assert all(spec["tls"] == [{"hosts": [HOST], "secretName": SECRET}] for spec in ingresses.values())
    assert ingresses["venta-websocket"]["rules"][0]["http"]["paths"][0]["path"] == "/socket.io"
    await asyncio.to_thread(edge.deploy_proxy, platform.node.tools.testbox_image)

    owner, watcher = await installed.token("tls-owner"), await installed.token("tls-watcher")
    trust = edge.trusting()
    async with httpx.AsyncClient(base_url=edge.url, verify=trust, timeout=10) as api:
        created = await api.post(
            "/v1/vendors", json={"name": "Tacos over TLS"}, headers={"Authorization": f"Bearer {owner}"}
        )
        assert created.status_code == 201, created.text
        vendor_id = created.json()["id"]
        read = await api.get(f"/v1/vendors/{vendor_id}", headers={"Authorization": f"Bearer {watcher}"})
        assert read.status_code == 200 and read.json()["name"] == "Tacos over TLS", read.text
    async with httpx.AsyncClient(timeout=10) as untrusting:  # the system's CAs only
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.get(f"{edge.url}/health")

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) for _ in range(2)]
    vendor = SocketClient(edge.url, "/vendor", transports=["websocket"], http_session=sessions[0])
    user = SocketClient(edge.url, "/user", transports=["websocket"], http_session=sessions[1])
    try:
        await vendor.connect(auth={"token": owner})
        await user.connect(auth={"token": watcher})
        assert vendor.sio.transport() == user.sio.transport() == "websocket"
        moved = await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": 30.5, "long": 40.5})
        assert moved["ok"] is True, moved
        box = {"swLocation": {"lat": 30.4, "long": 40.4}, "neLocation": {"lat": 30.6, "long": 40.6}}
        await user.emit("updateUserLocation", box)
        assert [c["id"] for c in await user.next("vendor_channels")] == [vendor_id]
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": 30.501, "long": 40.5})
        sync = await user.next("vendor_sync")
        assert sync["id"] == vendor_id and abs(sync["location"]["lat"] - 30.501) < 1e-9, sync
    finally:
        await vendor.close()
        await user.close()
        for session in sessions:
            await session.close()
    stranger = SocketClient(edge.url, "/user", transports=["websocket"])  # a client without the CA
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect(auth={"token": watcher})
    await stranger.close()


def served_calls(platform: Platform, pod: dict[str, Any], method: str) -> float:
    """Calls of `method` one vendor-service pod answered, from its own /metrics (the pod's IP, from the host)."""
    ip = pod["status"]["podIP"]
    text = httpx.get(f"http://{ip}:9005/metrics", timeout=5).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "venta_grpc_server_requests_total" and s.labels.get("method") == method
    )


async def test_gateway_calls_spread_over_both_vendor_replicas(installed: Installed) -> None:
    token = await installed.token("spreader")
    async with httpx.AsyncClient(
        base_url=installed.gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:
        vendor_id = (await api.post("/v1/vendors", json={"name": "Spread"})).json()["id"]
        pods = [p for p in installed.platform.pods("vendors") if pod_ready(p)]
        before = [served_calls(installed.platform, p, "UpdateVendor") for p in pods]
        # A gateway that resolved the headless Service before the second replica was ready learns of it when the
        # vendor pods' max connection age (120 s) sends GOAWAY and it resolves again: the promise is "within it".
        started, n = time.monotonic(), 0
        while True:
            for _ in range(40):
                answer = await api.patch(f"/v1/vendors/{vendor_id}", json={"description": f"edit {n}"})
                assert answer.status_code == 200, answer.text
                n += 1
            after = [served_calls(installed.platform, p, "UpdateVendor") for p in pods]
            gained = [a - b for a, b in zip(after, before, strict=True)]
            if min(gained) >= 5 or time.monotonic() - started > 150:
                break
            await asyncio.sleep(5)
    print(f"calls per vendor replica {gained} after {time.monotonic() - started:.0f} s")
    assert len(pods) == 2 and min(gained) >= 5, gained


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


async def test_uploads_land_on_a_claim_every_gateway_replica_serves(installed: Installed) -> None:
    """Without Cloudinary, images are kept by the platform: on the claim an SRE names (here one of this node's
    volumes, shared by both gateway replicas), under URLs from the public base URL they set."""
    platform = installed.platform
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "venta-uploads"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    platform.kubectl("apply", "-f", "-", input=json.dumps(claim))
    platform.kubectl(
        "patch",
        "vp",
        "venta",
        "--type=merge",
        "-p",
        json.dumps(
            {"spec": {"uploads": {"existingClaim": "venta-uploads", "publicBaseUrl": "https://api.venta.test"}}}
        ),
    )

    def rolled() -> bool:
        pods = [p for p in platform.pods("gateway") if p["status"].get("phase") == "Running"]
        return (
            platform.ready()
            and len(pods) == 2
            and all(pod_ready(p) for p in pods)
            and all(
                any(
                    v.get("persistentVolumeClaim", {}).get("claimName") == "venta-uploads" for v in p["spec"]["volumes"]
                )
                for p in pods
            )
        )

    await asyncio.to_thread(wait_for, rolled, timeout=300, interval=2, what=platform.pods_report)
    token = await installed.token("uploader")
    async with httpx.AsyncClient(
        base_url=installed.gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:
        uploaded = await api.post("/v1/uploads/image", files={"file": ("dot.png", PNG, "image/png")})
        assert uploaded.status_code == 201, uploaded.text
        url = uploaded.json()["url"]
        assert url.startswith("https://api.venta.test/v1/uploads/files/") and url.endswith(".png")
        path = url.removeprefix("https://api.venta.test")
        for _ in range(12):  # new connections: kube-proxy spreads them over both replicas
            async with httpx.AsyncClient(base_url=installed.gateway, timeout=10) as fresh:
                served = await fresh.get(path)
            assert served.status_code == 200 and served.content == PNG, served.text
        refused = await api.post("/v1/uploads/image", files={"file": ("x.png", b"#!/bin/sh\nrm -rf /", "image/png")})
        assert refused.status_code == 415 and refused.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def acknowledged_everywhere(installed: Installed, token: str, loop: RequestLoop) -> None:
    """Every acknowledged vendor is readable, and found by its name (its event reached the search index)."""
    async with httpx.AsyncClient(
        base_url=installed.gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:
        for vendor_id in loop.outcomes.acknowledged:
            answer = await api.get(f"/v1/vendors/{vendor_id}")
            assert answer.status_code == 200, f"acknowledged vendor {vendor_id} lost: {answer.text}"
        missing = list(loop.outcomes.acknowledged)
        deadline = time.monotonic() + 120
        while missing and time.monotonic() < deadline:
            for vendor_id in list(missing):
                hits = (await api.get("/v1/vendors/search", params={"q": loop.outcomes.names[vendor_id]})).json()
                if any(hit["id"] == vendor_id for hit in hits["hits"]):
                    missing.remove(vendor_id)
            if missing:
                await asyncio.sleep(2)
        assert not missing, f"{len(missing)} acknowledged vendors never became searchable: {missing[:5]}"


async def test_a_nats_server_lost_under_1000_vendor_changes_loses_nothing(installed: Installed) -> None:
    """Three NATS servers, the events stream in three copies: its leader's pod is deleted while 1,000 vendor changes
    flow; afterwards every vendor is found in the index under its latest name, and nothing was dead-lettered."""
    platform = installed.platform
    await asyncio.to_thread(wait_for, platform.all_pods_ready, timeout=300, what=platform.pods_report)
    servers = platform.pods("nats")
    assert len(servers) == 3, platform.pods_report()
    streams = await asyncio.to_thread(jetstream_streams, servers[0])
    for name in ("EVENTS", "DEADLETTER"):
        assert streams[name]["config"]["num_replicas"] == 3, streams[name]
    leader = streams["EVENTS"]["cluster"]["leader"]
    dead_before = streams["DEADLETTER"]["state"]["messages"]
    token = await installed.token("nats-cluster")
    async with httpx.AsyncClient(
        base_url=installed.gateway, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:
        changes = VendorChanges(api, total=1000)
        run = asyncio.create_task(changes.run())
        await changes.reached(300, run)
        began = time.monotonic()
        await asyncio.to_thread(platform.kubectl, "delete", "pod", leader, "--wait=false")
        done_at_loss = changes.done
        await run
        print(
            f"deleted {leader} (the EVENTS leader) after {done_at_loss} changes; {changes.done} made in all, "
            f"{changes.done - done_at_loss} in the {time.monotonic() - began:.0f} s after; retries "
            f"{dict(changes.retries)}",
            *changes.retry_samples,
            sep="\n  ",
        )
        await asyncio.to_thread(wait_for, platform.all_pods_ready, timeout=300, what=platform.pods_report)

        # the table: every vendor reads back under its latest name
        for vendor_id, name in changes.latest.items():
            read = await api.get(f"/v1/vendors/{vendor_id}")
            assert read.status_code == 200 and read.json()["name"] == name, read.text
        # the index: every vendor is found under its latest name (not an earlier one)
        stale = dict(changes.latest)
        deadline = time.monotonic() + 180
        while stale and time.monotonic() < deadline:
            for vendor_id, name in list(stale.items()):
                hits = (await api.get("/v1/vendors/search", params={"q": name})).json()["hits"]
                if any(hit["id"] == vendor_id and hit["name"] == name for hit in hits):
                    del stale[vendor_id]
            if stale:
                await asyncio.sleep(2)
        assert not stale, f"{len(stale)} vendors not found under their latest name, e.g. {list(stale.items())[:3]}"

    servers = platform.pods("nats")
    streams = {p["metadata"]["name"]: await asyncio.to_thread(jetstream_streams, p) for p in servers}
    for server, held in streams.items():
        assert held["DEADLETTER"]["state"]["messages"] == dead_before, f"{server}: {held['DEADLETTER']['state']}"
        assert held["EVENTS"]["config"]["num_replicas"] == 3
    events = streams[servers[0]["metadata"]["name"]]["EVENTS"]
    assert len(events["cluster"].get("replicas") or []) == 2, events["cluster"]  # the lost copy is back
    print(f"EVENTS leader now {events['cluster']['leader']}, {events['state']['messages']} events")


async def test_pods_deleted_under_load_lose_no_acknowledged_write(installed: Installed) -> None:
    platform = installed.platform
    token = await installed.token("chaos")
    async with RequestLoop(installed.gateway, token, prefix="fault") as loop:
        for component, name in (("vendors", None), ("nats", "venta-nats-0"), ("postgres", "venta-postgres-0")):
            await asyncio.sleep(5)
            victim = name or next(p["metadata"]["name"] for p in platform.pods(component))
            before = len(loop.outcomes.acknowledged)
            await asyncio.to_thread(platform.kubectl, "delete", "pod", victim, "--wait=false")
            await asyncio.sleep(3)
            await asyncio.to_thread(platform.wait_ready, 600)
            await asyncio.to_thread(wait_for, platform.all_pods_ready, timeout=300, what=platform.pods_report)
            # and it serves again (the gateway's breaker may still be open for up to its reset timeout, 30 s)
            await loop.acknowledge(10, within_s=120, what=f"writes after {component} came back")
            print(f"{component}: {len(loop.outcomes.acknowledged) - before} writes acknowledged around its restart")
    outcomes = loop.outcomes
    print(
        f"acknowledged {len(outcomes.acknowledged)}, failures {dict(outcomes.failures)}:",
        *outcomes.failure_samples,
        sep="\n  ",
    )
    assert len(outcomes.acknowledged) >= 50
    await acknowledged_everywhere(installed, token, loop)


async def test_rollout_to_a_new_version_fails_no_request(installed: Installed) -> None:
    platform, images = installed.platform, installed.images
    token = await installed.token("rollout")
    async with RequestLoop(installed.gateway, token, prefix="rollout") as loop:
        await asyncio.sleep(3)
        await asyncio.to_thread(
            platform.kubectl,
            "patch",
            "vp",
            "venta",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"version": images.next_tag}}),
        )

        def rolled() -> bool:
            status = platform.resource().get("status") or {}
            return (
                status.get("version") == images.next_tag
                and platform.ready()
                and all(
                    p["spec"]["containers"][0]["image"].endswith(f":{images.next_tag}") and pod_ready(p)
                    for p in platform.pods()
                    if p["metadata"]["labels"]["app.kubernetes.io/component"] in COMPONENTS
                )
            )

        await asyncio.to_thread(wait_for, rolled, timeout=900, interval=2, what=platform.pods_report)
        await asyncio.sleep(3)
    outcomes = loop.outcomes
    print(
        f"rollout: {len(outcomes.acknowledged)} writes, {outcomes.reads} reads, failed {outcomes.failed_total}:",
        *outcomes.failure_samples,
        sep="\n  ",
    )
    assert len(outcomes.acknowledged) >= 50
    assert outcomes.failed_total == 0


def test_scale_through_the_scale_subresource(installed: Installed) -> None:
    platform = installed.platform
    platform.kubectl("scale", "vp", "venta", "--replicas=3")
    wait_for(
        lambda: len([p for p in platform.pods("gateway") if pod_ready(p)]) == 3 and platform.ready(),
        timeout=300,
        what=platform.pods_report,
    )
    scale = platform.get("vp", "venta", "--subresource=scale")
    assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3


def test_deleting_the_platform_removes_everything_its_volume_policy_says(installed: Installed) -> None:
    platform = installed.platform
    before = {c["metadata"]["name"] for c in platform.get("pvc")["items"]}
    assert {"data-venta-nats-0", "data-venta-postgres-0", "venta-uploads"} <= before, before
    platform.kubectl("delete", "vp", "venta", "--wait=true", timeout=300)

    def gone() -> bool:
        left = platform.kubectl(
            "get", "all,pvc,secrets,configmaps,serviceaccounts", "-l", "app.kubernetes.io/instance=venta", "-o", "name"
        ).stdout.split()
        return not left

    wait_for(gone, timeout=300, interval=2, what=lambda: platform.kubectl("get", "all,pvc", "-o", "name").stdout)
    # deleteWithPlatform (the default) lets the StatefulSets take their claims along; the uploads claim is the
    # user's (they named it in the spec), and stays
    claims = {c["metadata"]["name"] for c in platform.get("pvc")["items"]}
    assert claims == {"venta-uploads"}, claims

"""The event bus on a three-server JetStream cluster, as the operator runs it with `nats.managed.replicas: 3`.

Real nats-server processes on this machine, routed to each other with the same flags the operator gives its pods
(server name, cluster name, routes to every member). The streams are made with three copies (the kit's
`events_stream_replicas`), a stream made with one copy is raised to three, and with the leader of the events stream
killed mid-way through 1,000 vendor changes, publishes and consumers carry on: the index equals the vendor table,
and the dead letters hold exactly the poison published on purpose.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from services.devkit.servers import Nats, Postgres, free_port
from tests.support.event_brokers import JetStreamBroker
from tests.support.search_pipeline import ChangeDriver, converged, publish_poison
from tests.support.search_providers import postgres_search

SERVERS = 3
CHANGES = 1000


class ClusterBroker(JetStreamBroker):
    """The cluster as the tests' broker: services connect to the first server (and learn the others from it, as
    pods learn them behind the Service); what the test reads behind the bus's back comes from a live member."""

    def __init__(self, members: list[Nats]) -> None:
        super().__init__(members[0])
        self.members = members

    def settings(self) -> dict[str, Any]:
        return {"events_provider": "jetstream", "nats_url": self.members[0].url, "events_stream_replicas": SERVERS}

    def read_from(self, member: Nats) -> None:
        self.server = member


def healthy(member: Nats) -> bool:
    """The full health check: meta group joined and every stream copy current (the operator's startup probe)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{member.monitor_port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_until(predicate: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterBroker]:
    cluster_ports = [free_port() for _ in range(SERVERS)]
    members = [
        Nats(tmp_path / f"nats-{i}", server_name=f"nats-{i}", cluster_port=port, routes=cluster_ports)
        for i, port in enumerate(cluster_ports)
    ]
    try:
        for member in members:
            member.start()
        wait_until(lambda: all(healthy(m) for m in members), "the JetStream meta group to form")
        yield ClusterBroker(members)
    finally:
        for member in members:
            member.kill()


async def until(predicate: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def stream_info(url: str, stream: str, timeout_s: float = 30.0) -> Any:
    """The stream's info, asked again while nobody answers: a stream that lost its leader answers once it elected
    another (seconds; longer on a loaded machine), and until then the request times out."""
    deadline = time.monotonic() + timeout_s
    nc = await nats.connect(url)
    try:
        while True:
            try:
                return await nc.jetstream().stream_info(stream)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)  # "no responders" comes back at once: do not spin
    finally:
        await nc.close()


async def test_streams_get_three_copies_and_a_single_copy_stream_is_raised(cluster: ClusterBroker) -> None:
    url = cluster.members[0].url
    single = await cluster.bus(events_stream_replicas=1)
    await single.close()
    assert (await stream_info(url, "EVENTS")).config.num_replicas == 1
    tripled = await cluster.bus()  # a service started with the operator's setting for three servers
    await tripled.close()
    for stream in ("EVENTS", "DEADLETTER"):
        assert (await stream_info(url, stream)).config.num_replicas == SERVERS, stream
        # the new copies are made by the cluster itself, after a leader election
        deadline = time.monotonic() + 30
        while True:
            cluster_info = (await stream_info(url, stream)).cluster
            replicas = cluster_info.replicas or []
            if cluster_info.leader and len(replicas) == SERVERS - 1 and all(r.current for r in replicas):
                break
            assert time.monotonic() < deadline, f"{stream} never got {SERVERS} current copies: {cluster_info}"
            await asyncio.sleep(0.2)


async def test_losing_the_stream_leader_mid_stream_loses_nothing(
    cluster: ClusterBroker, postgres: Postgres, vendors_on: Any, start_search_sync: Any
) -> None:
    vendors = await vendors_on(**cluster.settings())
    provider = postgres_search(postgres)
    await start_search_sync(provider, **cluster.settings())
    poisoned = await publish_poison(cluster)
    leader_name = (await stream_info(cluster.members[0].url, "EVENTS")).cluster.leader
    leader = next(m for m in cluster.members if m.server_name == leader_name)
    driver = ChangeDriver(f"127.0.0.1:{vendors.grpc_port}")
    run = asyncio.create_task(driver.run(CHANGES))
    await until(lambda: driver.done >= CHANGES // 3)
    await asyncio.to_thread(leader.kill)
    cluster.read_from(next(m for m in cluster.members if m is not leader))
    done_at_kill = driver.done
    await run
    assert driver.done - done_at_kill >= CHANGES // 2, "changes stopped when a server was lost"
    # two servers of three: the stream elected a new leader and keeps every event; consumers consumed them all
    await converged(provider=provider, vendors_url=vendors.database_url, broker=cluster, dead_letters=poisoned)
    info = await stream_info(cluster.server.url, "EVENTS")
    assert info.cluster is not None and info.cluster.leader != leader_name, json.dumps(info.as_dict(), default=str)
    await provider.close()

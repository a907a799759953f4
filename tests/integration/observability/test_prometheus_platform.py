"""A real Prometheus over the whole local platform: every dashboard panel and alert of the platform works on what the
services really export.

`venta up` (LocalPlatform, every service its own process, on a random port offset) is scraped every second by a
Prometheus that also evaluates observability/rules/venta-platform.yaml every second. A short workload
(observability_workload) moves every family, then takes the location service down. Then:

- every registry service was a healthy target (new services are covered as soon as they are registered);
- every platform dashboard query returns data, every alert expression evaluates, every rule is healthy;
- the alerts see the faults: the dead letter fires VentaEventsDeadLettered (it has no `for`), the open breaker and
  the failed readiness check are what VentaBreakerOpen and VentaDependencyDown would fire on after their `for`;
- the metric contract: every metric name a dashboard or alert reads is in some service's /metrics (collected
  before the fault), and the name reader agrees with Prometheus's own parser on every query.

The operator's dashboard and alerts are checked the same way against a real operator in tests/e2e/operator.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.cli.registry import SERVICES
from services.cli.up import LocalPlatform
from tests.cluster.prometheus_process import PrometheusServer, binaries, selector_names
from tests.support.observability_assets import PLATFORM_RULES, Query, exported_names, missing_names, platform_queries
from tests.support.observability_workload import Workload

pytestmark = pytest.mark.slow
DOWN = "location"  # the service the workload takes down at the end (a breaker of the gateway points at it)


@dataclass
class Observed:
    prometheus: PrometheusServer
    exported: dict[str, str]
    """/metrics pages after the workload: every service's before the fault, and the running ones' after it."""
    statuses_while_down: list[int]


@pytest.fixture(scope="module")
async def observed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Observed]:
    prometheus_binary, _ = binaries()
    workdir = tmp_path_factory.mktemp("observability")
    offset = random.randrange(1000, 16000, 10)  # every port stays below the ephemeral range (32768+)
    platform = LocalPlatform(data_dir=workdir / "platform", port_offset=offset)
    prometheus = PrometheusServer(
        prometheus_binary,
        workdir / "prometheus",
        rule_files=[PLATFORM_RULES],
        targets={name: [f"127.0.0.1:{entry.http_port + offset}"] for name, entry in SERVICES.items()},
    )
    workload = Workload(platform)
    try:
        try:
            await asyncio.to_thread(platform.start)
        except SystemExit as exc:  # `venta up`'s way of saying a service did not come up
            pytest.fail(f"venta up did not start: {exc}", pytrace=False)
        prometheus.start()
        await asyncio.to_thread(prometheus.wait_for_scrapes, 2)
        await workload.run()
        await asyncio.to_thread(prometheus.wait_for_scrapes, 3)
        exported = await scrape(workload, SERVICES)
        statuses = await workload.take_down(DOWN)
        running = [name for name in SERVICES if name != DOWN]
        exported |= {f"{name} (after the fault)": text for name, text in (await scrape(workload, running)).items()}
        await asyncio.to_thread(prometheus.wait_for_scrapes, 3, 60, running)
        yield Observed(prometheus, exported, statuses)
    finally:
        await workload.close()
        prometheus.stop()
        await asyncio.to_thread(platform.stop)


async def scrape(workload: Workload, names: Iterable[str]) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        return {name: (await client.get(f"{workload.url(name)}/metrics")).text for name in names}


def test_every_service_was_scraped(observed: Observed) -> None:
    up = {r["metric"]["job"]: float(r["value"][1]) for r in observed.prometheus.query("max_over_time(up[10m])")}
    assert up == {name: 1.0 for name in SERVICES}
    down = observed.prometheus.query(f'up{{job="{DOWN}"}}')
    assert [float(r["value"][1]) for r in down] == [0.0]


def test_every_dashboard_query_returns_data(observed: Observed) -> None:
    empty, failed = [], []
    for query in platform_queries():
        if query.source.startswith(PLATFORM_RULES.name):
            continue
        try:
            if not observed.prometheus.query(query.concrete()):
                empty.append(query.source)
        except Exception as exc:
            failed.append(f"{query.source}: {exc}")
    assert not failed, "queries Prometheus refused:\n" + "\n".join(failed)
    assert not empty, "panels without data after the workload:\n" + "\n".join(empty)


def test_every_alert_evaluates_and_every_rule_is_healthy(observed: Observed) -> None:
    alerts = [q for q in platform_queries() if q.source.startswith(PLATFORM_RULES.name)]
    for query in alerts:
        observed.prometheus.query(query.expr)  # raises on an error
    rules = list(observed.prometheus.rules())
    assert {rule["name"] for rule in rules} == {q.source.split(": ")[1] for q in alerts}
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not unhealthy


def test_alerts_see_the_faults(observed: Observed) -> None:
    assert 502 in observed.statuses_while_down, observed.statuses_while_down  # CIRCUIT_OPEN after the failures
    prometheus, breaker = observed.prometheus, f"gateway->{DOWN}"
    firing = prometheus.query('ALERTS{alertname="VentaEventsDeadLettered",alertstate="firing"}')
    assert {r["metric"]["consumer"] for r in firing} >= {"search-sync", "gateway-vendor-cache"}
    condition = {q.source.split(": ")[1]: q.expr for q in platform_queries() if q.source.startswith("venta-plat")}
    assert {r["metric"]["breaker"] for r in prometheus.query(condition["VentaBreakerOpen"])} == {breaker}
    down = prometheus.query(condition["VentaDependencyDown"])
    assert {(r["metric"]["service"], r["metric"]["dependency"]) for r in down} == {("gateway", DOWN)}
    pending = prometheus.query('ALERTS{alertname=~"VentaBreakerOpen|VentaDependencyDown",alertstate="pending"}')
    assert {r["metric"]["alertname"] for r in pending} == {"VentaBreakerOpen", "VentaDependencyDown"}


def test_every_metric_read_is_exported(observed: Observed) -> None:
    exported = set().union(*(exported_names(text) for text in observed.exported.values()))
    missing = missing_names(platform_queries(), exported)
    assert not missing, "read by a dashboard or alert, exported by no service:\n" + "\n".join(
        f"{source}: {sorted(names)}" for source, names in sorted(missing.items())
    )


def test_the_contract_check_catches_a_name_nothing_exports(observed: Observed) -> None:
    exported = set().union(*(exported_names(text) for text in observed.exported.values()))
    bad = [
        Query("typo", 'sum(rate(venta_http_server_requestz_total{service=~"$service"}[$__rate_interval]))'),
        Query("renamed", "max by (breaker) (venta_breaker_status) == 2 and on() venta_dependency_up"),
        Query("fine", "sum by (le) (rate(venta_http_server_request_duration_seconds_bucket[5m]))"),
    ]
    assert missing_names(bad, exported) == {
        "typo": {"venta_http_server_requestz_total"},
        "renamed": {"venta_breaker_status"},
    }


def test_metric_names_agree_with_prometheus_parser(observed: Observed) -> None:
    for query in platform_queries():
        assert query.metric_names == selector_names(observed.prometheus.parse(query.concrete())), query.source


def test_workload_reached_every_service(observed: Observed) -> None:
    """Each service handled real work (not just probes): the workload is not silently partial."""

    def worked(text: str) -> bool:
        return any(
            sample.value > 0 and sample.name in WORK and not sample.labels.get("route", "").startswith("/health")
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )

    idle = [name for name in SERVICES if not worked(observed.exported[name])]
    assert not idle


WORK = {
    "venta_grpc_server_requests_total",
    "venta_http_server_requests_total",
    "venta_events_consumed_total",
    "venta_websocket_connects_total",
}

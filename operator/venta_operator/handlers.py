"""Kopf wiring: one loop per platform that runs a pass, writes its status, and waits for the next reason to look.

Thin on purpose (STYLE point 3): every decision is in `reconciler`, `plan` and `status`. Each VentaPlatform gets a
Kopf daemon (`run`): a pass, then a wait that ends when the platform is edited or one of its Deployments,
StatefulSets or Jobs changes readiness (`wakeups`, fed by Kopf's watch events), or else after a back-off while it
converges (1, 2, 4 s ... up to `retry_delay_s`) or the drift period once it is ready. One loop per object serialises
its passes; a semaphore bounds how many run at once (`workers`). A waiting platform holds nothing, and the loop
patches only the status (no retry bookkeeping on the object), so a converging platform costs the API server its
pass's reads and writes and nothing else.
Run with: `kopf run -m venta_operator.handlers --standalone (--namespace NS | --all-namespaces)`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from venta_operator import API_GROUP, API_VERSION, PLURAL
from venta_operator.config import OperatorConfig, load_alert_rules, load_dashboards
from venta_operator.kube import ApiServer, KubeError, login
from venta_operator.logs import request_scope, use_platform_format
from venta_operator.metrics import MANAGED_PLATFORMS, RECONCILE_DURATION, RECONCILE_FAILURES, RECONCILES, serve
from venta_operator.naming import LABEL_MANAGED_BY, MANAGED_BY
from venta_operator.reconciler import Outcome, Reconciler
from venta_operator.spec import SpecError
from venta_operator.status import failure_status, status_patch
from venta_operator.wakeups import Wakeups

CONFIG = OperatorConfig()
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
# The children whose readiness the status reads (wakeups.WATCHED_KINDS), as Kopf's (group, version, plural).
CHILDREN = {
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "Job": ("batch", "v1", "jobs"),
}
STORAGE_PREFIX = "operator.venta.io"  # not venta.io: Kopf hides its prefix's annotations, and the pause one is ours
WAKEUPS = Wakeups()
# Kopf keeps a task per watched object, with that object's last event, until no event came for this long (5 s by
# default): while 50 platforms converge, that is most of their ~700 children at once, each with its managedFields.
# The wake-up handlers are quick, so a short wait costs only a task more per burst of events (bench/README.md).
QUEUE_IDLE_S = 0.5
_platforms: set[str] = set()
log = logging.getLogger("venta_operator")
use_platform_format()  # `kopf run` configured logging before importing this module


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.scanning.disabled = True  # the CRD is installed before the operator: no cluster-wide CRD watch (RBAC)
    settings.queueing.idle_timeout = QUEUE_IDLE_S
    memo.kube = await ApiServer.connect()
    memo.passes = asyncio.Semaphore(CONFIG.workers)
    dashboards = load_dashboards(CONFIG.dashboards_dir)
    # The stores' groups are kept apart by name (monitoring.STORE_GROUP_PREFIX): only platforms with exporters get them.
    alert_rules = load_alert_rules(CONFIG.alert_rules_file) + load_alert_rules(CONFIG.store_alert_rules_file)
    memo.reconciler = Reconciler(memo.kube, dashboards=dashboards, alert_rules=alert_rules)
    if CONFIG.metrics_port:
        serve(CONFIG.metrics_port)
    logger.info(
        "venta operator ready: %d workers, drift pass every %ss, %d dashboards, %d alert rules",
        CONFIG.workers,
        CONFIG.drift_interval_s,
        len(dashboards),
        sum(len(group["rules"]) for group in alert_rules),
    )


@kopf.on.login()
def credentials(**_: Any) -> kopf.ConnectionInfo:
    """Kopf's watches use the credentials the operator's own client uses (`kube.login`)."""
    return login()


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    if "kube" in memo:
        await memo.kube.close()


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def run(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, uid: str, **_: Any) -> None:
    """The platform's loop, from the operator's start (or the platform's creation) until its deletion.

    Kopf cancels it when the platform is deleted or the operator stops: a pass is level-based, so one cut short is
    simply done again by the next operator.
    """
    loop = PlatformLoop(uid)
    trigger = "start"
    while not stopped:
        async with memo.passes:
            delay = await loop.step(trigger, body, memo)
        trigger = await WAKEUPS.wait(uid, delay) or ("timer" if loop.ready_or_paused else "retry")


# The watch handlers are coroutines, not functions: Kopf runs a plain function in a thread, and an asyncio.Event
# must be set on the event loop's thread.
@kopf.on.event(*RESOURCE)
async def platform_changed(event: kopf.RawEvent, uid: str | None, **_: Any) -> None:
    track(str(event.get("type")), uid)
    WAKEUPS.platform_event(str(event.get("type")), dict(event.get("object") or {}))


def _child_changed(kind: str) -> Any:
    async def changed(event: kopf.RawEvent, **_: Any) -> None:
        WAKEUPS.child_event(str(event.get("type")), kind, dict(event.get("object") or {}))

    changed.__name__ = f"{kind.lower()}_changed"
    return changed


for _kind, (_group, _version, _plural) in CHILDREN.items():
    kopf.on.event(_group, _version, _plural, labels={LABEL_MANAGED_BY: MANAGED_BY})(_child_changed(_kind))


def track(event_type: str, uid: str | None) -> None:
    if uid is None:
        return
    if event_type == "DELETED":
        _platforms.discard(uid)
    else:
        _platforms.add(uid)
    MANAGED_PLATFORMS.set(len(_platforms))


@dataclass
class PlatformLoop:
    """The state one platform's loop keeps between passes: its retry count and the status it last wrote.

    The status is the loop's own: only the operator writes it, and the watch event of its last patch may not have
    reached the live body yet when the next pass starts (a pass reading the older status would patch it again).
    """

    uid: str
    retry: int = 0
    status: dict[str, Any] | None = None
    ready_or_paused: bool = False

    async def step(self, trigger: str, body: kopf.Body, memo: kopf.Memo) -> float:
        """One pass, its status written; returns how long to wait before the next one unless woken earlier."""
        raw: dict[str, Any] = {
            "metadata": dict(body.metadata),
            "spec": dict(body.spec),
            "status": dict(self.status if self.status is not None else body.status),
        }
        delay, patch = await _pass(trigger, body, raw, memo, self.retry)
        if patch:
            try:
                written = await memo.kube.patch_status(str(body.metadata.namespace), str(body.metadata.name), patch)
            except KubeError as exc:
                RECONCILE_FAILURES.labels(reason="ApiError").inc()
                log.warning("writing the status failed: %s", exc.message, extra={"k8s_ref": _ref(body)})
                self.status = None  # unknown now: the next pass compares with the live body's
                return CONFIG.error_delay_s
            self.status = dict((written or {}).get("status") or {})
        if delay is None:  # ready or paused: the drift period
            self.retry, self.ready_or_paused = 0, True
            return CONFIG.drift_interval_s
        self.retry, self.ready_or_paused = self.retry + 1, False
        return delay


async def _pass(
    trigger: str, body: kopf.Body, raw: dict[str, Any], memo: kopf.Memo, retry: int = 0
) -> tuple[float | None, dict[str, Any]]:
    """One measured, logged pass: (seconds until the next one, None once ready or paused; the status patch)."""
    with request_scope():
        try:
            outcome = await _measured_pass(trigger, raw, memo)
        except SpecError as exc:
            return CONFIG.drift_interval_s, _fail(body, raw, "InvalidSpec", str(exc))
        except KubeError as exc:
            return CONFIG.error_delay_s, _fail(body, raw, "ApiError", exc.message)
        log.info(
            "%s pass: stage %s, %d writes, %s",
            trigger,
            outcome.stage,
            len(outcome.writes),
            "ready" if outcome.ready else outcome.message or "not ready",
            extra={
                "k8s_ref": _ref(body),
                "trigger": trigger,
                "stage": outcome.stage,
                "writes": len(outcome.writes),
                "ready": outcome.ready,
            },
        )
    for kind, reason, message in outcome.events:
        kopf.event(body, type=kind, reason=reason, message=message)
    patch = status_patch(outcome.status, raw["status"])
    if outcome.ready or outcome.paused:
        return None, patch
    delay = CONFIG.error_delay_s if outcome.errors else min(CONFIG.retry_delay_s, 2.0 ** min(retry, 8))
    return delay, patch


async def _measured_pass(trigger: str, raw: dict[str, Any], memo: kopf.Memo) -> Outcome:
    RECONCILES.labels(trigger=trigger).inc()
    with RECONCILE_DURATION.labels(trigger=trigger).time():
        outcome: Outcome = await memo.reconciler.reconcile(raw)
    if outcome.errors:
        RECONCILE_FAILURES.labels(reason="apply_failed").inc()
    return outcome


def _ref(body: kopf.Body) -> Any:
    return kopf.build_object_reference(body)


def _fail(body: kopf.Body, raw: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    RECONCILE_FAILURES.labels(reason=reason).inc()
    log.warning("pass failed (%s): %s", reason, message, extra={"k8s_ref": _ref(body), "reason": reason})
    kopf.event(body, type="Warning", reason=reason, message=message[:1024])
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    generation = int(raw["metadata"].get("generation", 1))
    return status_patch(failure_status(raw["status"], generation, now, reason, message), raw["status"])

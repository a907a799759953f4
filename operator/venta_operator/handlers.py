"""Kopf wiring: which events start a reconcile pass, how its outcome becomes a retry, a status patch and metrics.

Thin on purpose (STYLE point 3): every decision is in `reconciler`, `plan` and `status`. A pass is triggered by a
change to the object (create, update, resume after a restart) and by a periodic timer that corrects drift; both run
the same level-based pass, serialised per object by a lock so a timer tick never races a change.
Run with: `kopf run -m venta_operator.handlers --standalone (--namespace NS | --all-namespaces)`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from venta_operator import API_GROUP, API_VERSION, PLURAL
from venta_operator.config import OperatorConfig, load_alert_rules, load_dashboards
from venta_operator.kube import ApiServer, KubeError
from venta_operator.logs import request_scope, use_platform_format
from venta_operator.metrics import MANAGED_PLATFORMS, RECONCILE_DURATION, RECONCILE_FAILURES, RECONCILES, serve
from venta_operator.reconciler import Outcome, Reconciler
from venta_operator.spec import SpecError
from venta_operator.status import failure_status, status_patch

CONFIG = OperatorConfig()
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
STORAGE_PREFIX = "operator.venta.io"  # not venta.io: Kopf hides its prefix's annotations, and the pause one is ours
_platforms: set[str] = set()
log = logging.getLogger("venta_operator")
use_platform_format()  # `kopf run` configured logging before importing this module


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    settings.queueing.worker_limit = CONFIG.workers
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.scanning.disabled = True  # the CRD is installed before the operator: no cluster-wide CRD watch (RBAC)
    memo.kube = await ApiServer.connect()
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


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    if "kube" in memo:
        await memo.kube.close()


@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE)
@kopf.on.create(*RESOURCE)
async def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, reason: str, retry: int, **_: Any) -> None:
    await on_change(str(reason), body, patch, memo, retry)


@kopf.timer(*RESOURCE, interval=CONFIG.drift_interval_s, initial_delay=CONFIG.drift_interval_s)
async def correct_drift(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    await on_timer(body, patch, memo)


@kopf.on.event(*RESOURCE)
def count(event: kopf.RawEvent, uid: str | None, **_: Any) -> None:
    track(str(event.get("type")), uid)


async def on_change(trigger: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int = 0) -> None:
    """A change (or a restart): reconcile, and have Kopf retry until the platform is ready.

    Retries back off 1, 2, 4 s ... up to the configured delay: the first stages (a StatefulSet, a Job) usually
    finish within seconds, and a platform that takes longer should not cost a pass per second.
    """
    outcome = await _pass(trigger, body, patch, memo)
    if not outcome.ready and not outcome.paused:
        delay = CONFIG.error_delay_s if outcome.errors else min(CONFIG.retry_delay_s, 2.0 ** min(retry, 8))
        raise kopf.TemporaryError(f"not ready yet: {outcome.message}", delay=delay)


async def on_timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    """The drift pass: same reconcile; failures are already in status and events, the next tick retries."""
    try:
        await _pass("timer", body, patch, memo)
    except (kopf.PermanentError, kopf.TemporaryError):
        pass


def track(event_type: str, uid: str | None) -> None:
    if uid is None:
        return
    if event_type == "DELETED":
        _platforms.discard(uid)
    else:
        _platforms.add(uid)
    MANAGED_PLATFORMS.set(len(_platforms))


async def _pass(trigger: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> Outcome:
    """One locked, measured, logged pass; its status goes into Kopf's patch, its errors become Kopf's retry policy."""
    lock: asyncio.Lock = memo.setdefault("lock", asyncio.Lock())
    async with lock:
        with request_scope():
            outcome = await _measured_pass(trigger, body, patch, memo)
            log.info(
                "%s pass: stage %s, %d writes, %s",
                trigger,
                outcome.stage,
                len(outcome.writes),
                "ready" if outcome.ready else outcome.message or "not ready",
                extra={
                    "k8s_ref": kopf.build_object_reference(body),
                    "trigger": trigger,
                    "stage": outcome.stage,
                    "writes": len(outcome.writes),
                    "ready": outcome.ready,
                },
            )
    return outcome


async def _measured_pass(trigger: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> Outcome:
    raw: dict[str, Any] = {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}
    RECONCILES.labels(trigger=trigger).inc()
    with RECONCILE_DURATION.labels(trigger=trigger).time():
        try:
            outcome: Outcome = await memo.reconciler.reconcile(raw)
        except SpecError as exc:
            _fail(body, patch, raw, "InvalidSpec", str(exc))
            raise kopf.PermanentError(str(exc)) from exc
        except KubeError as exc:
            _fail(body, patch, raw, "ApiError", exc.message)
            raise kopf.TemporaryError(exc.message, delay=CONFIG.error_delay_s) from exc
    if outcome.errors:
        RECONCILE_FAILURES.labels(reason="apply_failed").inc()
    for key, value in status_patch(outcome.status, raw["status"]).items():
        patch.status[key] = value
    for kind, reason, message in outcome.events:
        kopf.event(body, type=kind, reason=reason, message=message)
    return outcome


def _fail(body: kopf.Body, patch: kopf.Patch, raw: dict[str, Any], reason: str, message: str) -> None:
    RECONCILE_FAILURES.labels(reason=reason).inc()
    log.warning(
        "pass failed (%s): %s", reason, message, extra={"k8s_ref": kopf.build_object_reference(body), "reason": reason}
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    generation = int(raw["metadata"].get("generation", 1))
    for key, value in status_patch(
        failure_status(raw["status"], generation, now, reason, message), raw["status"]
    ).items():
        patch.status[key] = value
    kopf.event(body, type="Warning", reason=reason, message=message[:1024])

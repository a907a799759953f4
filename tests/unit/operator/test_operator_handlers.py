"""The Kopf wiring stays thin: a platform's loop runs a pass, patches only the status that changed, and picks its next
wait (back-off while converging, the drift period once ready); watch events end that wait early."""

from __future__ import annotations

import asyncio
import copy
import inspect
from typing import Any

import kopf
import pytest

from tests.support.operator_plans import FakeKube
from venta_operator import handlers
from venta_operator.kube import KubeError
from venta_operator.metrics import MANAGED_PLATFORMS
from venta_operator.reconciler import Reconciler
from venta_operator.wakeups import CHILD, UPDATE, WATCHED_KINDS, Wakeups


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(kopf, "event", lambda body, *, type, reason, message: events.append((type, reason)))
    return events


def memo_for(fake: Any) -> kopf.Memo:
    memo = kopf.Memo()
    memo.kube = fake
    memo.reconciler = Reconciler(fake, new_password=lambda: "pw")
    return memo


def status_of(fake: FakeKube, raw: dict[str, Any]) -> dict[str, Any]:
    return fake.statuses[(raw["metadata"]["namespace"], raw["metadata"]["name"])]


async def test_not_ready_backs_off_with_the_status_patched(fake_kube: FakeKube, posted: list[Any]) -> None:
    raw = fake_kube.body()
    loop, memo = handlers.PlatformLoop("uid-1"), memo_for(fake_kube)
    assert await loop.step("start", kopf.Body(raw), memo) == 1.0  # the first retry is quick
    assert await loop.step("retry", kopf.Body(raw), memo) == 2.0
    loop.retry = 10
    assert await loop.step("retry", kopf.Body(raw), memo) == handlers.CONFIG.retry_delay_s
    status = status_of(fake_kube, raw)
    assert status["observedGeneration"] == 1
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Progressing", "Degraded"}
    assert ("Normal", "Applied") in posted and not loop.ready_or_paused


async def test_bad_spec_is_reported_and_waits_for_an_edit(fake_kube: FakeKube, posted: list[Any]) -> None:
    raw = fake_kube.body(spec={"postgres": {}})
    loop = handlers.PlatformLoop("uid-1")
    assert await loop.step("update", kopf.Body(raw), memo_for(fake_kube)) == handlers.CONFIG.drift_interval_s
    ready = next(c for c in status_of(fake_kube, raw)["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and "spec.postgres" in ready["message"]
    assert ("Warning", "InvalidSpec") in posted
    assert fake_kube.requests["patch"] == 1 and fake_kube.writes() == 1  # the status, nothing else


async def test_a_converged_platform_is_left_alone(fake_kube: FakeKube, posted: list[Any]) -> None:
    """Once ready, a pass patches nothing and posts nothing, even though the live body (the watch) still shows the
    status from before the loop's own last patch: the loop compares with what it wrote."""
    memo, loop = memo_for(fake_kube), handlers.PlatformLoop("uid-1")
    stale = fake_kube.body()
    for _ in range(8):
        await loop.step("retry", kopf.Body(copy.deepcopy(stale)), memo)
        fake_kube.settle()
    assert loop.ready_or_paused and loop.retry == 0
    posted.clear()
    fake_kube.requests.clear()
    assert await loop.step("timer", kopf.Body(stale), memo) == handlers.CONFIG.drift_interval_s
    assert not posted and fake_kube.writes() == 0


async def test_pause_writes_only_the_status(fake_kube: FakeKube, posted: list[Any]) -> None:
    raw = fake_kube.body(annotations={"venta.io/pause-reconciliation": "true"})
    loop = handlers.PlatformLoop("uid-1")
    assert await loop.step("start", kopf.Body(raw), memo_for(fake_kube)) == handlers.CONFIG.drift_interval_s
    assert status_of(fake_kube, raw)["paused"] is True and fake_kube.writes() == 1


async def test_a_refused_status_write_is_retried_after_the_error_delay(
    fake_kube: FakeKube, posted: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        raise KubeError(0, "API server unreachable")

    monkeypatch.setattr(fake_kube, "patch_status", refuse)
    loop = handlers.PlatformLoop("uid-1", status={"stale": True})
    assert await loop.step("start", kopf.Body(fake_kube.body()), memo_for(fake_kube)) == handlers.CONFIG.error_delay_s
    assert loop.status is None  # what the API server holds is unknown: the next pass reads the live body's


def test_platforms_are_counted_until_deleted() -> None:
    handlers.track("ADDED", "a")
    handlers.track("MODIFIED", "b")
    handlers.track("DELETED", "a")
    assert MANAGED_PLATFORMS._value.get() == 1
    handlers.track("DELETED", "b")
    assert MANAGED_PLATFORMS._value.get() == 0


# -- wake-ups -------------------------------------------------------------------------------------------------------


def platform(generation: int = 1, status: dict[str, Any] | None = None, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": "p1", "generation": generation, "annotations": annotations},
        "status": status or {},
    }


def deployment(ready: int, *, owner: str | None = "p1", generation: int = 1) -> dict[str, Any]:
    refs = [{"kind": "VentaPlatform", "uid": owner, "controller": True}] if owner else []
    return {
        "metadata": {"name": "p-users", "uid": "d1", "generation": generation, "ownerReferences": refs},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": generation,
            "replicas": 2,
            "readyReplicas": ready,
            "updatedReplicas": 2,
            "availableReplicas": ready,
        },
    }


async def woken(w: Wakeups) -> str | None:
    return await w.wait("p1", 0.01)


async def test_a_childs_readiness_change_wakes_its_platform_once() -> None:
    w = Wakeups()
    w.platform_event("ADDED", platform())
    w.child_event("ADDED", "Deployment", deployment(0))
    assert await woken(w) == CHILD
    w.child_event("MODIFIED", "Deployment", deployment(0))  # bookkeeping only (same verdict)
    assert await woken(w) is None
    w.child_event("MODIFIED", "Deployment", deployment(1))
    w.child_event("MODIFIED", "Deployment", deployment(2))
    assert await woken(w) == CHILD  # two changes while busy: one more pass, not two
    assert await woken(w) is None
    w.child_event("DELETED", "Deployment", deployment(2))
    assert await woken(w) == CHILD


async def test_only_an_edit_of_the_platform_wakes_it_not_its_status() -> None:
    w = Wakeups()
    w.platform_event("ADDED", platform())
    w.platform_event("MODIFIED", platform(status={"phase": "Ready"}))  # the operator's own status patch
    assert await woken(w) is None
    w.child_event("MODIFIED", "Deployment", deployment(1))
    w.platform_event("MODIFIED", platform(generation=2))
    assert await woken(w) == UPDATE  # an edit outranks a child as the pass's trigger
    w.platform_event("MODIFIED", platform(generation=2, **{"venta.io/pause-reconciliation": "true"}))
    assert await woken(w) == UPDATE


async def test_children_of_unknown_or_deleted_platforms_wake_nothing() -> None:
    w = Wakeups()
    w.child_event("ADDED", "Deployment", deployment(1, owner=None))
    w.child_event("ADDED", "Deployment", deployment(1))  # its platform not seen yet: its first pass reads all
    assert await woken(w) is None
    w.platform_event("ADDED", platform())
    w.platform_event("DELETED", platform())
    w.child_event("MODIFIED", "Deployment", deployment(2))
    assert await woken(w) is None and not w._reasons and not w._platforms


@pytest.mark.parametrize(
    "child",
    [
        {},
        {"metadata": None},
        {"metadata": {"ownerReferences": [{"kind": "VentaPlatform", "uid": "p1", "controller": True}]}, "status": 7},
        {"metadata": {"ownerReferences": "garbage"}},
    ],
)
async def test_malformed_child_events_do_not_break_the_watch(child: dict[str, Any]) -> None:
    w = Wakeups()
    w.platform_event("ADDED", platform())
    w.child_event("MODIFIED", "Job", child)  # must not raise: Kopf would log it and carry on, but wake nothing useful
    await asyncio.sleep(0)


def test_watch_handlers_run_on_the_event_loop() -> None:
    """Kopf runs a plain function in a thread, where setting the loop's asyncio.Event is not safe."""
    watching = kopf.get_default_registry()._watching.get_all_handlers()
    assert {h.fn.__name__ for h in watching} == {
        "platform_changed",
        "deployment_changed",
        "statefulset_changed",
        "job_changed",
    }
    assert all(inspect.iscoroutinefunction(h.fn) for h in watching)
    assert set(handlers.CHILDREN) == WATCHED_KINDS  # every kind whose readiness wakes a platform is watched

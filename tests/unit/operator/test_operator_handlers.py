"""The Kopf handlers stay thin: they run a pass, copy the status diff into Kopf's patch and map outcomes to retries."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from venta_operator import handlers
from venta_operator.metrics import MANAGED_PLATFORMS
from venta_operator.reconciler import Reconciler


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    monkeypatch.setattr(kopf, "event", lambda body, *, type, reason, message: events.append((type, reason)))
    return events


def memo_for(fake: Any) -> kopf.Memo:
    memo = kopf.Memo()
    memo.reconciler = Reconciler(fake, new_password=lambda: "pw")
    return memo


async def test_not_ready_is_a_temporary_error_with_the_status_patched(fake_kube: Any, posted: list[Any]) -> None:
    body, patch = kopf.Body(fake_kube.body()), kopf.Patch()
    with pytest.raises(kopf.TemporaryError) as raised:
        await handlers.on_change("create", body, patch, memo_for(fake_kube))
    assert raised.value.delay == 1.0  # the first retry is quick; later ones back off to CONFIG.retry_delay_s
    with pytest.raises(kopf.TemporaryError) as raised:
        await handlers.on_change("create", body, kopf.Patch(), memo_for(fake_kube), retry=10)
    assert raised.value.delay == handlers.CONFIG.retry_delay_s
    assert patch["status"]["observedGeneration"] == 1
    assert {c["type"] for c in patch["status"]["conditions"]} >= {"Ready", "Progressing", "Degraded"}
    assert ("Normal", "Applied") in posted


async def test_bad_spec_is_permanent_and_reported(fake_kube: Any, posted: list[Any]) -> None:
    raw = fake_kube.body(spec={"postgres": {}})
    body, patch = kopf.Body(raw), kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"spec\.postgres"):
        await handlers.on_change("update", body, patch, memo_for(fake_kube))
    ready = next(c for c in patch["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and ("Warning", "InvalidSpec") in posted
    assert fake_kube.writes() == 0


async def test_timer_on_a_converged_platform_patches_nothing(fake_kube: Any, posted: list[Any]) -> None:
    memo = memo_for(fake_kube)
    raw = fake_kube.body()
    for _ in range(8):
        patch = kopf.Patch()
        await handlers.on_timer(kopf.Body(raw), patch, memo)
        raw["status"] = {**raw["status"], **patch.get("status", {})}
        fake_kube.settle()
    patch = kopf.Patch()
    posted.clear()
    fake_kube.requests.clear()
    await handlers.on_timer(kopf.Body(raw), patch, memo)
    assert not patch and not posted and fake_kube.writes() == 0


async def test_pause_is_not_retried(fake_kube: Any, posted: list[Any]) -> None:
    raw = fake_kube.body(annotations={"venta.io/pause-reconciliation": "true"})
    patch = kopf.Patch()
    await handlers.on_change("update", kopf.Body(raw), patch, memo_for(fake_kube))
    assert patch["status"]["paused"] is True and fake_kube.writes() == 0


def test_platforms_are_counted_until_deleted() -> None:
    handlers.track("ADDED", "a")
    handlers.track("MODIFIED", "b")
    handlers.track("DELETED", "a")
    assert MANAGED_PLATFORMS._value.get() == 1
    handlers.track("DELETED", "b")
    assert MANAGED_PLATFORMS._value.get() == 0

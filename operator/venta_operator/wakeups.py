"""What ends a platform's wait before its next pass: an edit of the platform, or a child whose readiness changed.

A converging platform used to be re-checked on a timer (1, 2, 4, 5 s ...): each stage (PostgreSQL ready, migration
done, services rolled out) was noticed up to five seconds late, and every retry cost Kopf two patches of the
platform. Instead the operator watches the children the status reads (Deployments, StatefulSets, Jobs) and wakes
their platform's loop when one's verdict changes (ready or not, its replica counts, failed), the way
controller-runtime's `Owns()` requeues the owner. The verdict, not every event: the operator's own applies and the
controllers' bookkeeping (resourceVersion, managedFields, conditions' heartbeat) change nothing the pass decides on.

Pure bookkeeping over asyncio events, no API calls: `handlers` feeds it from Kopf's watch events.
"""

from __future__ import annotations

import asyncio
from typing import Any

from venta_operator import KIND, readiness

Obj = dict[str, Any]
Verdict = tuple[bool, str, str, bool]
UPDATE, CHILD = "update", "child"  # why a wait ended early (the pass's trigger label); an edit outranks a child
_RANK = {UPDATE: 0, CHILD: 1}
_READINESS = {"Deployment": readiness.deployment, "StatefulSet": readiness.statefulset, "Job": readiness.job}
WATCHED_KINDS = frozenset(_READINESS)


def owner_uid(child: Obj) -> str | None:
    """The uid of the platform controlling this child, if one does."""
    meta = child.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("kind") == KIND and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def verdict(kind: str, child: Obj) -> Verdict:
    """The child's readiness as the status reads it; an object it cannot read gets a verdict of its own, so that
    its platform's pass (which reports it) still runs."""
    name = str(child["metadata"].get("name", ""))
    try:
        r = _READINESS[kind](child, name)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        return (False, "Unreadable", repr(exc), False)
    return (r.ready, r.reason, r.message, r.failed)


def platform_fingerprint(body: Obj) -> tuple[Any, ...]:
    """What of the platform's own object a pass depends on besides its status: spec (by generation), labels and
    annotations (the pause annotation), deletion. A status patch (the operator's own) changes none of these."""
    meta = body.get("metadata") or {}
    return (
        meta.get("generation"),
        tuple(sorted((meta.get("annotations") or {}).items())),
        tuple(sorted((meta.get("labels") or {}).items())),
        meta.get("deletionTimestamp"),
    )


class Wakeups:
    """One wake-up signal per platform uid, set by watch events and consumed by that platform's loop."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._reasons: dict[str, str] = {}
        self._verdicts: dict[str, Verdict] = {}  # child uid -> last verdict
        self._platforms: dict[str, tuple[Any, ...]] = {}  # platform uid -> last fingerprint

    def _event(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def wake(self, uid: str, reason: str) -> None:
        if uid not in self._platforms:
            return  # not seen yet (its loop's first pass reads everything) or deleted: nothing waits for it
        current = self._reasons.get(uid)
        if current is None or _RANK[reason] < _RANK[current]:
            self._reasons[uid] = reason
        self._event(uid).set()

    async def wait(self, uid: str, seconds: float | None) -> str | None:
        """Until woken (returns why) or `seconds` pass (returns None). A wake-up that came while the loop
        was busy ends the next wait at once: it may be about something the pass read before it happened."""
        event = self._event(uid)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return None
        event.clear()
        return self._reasons.pop(uid, CHILD)

    def platform_event(self, event_type: str, body: Obj) -> None:
        """A watch event of a platform: wake its loop when the platform itself was edited; forget it when gone."""
        uid = str((body.get("metadata") or {}).get("uid"))
        if event_type == "DELETED":
            self.forget(uid)
            return
        fingerprint = platform_fingerprint(body)
        previous = self._platforms.get(uid)
        self._platforms[uid] = fingerprint
        if previous is not None and previous != fingerprint:
            self.wake(uid, UPDATE)

    def child_event(self, event_type: str, kind: str, child: Obj) -> None:
        """A watch event of a Deployment, StatefulSet or Job: wake its platform when its verdict changed."""
        owner = owner_uid(child)
        if owner is None:
            return
        uid = str(child["metadata"].get("uid"))
        if event_type == "DELETED":
            self._verdicts.pop(uid, None)
            self.wake(owner, CHILD)
            return
        now = verdict(kind, child)
        if self._verdicts.get(uid) != now:
            self._verdicts[uid] = now
            self.wake(owner, CHILD)

    def forget(self, uid: str) -> None:
        self._events.pop(uid, None)
        self._reasons.pop(uid, None)
        self._platforms.pop(uid, None)

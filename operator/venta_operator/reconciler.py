"""One reconcile pass: observe the children, plan, write only what differs, prune, and compute the status.

Level-based: a pass reads everything it decides on from the cluster (one labelled list per kind), so it does not
matter which event triggered it, how many were missed, or whether the operator restarted half-way. Writes are
server-side applies with one field manager, made only for children that are missing, changed or drifted (`drift`),
which is what makes a pass over a converged platform write nothing at all. The pass never raises for "not ready
yet": it returns an `Outcome` and the handler decides how to retry.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from venta_operator import readiness
from venta_operator.builders import Key, key_of
from venta_operator.builders.cloudnativepg import CNPG_API, CNPG_CLUSTER, CNPG_KINDS
from venta_operator.builders.grpc_tls import grpc_tls_refs
from venta_operator.builders.ingress import (
    CERT_MANAGER_API,
    CERTIFICATE,
    GATEWAY_API,
    HTTP_ROUTE,
    edge_problems,
    edge_wanted_kinds,
    tls_secret_refs,
)
from venta_operator.builders.job import initial_reindex_name, migration_job_name
from venta_operator.builders.monitoring import MONITORING_API, OPTIONAL_KINDS
from venta_operator.builders.secret import SIGNING_KEY, generated_secret_names, secret_keys
from venta_operator.drift import needs_apply
from venta_operator.kube import KINDS, Kube, KubeError
from venta_operator.metrics import CHILD_WRITES
from venta_operator.naming import ANNOTATION_PAUSE, ownership_selector
from venta_operator.plan import Facts, Plan, desired, generated_secret
from venta_operator.spec import Platform, SecretKeyRef, platform_from
from venta_operator.status import Observation, compute, services_ready, store_readiness

Obj = dict[str, Any]
Event = tuple[str, str, str]  # (type, reason, message), posted by the handler as a Kubernetes Event
T = TypeVar("T")
CONCURRENCY = 16  # requests in flight across all passes: fast for one platform, gentle on the API server for fifty
# Kinds served only when another operator's CRDs are installed, by API group/version: discovered, never assumed.
OPTIONAL_APIS: dict[str, frozenset[str]] = {
    MONITORING_API: OPTIONAL_KINDS,
    CNPG_API: CNPG_KINDS,
    GATEWAY_API: frozenset({HTTP_ROUTE}),
    CERT_MANAGER_API: frozenset({CERTIFICATE}),
}
ALL_OPTIONAL_KINDS = frozenset().union(*OPTIONAL_APIS.values())


@dataclass
class Outcome:
    status: Obj
    ready: bool
    paused: bool
    stage: str
    writes: list[str] = field(default_factory=list)
    errors: list[KubeError] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def message(self) -> str:
        ready: Obj = next((c for c in self.status.get("conditions", []) if c["type"] == "Ready"), {})
        return str(ready.get("message", ""))


def is_paused(body: Obj) -> bool:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_PAUSE, "").lower() == "true" or bool((body.get("spec") or {}).get("paused"))


def _now() -> datetime:
    return datetime.now(UTC)


def _password() -> str:
    return secrets.token_urlsafe(24)


def generate_signing_key() -> str:
    """A fresh RSA key for the local identity issuer (what its own key ring would make, PKCS#8 PEM)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def referenced_secrets(p: Platform) -> list[SecretKeyRef]:
    """Every Secret key the spec points at: checked each pass, because a missing one leaves pods stuck."""
    spec, refs = p.spec, []
    if spec.postgres.external is not None:
        creds = spec.postgres.external.credentials_secret_ref
        refs += [
            SecretKeyRef(name=creds.name, key=creds.username_key),
            SecretKeyRef(name=creds.name, key=creds.password_key),
        ]
    if spec.redis.external is not None and spec.redis.external.password_secret_ref is not None:
        refs.append(spec.redis.external.password_secret_ref)
    if spec.search.provider == "algolia" and spec.search.algolia and spec.search.algolia.api_key_secret_ref:
        refs.append(spec.search.algolia.api_key_secret_ref)
    clerk = spec.identity.clerk
    if spec.identity.mode == "clerk" and clerk is not None:
        refs += [r for r in (clerk.webhook_secret_ref,) if r is not None]  # the only Clerk secret mounted
    if spec.identity.revenue_cat_webhook_secret_ref is not None:
        refs.append(spec.identity.revenue_cat_webhook_secret_ref)
    if spec.uploads.cloudinary is not None:
        refs.append(spec.uploads.cloudinary.url_secret_ref)
    refs += tls_secret_refs(p)  # the public host's certificate, when the user provides it (not cert-manager)
    refs += grpc_tls_refs(p)  # internal gRPC's certificates, mounted into every gRPC pod
    return refs


def wanted_kinds(p: Platform) -> frozenset[str]:
    """The optional kinds this spec asks for: while one is missing, every pass looks again (not the cache's TTL)."""
    out = set(edge_wanted_kinds(p))
    if p.spec.postgres.cloud_native_pg is not None:
        out.add(CNPG_CLUSTER)
    return frozenset(out)


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        *,
        clock: Callable[[], datetime] = _now,
        new_password: Callable[[], str] = _password,
        new_signing_key: Callable[[], str] = generate_signing_key,
        discovery_ttl: float = 300.0,
        dashboards: Mapping[str, str] | None = None,
        alert_rules: Sequence[Obj] | None = None,
    ) -> None:
        self._kube = kube
        self._dashboards = dict(dashboards or {})
        self._alert_rules = list(alert_rules or [])
        self._clock = clock
        self._new_password = new_password
        self._new_signing_key = new_signing_key
        self._discovery_ttl = discovery_ttl
        self._discovered: tuple[float, frozenset[str]] | None = None
        self._limit = asyncio.Semaphore(CONCURRENCY)

    async def reconcile(self, body: Obj) -> Outcome:
        """One pass over one platform; raises SpecError for a spec that cannot be used, KubeError when blind."""
        p = platform_from(body)
        meta = body["metadata"]
        uid, generation = str(meta["uid"]), int(meta.get("generation", 1))
        previous: Obj = dict(body.get("status") or {})
        paused = is_paused(body)
        # A platform waiting for CloudNativePG, cert-manager or Gateway API looks again at every pass: installing
        # one must not wait for the cache.
        kinds = await self._available_kinds(wanted=wanted_kinds(p))
        live, problems = await asyncio.gather(self._observe(p, kinds), self._check_references(p))
        problems += edge_problems(p, kinds)  # an Ingress asking for cert-manager or Gateway API where neither is
        outcome = Outcome(status={}, ready=False, paused=paused, stage="paused")
        if not paused:
            outcome.writes += await self._ensure_secrets(p, uid, live)
            plan = desired(p, self._facts(p, uid, kinds, live, previous))
            outcome.stage = plan.stage
            await self._apply(p, plan, live, outcome)
            if plan.prune and not outcome.errors:
                await self._prune(p, plan, uid, live, outcome)
        problems += [f"applying failed: {e.message}" for e in outcome.errors]
        now = self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        outcome.status = compute(
            p,
            Observation(
                live=live,
                generation=generation,
                now=now,
                paused=paused,
                stage=outcome.stage,
                problems=problems,
                previous=previous,
                available_kinds=kinds,
            ),
        )
        outcome.ready = any(c["type"] == "Ready" and c["status"] == "True" for c in outcome.status["conditions"])
        self._report(outcome, previous)
        return outcome

    # -- observing ----------------------------------------------------------------------------------------------

    async def _available_kinds(self, *, wanted: frozenset[str] = frozenset()) -> frozenset[str]:
        """Which optional kinds (ServiceMonitor, PrometheusRule, CloudNativePG's Cluster) the cluster serves; cached,
        as CRDs rarely come, except that a kind the platform `wanted` and still missing is looked for again."""
        now = time.monotonic()
        stale = self._discovered is None or now - self._discovered[0] > self._discovery_ttl
        if stale or (self._discovered is not None and wanted - self._discovered[1]):

            async def served(api: str, kinds: frozenset[str]) -> frozenset[str]:
                try:
                    return await self._kube.served_kinds(api) & kinds
                except KubeError:
                    return frozenset()

            found = await self._gather(served(api, kinds) for api, kinds in OPTIONAL_APIS.items())
            self._discovered = (now, frozenset().union(*found))
        assert self._discovered is not None
        return self._discovered[1]

    async def _observe(self, p: Platform, kinds: frozenset[str]) -> dict[Key, Obj]:
        listed = [k for k in KINDS if k not in ALL_OPTIONAL_KINDS or k in kinds]
        selector = ownership_selector(p.name)
        results = await self._gather(self._kube.list(kind, p.namespace, selector) for kind in listed)
        return {key_of(obj): obj for items in results for obj in items}

    async def _check_references(self, p: Platform) -> list[str]:
        refs = referenced_secrets(p)
        names = sorted({r.name for r in refs})
        found = dict(
            zip(names, await self._gather(self._kube.get("Secret", p.namespace, n) for n in names), strict=True)
        )
        problems = []
        for ref in refs:
            secret = found.get(ref.name)
            if secret is None:
                problems.append(f"Secret {ref.name} (key {ref.key}) not found")
            elif ref.key not in (secret.get("data") or {}):
                problems.append(f"Secret {ref.name} has no key {ref.key}")
        return sorted(set(problems))

    def _facts(self, p: Platform, uid: str, kinds: frozenset[str], live: dict[Key, Obj], previous: Obj) -> Facts:
        migration = migration_job_name(p)
        initial = initial_reindex_name(p.name)
        return Facts(
            uid=uid,
            available_kinds=kinds,
            dashboards=self._dashboards,
            alert_rules=self._alert_rules,
            postgres_ready=store_readiness(p, "postgres", live, kinds).ready,
            migration_complete=readiness.job(live.get(("Job", migration)), migration).ready,
            services_ready=services_ready(p, live),
            reindexed=bool(previous.get("lastReindex")) or readiness.job(live.get(("Job", initial)), initial).ready,
        )

    # -- writing ------------------------------------------------------------------------------------------------

    async def _ensure_secrets(self, p: Platform, uid: str, live: dict[Key, Obj]) -> list[str]:
        """Create missing credential Secrets, once: an existing one is never replaced, so never rotated."""
        writes = []
        for name in generated_secret_names(p):
            if ("Secret", name) in live:
                continue
            values = {
                key: await asyncio.to_thread(self._new_signing_key)
                if kind == SIGNING_KEY  # ~0.1 s of CPU
                else self._new_password()
                for key, kind in secret_keys(name, p.name).items()
            }
            manifest = generated_secret(p, name, values, uid)
            created = await self._kube.create(manifest)
            if created is None:  # created by an earlier pass whose list we did not see: keep that one
                created = await self._kube.get("Secret", p.namespace, name)
            else:
                writes.append(f"Secret/{name} (generated)")
                CHILD_WRITES.labels(kind="Secret", action="create").inc()
            if created is not None:
                live[("Secret", name)] = created
        return writes

    async def _apply(self, p: Platform, plan: Plan, live: dict[Key, Obj], outcome: Outcome) -> None:
        async def one(manifest: Obj) -> None:
            key = key_of(manifest)
            current = live.get(key)
            if key[0] == "Job" and current is not None:
                return  # a Job runs once: its template is immutable and its name already says what it runs
            reason = needs_apply(manifest, current)
            if reason is None:
                return
            try:
                live[key] = await self._kube.apply(manifest)
            except KubeError as exc:
                outcome.errors.append(KubeError(exc.status, f"{key[0]}/{key[1]}: {exc.message}"))
                return
            outcome.writes.append(f"{key[0]}/{key[1]} ({reason})")
            CHILD_WRITES.labels(kind=key[0], action="apply").inc()

        await self._gather(one(m) for m in plan.apply)

    async def _prune(self, p: Platform, plan: Plan, uid: str, live: dict[Key, Obj], outcome: Outcome) -> None:
        """Delete children this platform controls but no longer wants (a disabled HPA, an old migration Job)."""

        def ours(obj: Obj) -> bool:
            refs = obj.get("metadata", {}).get("ownerReferences") or []
            return any(r.get("uid") == uid and r.get("controller") for r in refs)

        stale = [key for key, obj in live.items() if key not in plan.keep and ours(obj)]

        async def one(key: Key) -> None:
            try:
                await self._kube.delete(key[0], p.namespace, key[1])
            except KubeError as exc:
                outcome.errors.append(KubeError(exc.status, f"deleting {key[0]}/{key[1]}: {exc.message}"))
                return
            live.pop(key, None)
            outcome.writes.append(f"{key[0]}/{key[1]} (pruned)")
            CHILD_WRITES.labels(kind=key[0], action="delete").inc()

        await self._gather(one(k) for k in sorted(stale))

    @staticmethod
    def _report(outcome: Outcome, previous: Obj) -> None:
        """The Events of this pass: what changed, what failed, pause and readiness transitions; none when idle."""
        events = outcome.events
        if outcome.paused != bool(previous.get("paused")):
            events.append(
                (
                    "Normal",
                    "Paused" if outcome.paused else "Resumed",
                    "reconciliation paused by annotation or spec" if outcome.paused else "reconciliation resumed",
                )
            )
        if outcome.writes:
            shown = ", ".join(sorted(outcome.writes)[:25])
            more = f" and {len(outcome.writes) - 25} more" if len(outcome.writes) > 25 else ""
            events.append(
                ("Normal", "Applied", f"{len(outcome.writes)} change(s) in stage {outcome.stage}: {shown}{more}")
            )
        events += [("Warning", "ApplyFailed", error.message) for error in outcome.errors]
        was_ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in previous.get("conditions") or []
        )
        if outcome.ready and not was_ready:
            events.append(("Normal", "Ready", "every component is ready"))

    async def _gather(self, aws: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
        async def bounded(aw: Coroutine[Any, Any, T]) -> T:
            async with self._limit:
                return await aw

        pending = list(aws)
        try:
            return list(await asyncio.gather(*(bounded(a) for a in pending)))
        finally:  # a pass cancelled (its platform deleted): requests that never started are dropped, not leaked
            for aw in pending:
                if inspect.getcoroutinestate(aw) == inspect.CORO_CREATED:
                    aw.close()

"""The operator unit tests' helpers: typed platforms and their plans, and `FakeKube`, an in-memory API server.

The reconciler's tests run against `FakeKube` for speed and exact request counts; the same behaviour is proven
against a real API server in tests/e2e/operator.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

from venta_operator.kube import KubeError
from venta_operator.plan import Facts, Plan, desired
from venta_operator.spec import Platform, parse_spec

ALL_DONE = Facts(uid="uid-1", postgres_ready=True, migration_complete=True, services_ready=True)

ALGOLIA = {"provider": "algolia", "algolia": {"appId": "APP", "apiKeySecretRef": {"name": "algolia", "key": "k"}}}
CLERK = {
    "mode": "clerk",
    "clerk": {
        "jwksUrl": "https://clerk.example/.well-known/jwks.json",
        "issuer": "https://clerk.example",
        "secretKeySecretRef": {"name": "clerk", "key": "secret"},
        "webhookSecretRef": {"name": "clerk", "key": "webhook"},
    },
    "revenueCatWebhookSecretRef": {"name": "rc", "key": "secret"},
}
EXTERNAL = {
    "nats": {"external": {"url": "nats://nats.example:4222"}},
    "postgres": {"external": {"host": "db.example", "credentialsSecretRef": {"name": "pg"}}},
    "redis": {"external": {"url": "redis://cache.example:6379/0", "passwordSecretRef": {"name": "rd", "key": "pw"}}},
}


def make(spec: dict[str, Any] | None = None, *, name: str = "demo", namespace: str = "shop") -> Platform:
    return Platform(name=name, namespace=namespace, spec=parse_spec({"version": "1.2.3", **(spec or {})}))


def full_plan(p: Platform, facts: Facts = ALL_DONE, kinds: frozenset[str] = frozenset()) -> Plan:
    return desired(p, Facts(**{**facts.__dict__, "available_kinds": kinds}))


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload manifest."""
    for m in manifests:
        spec = m.get("spec", {})
        if m["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield f"{m['kind']}/{m['metadata']['name']}", spec["template"]["spec"]
        elif m["kind"] == "CronJob":
            yield f"CronJob/{m['metadata']['name']}", spec["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def by_key(manifests: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies `application/merge-patch+json` (and, for manifests without nulls,
    close enough to a server-side apply by one manager)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


class FakeKube:
    """An in-memory API server: enough of list/get/apply/create/delete for the reconciler, counting every request.

    `settle()` plays the controllers: Deployments and StatefulSets become ready, Jobs complete.
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.served: frozenset[str] = frozenset()
        self.fail_apply: set[str] = set()  # kinds whose apply fails with 422
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}  # platforms' status, by (namespace, name)
        self._uid = 0

    def writes(self) -> int:
        return sum(n for verb, n in self.requests.items() if verb in ("apply", "create", "delete", "patch"))

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of the platform's status, kept in `statuses` (None removes a key, as the API server does)."""
        self.requests["patch"] += 1
        merged = _merge_patch(self.statuses.get((namespace, name), {}), status)
        self.statuses[(namespace, name)] = merged
        return {"status": copy.deepcopy(merged)}

    async def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.requests["list"] += 1
        want = dict(part.split("=", 1) for part in selector.split(","))
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and ns == namespace
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in want.items())
        ]

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.requests["get"] += 1
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.requests["apply"] += 1
        if manifest["kind"] in self.fail_apply:
            raise KubeError(422, "field is immutable")
        meta = manifest["metadata"]
        key = (manifest["kind"], meta["namespace"], meta["name"])
        old = self.objects.get(key)
        new = _merge_patch(old or {}, manifest)
        if old is None:
            self._uid += 1
            new["metadata"].update(uid=f"child-{self._uid}", generation=1)
        elif old.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        self.objects[key] = new
        return copy.deepcopy(new)

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        self.requests["create"] += 1
        meta = manifest["metadata"]
        key = (manifest["kind"], meta["namespace"], meta["name"])
        if key in self.objects:
            return None
        self.objects[key] = copy.deepcopy(manifest)
        return copy.deepcopy(manifest)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        self.requests["delete"] += 1
        self.objects.pop((kind, namespace, name), None)

    async def served_kinds(self, api_version: str) -> frozenset[str]:
        self.requests["discover"] += 1
        return self.served

    def settle(self) -> None:
        for (kind, _, _), obj in self.objects.items():
            gen = obj["metadata"].get("generation", 1)
            if kind in ("Deployment", "StatefulSet"):
                n = obj["spec"].get("replicas", 1)
                obj["status"] = {
                    "observedGeneration": gen,
                    "replicas": n,
                    "readyReplicas": n,
                    "updatedReplicas": n,
                    "availableReplicas": n,
                }
            elif kind == "Job" and not obj.get("status", {}).get("succeeded"):
                obj["status"] = {"succeeded": 1, "completionTime": "2024-05-01T10:00:00Z"}

    def body(
        self,
        name: str = "demo",
        namespace: str = "shop",
        *,
        spec: dict[str, Any] | None = None,
        generation: int = 1,
        status: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A VentaPlatform as a handler receives it."""
        return {
            "apiVersion": "venta.io/v1alpha1",
            "kind": "VentaPlatform",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": "uid-1",
                "generation": generation,
                "annotations": annotations or {},
            },
            "spec": {"version": "1.2.3", **(spec or {})},
            "status": status or {},
        }

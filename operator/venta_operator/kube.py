"""The operator's only door to the API server: list, get, server-side apply, create, delete, discovery.

Why not the generated typed APIs: the reconciler handles a dozen kinds generically as dicts (what the builders
produce), and server-side apply is one PATCH with `application/apply-patch+yaml` for every kind. This module maps a
kind to its URL and turns HTTP failures into `KubeError` once, here, with the status code kept for the caller.
Every request is counted by verb and kind (`venta_operator_api_requests_total`): the benchmark of a no-op reconcile
reads that counter.

Built on `kubernetes.aio` (aiohttp), so Kopf's event loop is never blocked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from venta_operator.metrics import API_REQUESTS
from venta_operator.naming import FIELD_MANAGER

Obj = dict[str, Any]


@dataclass(frozen=True)
class KindInfo:
    api_version: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        out = f"{base}/namespaces/{quote(namespace)}/{self.plural}"
        return f"{out}/{quote(name)}" if name else out


KINDS: dict[str, KindInfo] = {
    "ServiceAccount": KindInfo("v1", "serviceaccounts"),
    "ConfigMap": KindInfo("v1", "configmaps"),
    "Secret": KindInfo("v1", "secrets"),
    "Service": KindInfo("v1", "services"),
    "Deployment": KindInfo("apps/v1", "deployments"),
    "StatefulSet": KindInfo("apps/v1", "statefulsets"),
    "Job": KindInfo("batch/v1", "jobs"),
    "CronJob": KindInfo("batch/v1", "cronjobs"),
    "PodDisruptionBudget": KindInfo("policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": KindInfo("autoscaling/v2", "horizontalpodautoscalers"),
    "NetworkPolicy": KindInfo("networking.k8s.io/v1", "networkpolicies"),
    "ServiceMonitor": KindInfo("monitoring.coreos.com/v1", "servicemonitors"),
    "PrometheusRule": KindInfo("monitoring.coreos.com/v1", "prometheusrules"),
    "Cluster": KindInfo("postgresql.cnpg.io/v1", "clusters"),  # CloudNativePG's, when installed
    "Ingress": KindInfo("networking.k8s.io/v1", "ingresses"),
    "HTTPRoute": KindInfo("gateway.networking.k8s.io/v1", "httproutes"),  # Gateway API's, when installed
    "Certificate": KindInfo("cert-manager.io/v1", "certificates"),  # cert-manager's, when installed
}


class KubeError(Exception):
    """A failed API request; `status` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def permanent(self) -> bool:
        """The request itself is wrong (invalid object, forbidden): repeating it will not help."""
        return self.status in (400, 403, 422)


class Kube(Protocol):
    """What the reconciler needs; the unit tests pass an in-memory implementation."""

    async def list(self, kind: str, namespace: str, selector: str) -> list[Obj]: ...
    async def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...
    async def apply(self, manifest: Obj) -> Obj: ...
    async def create(self, manifest: Obj) -> Obj | None: ...
    async def delete(self, kind: str, namespace: str, name: str) -> None: ...
    async def served_kinds(self, api_version: str) -> frozenset[str]: ...


class ApiServer:
    """`Kube` over HTTP with the credentials of the kubeconfig or of the pod's service account."""

    def __init__(self, api: aio_client.ApiClient) -> None:
        self._api = api

    @classmethod
    async def connect(cls) -> ApiServer:
        configuration = aio_client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            aio_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await aio_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
        return cls(aio_client.ApiClient(configuration=configuration))

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]

    async def _request(
        self,
        verb: str,
        kind: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj | None:
        API_REQUESTS.labels(verb=verb, kind=kind).inc()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            method, url, headers, data, _ = await self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = await self._api.call_api(method, url, header_params=headers, body=data)
            raw: bytes = await response.read()  # type: ignore[no-untyped-call]
        except aio_client.ApiException as exc:
            raise KubeError(exc.status or 0, str(exc.reason)) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KubeError(0, f"API server unreachable: {exc!r}") from exc
        if response.status == 404:
            return None
        if response.status >= 400:
            try:
                message = json.loads(raw).get("message", raw.decode(errors="replace"))
            except ValueError:
                message = raw.decode(errors="replace")
            raise KubeError(response.status, message)
        return json.loads(raw) if raw else {}

    async def list(self, kind: str, namespace: str, selector: str) -> list[Obj]:
        result = await self._request(
            "list", kind, "GET", KINDS[kind].path(namespace), query=[("labelSelector", selector)]
        )
        if result is None:  # the kind is not served (an optional CRD went away)
            return []
        items: list[Obj] = result.get("items", [])
        info = KINDS[kind]
        for item in items:  # list items carry no apiVersion/kind
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", kind)
        return items

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return await self._request("get", kind, "GET", KINDS[kind].path(namespace, name))

    async def apply(self, manifest: Obj) -> Obj:
        kind, meta = manifest["kind"], manifest["metadata"]
        result = await self._request(
            "apply",
            kind,
            "PATCH",
            KINDS[kind].path(meta["namespace"], meta["name"]),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=manifest,
            content_type="application/apply-patch+yaml",
        )
        if result is None:
            raise KubeError(404, f"{kind} {meta['name']}: namespace or kind not found")
        return result

    async def create(self, manifest: Obj) -> Obj | None:
        kind, meta = manifest["kind"], manifest["metadata"]
        try:
            return await self._request(
                "create",
                kind,
                "POST",
                KINDS[kind].path(meta["namespace"]),
                query=[("fieldManager", FIELD_MANAGER)],
                body=manifest,
            )
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await self._request(
            "delete",
            kind,
            "DELETE",
            KINDS[kind].path(namespace, name),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )

    async def served_kinds(self, api_version: str) -> frozenset[str]:
        result = await self._request("discover", api_version, "GET", f"/apis/{api_version}")
        if result is None:
            return frozenset()
        return frozenset(r["kind"] for r in result.get("resources", []) if "/" not in r.get("name", ""))

"""The operator's only door to the API server: list, get, server-side apply, create, delete, discovery.

Why not the generated typed APIs: the reconciler handles a dozen kinds generically as dicts (what the builders
produce), and server-side apply is one PATCH with `application/apply-patch+yaml` for every kind. This module maps a
kind to its URL and turns HTTP failures into `KubeError` once, here, with the status code kept for the caller.
Every request is counted by verb and kind (`venta_operator_api_requests_total`): the benchmark of a no-op reconcile
reads that counter.

Built on aiohttp, with Kopf's kubeconfig reader (`login`), so Kopf's event loop is never blocked and the process
does not import the `kubernetes` package: its generated models cost the operator about 11 MiB it never used.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import kopf
import yaml

from venta_operator import API_GROUP, API_VERSION, KIND, PLURAL
from venta_operator.metrics import API_REQUESTS
from venta_operator.naming import FIELD_MANAGER

Obj = dict[str, Any]
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CONNECTIONS = 32  # kept-alive connections to the API server (requests in flight are capped by the reconciler)
REQUEST_TIMEOUT_S = 60.0


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


def _drop_managed_fields(obj: Obj) -> Obj:
    """Server-side apply's bookkeeping, often the largest part of an object: no decision reads it, and a pass holds
    every child of its platform at once."""
    (obj.get("metadata") or {}).pop("managedFields", None)
    return obj


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


def login(**_: Any) -> kopf.ConnectionInfo:
    """Where the API server is and who we are: Kopf's `@kopf.on.login` handler and this client's, so both agree.

    In a pod (no KUBECONFIG), its service account, at the address Kubernetes puts in every pod's environment (as
    client-go's in-cluster config does); elsewhere, the kubeconfig, read by Kopf (tokens, client certificates and
    basic auth; no exec plugins: the operator runs in its pod, and the tests give it a token).
    """
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if host and not os.environ.get("KUBECONFIG"):
        try:
            token = (SERVICE_ACCOUNT / "token").read_text().strip()
        except OSError as exc:
            raise KubeError(0, f"in a pod, but no service account token ({exc}): is it mounted?") from exc
        ca = SERVICE_ACCOUNT / "ca.crt"
        return kopf.ConnectionInfo(
            server=f"https://{'[' + host + ']' if ':' in host else host}:{port}",
            ca_path=str(ca) if ca.exists() else None,
            token=token,
            scheme="Bearer",
        )
    try:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    except (kopf.LoginError, yaml.YAMLError, OSError, LookupError, TypeError, AttributeError) as exc:
        raise KubeError(
            0, f"cannot use the kubeconfig {os.environ.get('KUBECONFIG', '~/.kube/config')}: {exc!r}"
        ) from exc
    if info is None:
        raise KubeError(0, "no credentials: neither a pod's service account nor a kubeconfig")
    return info


def _ssl(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    cadata = base64.b64decode(info.ca_data).decode() if info.ca_data else None
    context = ssl.create_default_context(cafile=info.ca_path, cadata=cadata)  # type: ignore[arg-type]
    if info.certificate_path or info.certificate_data:
        with tempfile.TemporaryDirectory() as scratch:  # the ssl module loads a client certificate from files only
            cert, key = info.certificate_path, info.private_key_path
            if info.certificate_data:
                cert = Path(scratch, "tls.crt")
                cert.write_bytes(base64.b64decode(info.certificate_data))
            if info.private_key_data:
                key = Path(scratch, "tls.key")
                key.write_bytes(base64.b64decode(info.private_key_data))
            context.load_cert_chain(cert, key)  # type: ignore[arg-type]
    return context


def _headers(info: kopf.ConnectionInfo) -> dict[str, str]:
    if info.token:
        return {"Authorization": f"{info.scheme or 'Bearer'} {info.token}"}
    if info.username and info.password:
        pair = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


class ApiServer:
    """`Kube` over HTTP (aiohttp) with the credentials of `login`."""

    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self._info = info
        self._auth = _headers(info)
        self._server = info.server.rstrip("/")  # may have a path of its own (a proxy's), so not aiohttp's base_url
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=_ssl(info), limit=CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        )

    @classmethod
    async def connect(cls) -> ApiServer:
        return cls(login())

    async def close(self) -> None:
        await self._session.close()

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
        data = json.dumps(body) if body is not None else None
        for attempt in (1, 2):
            headers = {"Accept": "application/json", "Content-Type": content_type, **self._auth}
            try:
                url = self._server + path
                async with self._session.request(method, url, params=query, data=data, headers=headers) as response:
                    raw = await response.read()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise KubeError(0, f"API server unreachable: {exc!r}") from exc
            if response.status == 401 and attempt == 1:  # a service account token rotates: read it again, once
                self._auth = _headers(login())
                continue
            break
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
            _drop_managed_fields(item)
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
        return _drop_managed_fields(result)

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

    async def patch_status(self, namespace: str, name: str, status: Obj) -> Obj | None:
        """A JSON merge patch of a VentaPlatform's status (its status subresource); None when it is gone."""
        return await self._request(
            "patch",
            KIND,
            "PATCH",
            f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{quote(namespace)}/{PLURAL}/{quote(name)}/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def served_kinds(self, api_version: str) -> frozenset[str]:
        result = await self._request("discover", api_version, "GET", f"/apis/{api_version}")
        if result is None:
            return frozenset()
        return frozenset(r["kind"] for r in result.get("resources", []) if "/" not in r.get("name", ""))

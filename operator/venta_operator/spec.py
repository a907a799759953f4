"""The typed view of a VentaPlatform spec that the builders read.

The API server has validated and defaulted the spec already; this module applies the CRD's own defaults once more
(the same schema, `spec_schema.spec_schema()`, with the API server's algorithm) so that the builders never see a missing
field, also in unit tests that pass a minimal dict. Models therefore declare no defaults of their own: a default
lives in the CRD or nowhere. A spec the API server should have refused but did not (an older CRD, say) raises
`SpecError`, which the handlers turn into a permanent failure.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from venta_operator.openapi import apply_defaults
from venta_operator.spec_schema import spec_schema


class SpecError(ValueError):
    """The spec cannot describe a platform; retrying will not help until the user edits it."""


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class SecretKeyRef(Model):
    name: str
    key: str


class ResourceList(Model):
    cpu: str
    memory: str


class Resources(Model):
    requests: ResourceList
    limits: ResourceList

    def manifest(self) -> dict[str, dict[str, str]]:
        return {"requests": self.requests.model_dump(), "limits": self.limits.model_dump()}


class Autoscaling(Model):
    enabled: bool
    min_replicas: int
    max_replicas: int
    target_cpu: int = Field(alias="targetCPUUtilizationPercentage")


class ServiceSpec(Model):
    replicas: int
    resources: Resources
    autoscaling: Autoscaling
    service_type: str = "ClusterIP"  # only public components have it in the CRD


class Storage(Model):
    size: str
    storage_class_name: str | None = None
    delete_with_platform: bool


class ManagedStore(Model):
    image: str
    resources: Resources
    storage: Storage | None = None  # redis keeps nothing on a volume of its own


class ManagedNats(ManagedStore):
    replicas: Literal[1, 3]  # 3: a JetStream cluster

    @property
    def clustered(self) -> bool:
        return self.replicas > 1


class ExternalNats(Model):
    url: str
    stream_replicas: int = Field(ge=1, le=5)


class NatsSpec(Model):
    managed: ManagedNats | None = None
    external: ExternalNats | None = None

    @property
    def stream_replicas(self) -> int:
        """Copies of each JetStream stream: one per managed server, or what the external cluster is said to hold."""
        if self.managed is not None:
            return self.managed.replicas
        assert self.external is not None
        return self.external.stream_replicas


class PostgresCredentialsRef(Model):
    name: str
    username_key: str
    password_key: str


class ExternalPostgres(Model):
    host: str
    port: int
    credentials_secret_ref: PostgresCredentialsRef


class CloudNativePGStorage(Model):
    size: str
    storage_class_name: str | None = None


class CloudNativePG(Model):
    """A CloudNativePG `Cluster` the operator creates and reads: replicated PostgreSQL, failover by CloudNativePG."""

    instances: int
    storage: CloudNativePGStorage
    resources: Resources
    image_name: str | None = None


class PostgresSpec(Model):
    managed: ManagedStore | None = None
    external: ExternalPostgres | None = None
    cloud_native_pg: CloudNativePG | None = Field(default=None, alias="cloudNativePG")


class ExternalRedis(Model):
    url: str
    password_secret_ref: SecretKeyRef | None = None


class RedisPersistence(Model):
    enabled: bool
    size: str
    storage_class_name: str | None = None
    delete_with_platform: bool


class ManagedRedis(ManagedStore):
    persistence: RedisPersistence

    @property
    def persistent(self) -> bool:
        """A StatefulSet with a volume keeping the append-only file, instead of a Deployment with nothing kept."""
        return self.persistence.enabled


class RedisSpec(Model):
    managed: ManagedRedis | None = None
    external: ExternalRedis | None = None


class EventsSpec(Model):
    provider: Literal["jetstream", "redis"]


class Algolia(Model):
    app_id: str | None = None
    api_key_secret_ref: SecretKeyRef | None = None


class SearchSpec(Model):
    provider: Literal["postgres", "algolia"]
    index: str
    reindex_schedule: str
    reindex_on_create: bool
    algolia: Algolia | None = None


class Clerk(Model):
    jwks_url: str | None = None
    issuer: str | None = None
    authorized_parties: list[str] = []
    secret_key_secret_ref: SecretKeyRef | None = None
    webhook_secret_ref: SecretKeyRef | None = None


class IdentitySpec(Model):
    mode: Literal["clerk", "local"]
    clerk: Clerk | None = None
    revenue_cat_webhook_secret_ref: SecretKeyRef | None = None


class Resilience(Model):
    breaker_fail_max: int
    breaker_reset_timeout_seconds: float
    grpc_timeout_seconds: float
    rate_limit: str


class Tracing(Model):
    endpoint: str | None = None
    sampling_ratio: float


class ServiceMonitorSpec(Model):
    enabled: bool
    interval: str


class Toggle(Model):
    enabled: bool


class Exporter(Model):
    image: str
    resources: Resources


class NatsExporter(Exporter):
    monitor_url: str | None = None


class Exporters(Model):
    enabled: bool
    postgres: Exporter
    nats: NatsExporter
    redis: Exporter


class Observability(Model):
    log_level: str
    tracing: Tracing
    service_monitor: ServiceMonitorSpec
    alerts: Toggle
    dashboards: Toggle
    exporters: Exporters


class NetworkPolicySpec(Model):
    enabled: bool
    metrics_namespace_labels: dict[str, str] = {}


class IssuerRef(Model):
    name: str
    kind: Literal["Issuer", "ClusterIssuer"]
    group: str


class CertManager(Model):
    issuer_ref: IssuerRef


class IngressTLS(Model):
    secret_name: str | None = None
    cert_manager: CertManager | None = None


class GatewayRef(Model):
    name: str
    namespace: str | None = None
    section_name: str | None = None


class IngressSpec(Model):
    enabled: bool
    class_name: str | None = None
    host: str | None = None
    annotations: dict[str, str] = {}
    tls: IngressTLS | None = None
    gateway_ref: GatewayRef | None = None


class Cloudinary(Model):
    url_secret_ref: SecretKeyRef
    folder: str


class Uploads(Model):
    public_base_url: str | None = None
    cloudinary: Cloudinary | None = None
    existing_claim: str | None = None


class GrpcTLS(Model):
    secret_name: str
    server_name: str | None = None


class Network(Model):
    trusted_proxies: tuple[str, ...] = ()
    grpc_tls: GrpcTLS | None = Field(default=None, alias="grpcTLS")


class ImageSpec(Model):
    repository: str
    tag: str | None = None
    pull_policy: str
    pull_secrets: tuple[str, ...] = ()


class Development(Model):
    live_reload: bool


class PlatformSpec(Model):
    version: str
    image: ImageSpec
    services: dict[str, ServiceSpec]
    nats: NatsSpec
    postgres: PostgresSpec
    redis: RedisSpec
    events: EventsSpec
    search: SearchSpec
    identity: IdentitySpec
    resilience: Resilience
    observability: Observability
    ingress: IngressSpec
    network_policy: NetworkPolicySpec
    network: Network
    uploads: Uploads
    development: Development
    paused: bool


@dataclass(frozen=True)
class Platform:
    """What every builder receives: the object's identity and its typed, defaulted spec."""

    name: str
    namespace: str
    spec: PlatformSpec

    @property
    def image(self) -> str:
        return f"{self.spec.image.repository}:{self.spec.image.tag or self.spec.version}"


@cache
def _schema() -> dict[str, Any]:
    return spec_schema()


def _check(spec: PlatformSpec) -> None:
    """What the CEL rules say, for the case the API server did not say it (a spec written under an older CRD)."""
    for store in ("nats", "redis"):
        part = getattr(spec, store)
        if (part.managed is None) == (part.external is None):
            raise SpecError(f"spec.{store}: exactly one of managed or external must be set")
    postgres = spec.postgres
    if [postgres.managed, postgres.external, postgres.cloud_native_pg].count(None) != 2:
        raise SpecError("spec.postgres: exactly one of managed, external or cloudNativePG must be set")
    for key, svc in spec.services.items():
        if svc.autoscaling.min_replicas > svc.autoscaling.max_replicas:
            raise SpecError(f"spec.services.{key}.autoscaling: minReplicas must be <= maxReplicas")
    algolia = spec.search.algolia
    if spec.search.provider == "algolia" and (algolia is None or not algolia.app_id or not algolia.api_key_secret_ref):
        raise SpecError("spec.search.algolia: appId and apiKeySecretRef are required when provider is algolia")
    search = spec.search
    if spec.events.provider == "redis" and (search.reindex_schedule or search.reindex_on_create):
        raise SpecError(
            "spec.events.provider: redis needs search.reindexSchedule '' and search.reindexOnCreate false (the full "
            "re-index replays the NATS JetStream stream)"
        )
    ingress = spec.ingress
    if ingress.enabled and not ingress.host:
        raise SpecError("spec.ingress.host: required when ingress.enabled is true")
    if ingress.tls is not None and not ingress.tls.secret_name:
        raise SpecError("spec.ingress.tls.secretName: required (the Secret holding the certificate)")
    if ingress.gateway_ref is not None and ingress.class_name is not None:
        raise SpecError("spec.ingress: set className (an Ingress) or gatewayRef (an HTTPRoute), not both")
    if spec.uploads.cloudinary is not None and spec.uploads.existing_claim is not None:
        raise SpecError("spec.uploads: set cloudinary or existingClaim, not both")
    clerk = spec.identity.clerk
    if spec.identity.mode == "clerk" and (
        clerk is None or not (clerk.jwks_url and clerk.issuer and clerk.webhook_secret_ref)
    ):
        raise SpecError("spec.identity.clerk: jwksUrl, issuer and webhookSecretRef are required")


def parse_spec(raw: Any) -> PlatformSpec:
    """Default, then type, then check a raw spec; raise SpecError naming the field when it cannot be used."""
    if not isinstance(raw, dict):
        raise SpecError("spec: must be an object")
    defaulted = apply_defaults(_schema(), copy.deepcopy(raw))
    try:
        spec = PlatformSpec.model_validate(defaulted)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"spec.{field}: {first['msg']}") from exc
    _check(spec)
    return spec


def platform_from(body: dict[str, Any]) -> Platform:
    meta = body.get("metadata", {})
    return Platform(name=meta["name"], namespace=meta.get("namespace") or "default", spec=parse_spec(body.get("spec")))

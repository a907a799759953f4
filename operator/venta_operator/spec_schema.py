"""The schema of `VentaPlatform.spec`: fields, defaults, descriptions and CEL rules, written once as Python.

Why Python: six services share one component schema and three data stores share the managed/external shape; as
YAML they would be repeated and drift apart. `crd.py` wraps this into the CustomResourceDefinition; the building
blocks (leaves, objects, rules, defaulting) are in `openapi.py`. The defaults here are the only defaults: the operator
applies this same schema's defaults (`spec.py`) before it reads a spec, so the API server and the operator cannot
disagree. Validation belongs here, in the API server, so that `kubectl apply` of a bad resource is refused with the
field named.
"""

from __future__ import annotations

from venta_operator.components import APP_COMPONENTS
from venta_operator.ingress_schema import ingress
from venta_operator.openapi import QUANTITY_RULE, Schema, boolean, integer, obj, quantity, rule, string

# No backslashes: the pattern sits inside a CEL string literal, where `\s` is not a valid escape.
CRON_PATTERN = "^(@(yearly|annually|monthly|weekly|daily|hourly)|([0-9*?/,LW#A-Za-z-]+ +){4}[0-9*?/,LW#A-Za-z-]+)$"


def secret_key_ref(description: str) -> Schema:
    """A reference to one key of a Secret in the platform's namespace: credentials never appear in the spec."""
    return obj(
        {
            "name": string(
                253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", description="The Secret, in the platform's namespace."
            ),
            "key": string(253, pattern=r"^[-._a-zA-Z0-9]+$", description="The key in the Secret's data."),
        },
        required=("name", "key"),
        description=description,
    )


def resources(req_cpu: str, req_mem: str, lim_cpu: str, lim_mem: str) -> Schema:
    """Requests and limits (both always set: the linter and the scheduler need them), requests <= limits."""

    def pair(cpu: str, mem: str, what: str) -> Schema:
        return obj(
            {
                "cpu": quantity(cpu, f"CPU {what} (cores, e.g. 250m)."),
                "memory": quantity(mem, f"Memory {what} (e.g. 256Mi)."),
            },
            default={},
            description=f"The container's {what}.",
        )

    def not_above(res: str) -> str:
        req, lim = f"self.requests.{res}", f"self.limits.{res}"
        return f"!isQuantity({req}) || !isQuantity({lim}) || quantity({req}).compareTo(quantity({lim})) <= 0"

    return obj(
        {
            "requests": pair(req_cpu, req_mem, "requests: what the scheduler reserves"),
            "limits": pair(lim_cpu, lim_mem, "limits: the most it may use"),
        },
        default={},
        description="Requests and limits of the container (both always set; requests may not exceed limits).",
        rules=(
            rule(not_above("cpu"), "requests.cpu must not exceed limits.cpu", ".requests.cpu"),
            rule(not_above("memory"), "requests.memory must not exceed limits.memory", ".requests.memory"),
        ),
    )


APP_RESOURCES = ("100m", "128Mi", "1", "512Mi")


def component(name: str, default_replicas: int, *, public: bool) -> Schema:
    """One service: replicas, resources, optional autoscaling (then the HPA owns the replica count)."""
    props: Schema = {
        "replicas": integer(0, 100, default_replicas, "Pods of the service (ignored while autoscaling is enabled)."),
        "resources": resources(*APP_RESOURCES),
        "autoscaling": obj(
            {
                "enabled": boolean(False, "A HorizontalPodAutoscaler owns the replica count instead of `replicas`."),
                "minReplicas": integer(1, 100, 2, "The fewest pods the autoscaler keeps."),
                "maxReplicas": integer(1, 100, 10, "The most pods the autoscaler makes."),
                "targetCPUUtilizationPercentage": integer(
                    1, 100, 70, "Average CPU use, as a percentage of the requests, that the autoscaler aims at."
                ),
            },
            default={},
            description="Scaling on CPU by a HorizontalPodAutoscaler.",
            rules=(
                rule(
                    "self.minReplicas <= self.maxReplicas",
                    "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
                    ".minReplicas",
                ),
            ),
        ),
    }
    if public:
        props["serviceType"] = string(
            16,
            enum=["ClusterIP", "NodePort", "LoadBalancer"],
            default="ClusterIP",
            description="The type of the Service clients reach it through.",
        )
    return obj(props, default={}, description=f"The {name} service's pods.")


def storage(size: str) -> Schema:
    """A StatefulSet's volume claim template cannot change, so neither can these fields once set."""
    immutable = "cannot change (it is the StatefulSet's volume claim template): create a new platform to move data"
    return obj(
        {
            "size": string(
                32,
                default=size,
                description="The volume's size; fixed once the platform exists.",
                **{"x-kubernetes-validations": [QUANTITY_RULE, rule("self == oldSelf", f"size {immutable}")]},
            ),
            "storageClassName": string(
                253,
                description="The StorageClass of the volume (default: the cluster's "
                "default class); fixed once the platform exists.",
            ),
            "deleteWithPlatform": {
                "type": "boolean",
                "default": True,
                "description": "Delete the volume when the platform is deleted (false keeps the "
                "data, and the generated credentials with it).",
            },
        },
        default={},
        description="The PersistentVolumeClaim of the StatefulSet.",
        rules=(
            rule(
                "has(self.storageClassName) == has(oldSelf.storageClassName) && "
                "(!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",
                f"storageClassName {immutable}",
                ".storageClassName",
            ),
        ),
    )


def image(default: str) -> Schema:
    return string(253, default=default, description="The image the operator runs (the official one by default).")


MANAGED = "Run by the operator in the platform's namespace."


def exclusive(name: str) -> Schema:
    return rule(
        "has(self.managed) != has(self.external)",
        f"exactly one of {name}.managed or {name}.external must be set",
        reason="FieldValueForbidden",
    )


def nats_replicas() -> Schema:
    """1 (one server, as in development) or 3 (a JetStream cluster: its meta group and streams need a majority, so
    2 would survive nothing more than 1 does). Fixed once set: a standalone server's JetStream store does not
    become a cluster member's, and a StatefulSet's pod management policy cannot change."""
    schema = integer(
        1,
        3,
        1,
        "NATS servers: 1, or 3 for a JetStream cluster that survives the loss of one pod "
        "(streams then keep 3 copies). Fixed once the platform exists.",
    )
    schema["enum"] = [1, 3]
    schema["x-kubernetes-validations"] = [
        rule(
            "self == oldSelf",
            "nats.managed.replicas cannot change once the platform exists (a standalone JetStream store does not "
            "become a cluster's): create a new platform to move to a cluster",
        )
    ]
    return schema


def nats() -> Schema:
    return obj(
        {
            "managed": obj(
                {
                    "image": image("nats:2.11-alpine"),
                    "replicas": nats_replicas(),
                    "storage": storage("1Gi"),
                    "resources": resources("50m", "64Mi", "500m", "512Mi"),
                },
                description=MANAGED,
            ),
            "external": obj(
                {
                    "url": string(
                        512,
                        pattern=r"^(nats|tls)://[^\s]+$",
                        description="The server, e.g. nats://nats.example:4222 (no credentials).",
                    ),
                    "streamReplicas": integer(
                        1,
                        5,
                        1,
                        "Replicas of the JetStream streams the services create (events, dead letters): at most the "
                        "number of servers in the external cluster.",
                    ),
                },
                required=("url",),
                description="A NATS server with JetStream that you run.",
                rules=(rule("!self.url.contains('@')", "nats.external.url must not carry credentials", ".url"),),
            ),
        },
        default={"managed": {}},
        rules=(exclusive("nats"),),
        description="NATS with JetStream: a StatefulSet the operator manages, or an external server.",
    )


def postgres() -> Schema:
    creds = obj(
        {
            "name": string(
                253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", description="The Secret, in the platform's namespace."
            ),
            "usernameKey": string(253, default="username", description="The key of the user name."),
            "passwordKey": string(253, default="password", description="The key of the password."),
        },
        required=("name",),
        description="Secret holding the user name and password of the external server.",
    )
    return obj(
        {
            "managed": obj(
                {
                    "image": image("postgres:16"),
                    "storage": storage("5Gi"),
                    "resources": resources("250m", "256Mi", "2", "1Gi"),
                },
                description=MANAGED + " Its credentials are generated into a Secret.",
            ),
            "external": obj(
                {
                    "host": string(
                        253,
                        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$",
                        description="The server's host name or address.",
                    ),
                    "port": integer(1, 65535, 5432, "The server's port."),
                    "credentialsSecretRef": creds,
                },
                required=("host", "credentialsSecretRef"),
                description="A PostgreSQL server that you run; the user may create databases.",
            ),
            "cloudNativePG": cloud_native_pg(),
        },
        default={"managed": {}},
        rules=(
            rule(
                "[has(self.managed), has(self.external), has(self.cloudNativePG)].filter(x, x).size() == 1",
                "exactly one of postgres.managed, postgres.external or postgres.cloudNativePG must be set",
                reason="FieldValueForbidden",
            ),
            rule(
                "has(self.cloudNativePG) == has(oldSelf.cloudNativePG)",
                "postgres.cloudNativePG cannot be switched on or off on an existing platform (the data would not "
                "follow): create a new platform",
            ),
        ),
        description="PostgreSQL, one database per service: a StatefulSet with generated credentials, a replicated "
        "CloudNativePG cluster, or external.",
    )


def cloud_native_pg() -> Schema:
    """High availability by delegation: CloudNativePG runs the primary, the replicas and the failover."""
    return obj(
        {
            "instances": integer(
                1,
                9,
                3,
                "PostgreSQL instances: one primary and instances-1 streaming replicas, spread over nodes; "
                "CloudNativePG promotes a replica when the primary is lost (3 or more for production).",
            ),
            "storage": obj(
                {
                    "size": string(
                        32,
                        default="5Gi",
                        description="Each instance's volume (CloudNativePG can grow it if the StorageClass allows).",
                        **{"x-kubernetes-validations": [QUANTITY_RULE]},
                    ),
                    "storageClassName": string(
                        253, description="The StorageClass of the volumes (default: the cluster's default class)."
                    ),
                },
                default={},
                description="The PersistentVolumeClaim of each instance.",
            ),
            "resources": resources("250m", "256Mi", "2", "1Gi"),
            "imageName": string(
                253,
                description="The PostgreSQL image of the instances (one of CloudNativePG's operand images, e.g. "
                "cloudnative-pg/postgresql:16 from its registry); unset, CloudNativePG's default for its version.",
            ),
        },
        description="A CloudNativePG `Cluster` (postgresql.cnpg.io/v1) created by the operator, which must be "
        "installed in the cluster; the services write through its read-write Service with its generated "
        "application credentials.",
    )


def redis_persistence() -> Schema:
    """A volume for Redis's append-only file: the Deployment becomes a StatefulSet with a volume claim template."""
    fixed = "cannot change while persistence is enabled (it is the StatefulSet's volume claim template)"
    return obj(
        {
            "enabled": boolean(
                False,
                "Keep an append-only file (appendonly yes, fsync every second) on a persistent volume: a StatefulSet "
                "instead of a Deployment, so a new pod starts with the data of the old one.",
            ),
            "size": string(
                32,
                default="1Gi",
                description="The volume's size.",
                **{"x-kubernetes-validations": [QUANTITY_RULE]},
            ),
            "storageClassName": string(
                253, description="The StorageClass of the volume (default: the cluster's default class)."
            ),
            "deleteWithPlatform": boolean(True, "Delete the volume when the platform is deleted."),
        },
        default={},
        description="Redis persistence (off by default: a cache needs none). For high availability use an external "
        "Redis (a managed service or a Sentinel-fronted endpoint) instead.",
        rules=(
            rule("!self.enabled || !oldSelf.enabled || self.size == oldSelf.size", f"size {fixed}", ".size"),
            rule(
                "!self.enabled || !oldSelf.enabled || (has(self.storageClassName) == has(oldSelf.storageClassName) && "
                "(!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName))",
                f"storageClassName {fixed}",
                ".storageClassName",
            ),
        ),
    )


def redis() -> Schema:
    return obj(
        {
            "managed": obj(
                {
                    "image": image("redis:7"),
                    "resources": resources("50m", "64Mi", "500m", "256Mi"),
                    "persistence": redis_persistence(),
                },
                description=MANAGED + " Without persistence nothing is kept (it holds caches and presence), except "
                "with events.provider redis: then an append-only file, on scratch space that a new pod does not keep.",
            ),
            "external": obj(
                {
                    "url": string(
                        512,
                        pattern=r"^rediss?://[^\s]+$",
                        description="The server, e.g. rediss://cache.example:6380/0 (no password).",
                    ),
                    "passwordSecretRef": secret_key_ref("The Redis password, if the server needs one."),
                },
                required=("url",),
                description="A Redis server that you run.",
                rules=(
                    rule(
                        "!self.url.contains('@')",
                        "redis.external.url must not carry credentials: use passwordSecretRef",
                        ".url",
                    ),
                ),
            ),
        },
        default={"managed": {}},
        rules=(exclusive("redis"),),
        description="Redis (caches, rate limits, Socket.IO fan-out, and the events with events.provider redis): a "
        "Deployment (a StatefulSet with managed.persistence), or external (a managed or Sentinel-fronted Redis for "
        "high availability).",
    )


EVENTS_NEED_JETSTREAM = (
    "!has(self.events) || self.events.provider != 'redis' "
    "|| (self.search.reindexSchedule == '' && !self.search.reindexOnCreate)"
)


def events() -> Schema:
    return obj(
        {
            "provider": string(
                16,
                enum=["jetstream", "redis"],
                default="jetstream",
                description="The event broker: NATS JetStream (spec.nats), or Redis Streams on the platform's Redis "
                "(spec.redis). With redis the managed Redis keeps an append-only file, on scratch space that a new "
                "pod does not keep: give events that must outlive the Redis pod an external Redis with persistence. "
                "The full re-index replays the JetStream stream, so redis needs search.reindexSchedule '' and "
                "search.reindexOnCreate false.",
            ),
        },
        default={},
        description="How the services publish and consume events (docs/events.md).",
    )


def search() -> Schema:
    return obj(
        {
            "provider": string(
                16,
                enum=["postgres", "algolia"],
                default="postgres",
                description="Where the vendor index lives: PostgreSQL full-text and geo search in the "
                "platform's own database, or Algolia.",
            ),
            "index": string(128, default="vendor", pattern=r"^[A-Za-z0-9_.-]+$", description="The index's name."),
            "reindexSchedule": string(
                64,
                default="0 3 * * *",
                description="Cron schedule of the full re-index; empty disables the CronJob.",
                **{
                    "x-kubernetes-validations": [
                        rule(
                            f"self == '' || self.matches('{CRON_PATTERN}')",
                            "search.reindexSchedule must be a cron schedule of 5 fields "
                            "(e.g. '0 3 * * *') or a macro such as @daily",
                        )
                    ]
                },
            ),
            "reindexOnCreate": boolean(True, "Fill the index once when the platform first comes up."),
            "algolia": obj(
                {
                    "appId": string(64, description="The Algolia application ID."),
                    "apiKeySecretRef": secret_key_ref("The Algolia admin API key."),
                },
                description="Required when provider is algolia.",
            ),
        },
        default={},
        description="The vendor search index, kept in step with the vendor service's events by search sync.",
        rules=(
            rule(
                "self.provider != 'algolia' || (has(self.algolia) && has(self.algolia.appId) "
                "&& has(self.algolia.apiKeySecretRef))",
                "search.algolia.appId and search.algolia.apiKeySecretRef are required when provider is algolia",
                ".algolia",
                "FieldValueRequired",
            ),
        ),
    )


def identity() -> Schema:
    clerk = obj(
        {
            "jwksUrl": string(
                512,
                pattern=r"^https://[^\s]+$",
                description="Your Clerk instance's JWKS, which tokens are verified against.",
            ),
            "issuer": string(512, pattern=r"^https://[^\s]+$", description="The iss claim tokens must carry."),
            "authorizedParties": {
                "type": "array",
                "maxItems": 16,
                "items": string(512, pattern=r"^https?://[^\s]+$"),
                "description": "Origins allowed in a token's azp claim (your app's frontends); "
                "when empty, azp is not checked.",
            },
            "secretKeySecretRef": secret_key_ref(
                "Clerk's secret key (optional: the services make no calls to "
                "Clerk's backend API; tokens are verified against the JWKS)."
            ),
            "webhookSecretRef": secret_key_ref("The Svix signing secret of Clerk's webhooks."),
        },
        description="Required when mode is clerk.",
    )
    needed = ("jwksUrl", "issuer", "webhookSecretRef")
    return obj(
        {
            "mode": string(
                16,
                enum=["clerk", "local"],
                default="local",
                description="Who issues users' tokens: Clerk, or the platform's own identity service "
                "(for development and tests).",
            ),
            "clerk": clerk,
            "revenueCatWebhookSecretRef": secret_key_ref("Shared secret of RevenueCat's webhook."),
        },
        default={},
        description="How users are authenticated, and the webhooks of the identity and billing providers.",
        rules=(
            rule(
                "self.mode != 'clerk' || (has(self.clerk) && "
                + " && ".join(f"has(self.clerk.{f})" for f in needed)
                + ")",
                "identity.clerk.jwksUrl, issuer and webhookSecretRef are required when mode is clerk",
                ".clerk",
                "FieldValueRequired",
            ),
        ),
    )


def resilience() -> Schema:
    return obj(
        {
            "breakerFailMax": integer(1, 1000, 5, "Failures in a row that open a circuit breaker to a dependency."),
            "breakerResetTimeoutSeconds": {
                "type": "number",
                "minimum": 1,
                "maximum": 3600,
                "default": 30,
                "description": "Seconds an open breaker waits before it lets a call "
                "through to try the dependency again.",
            },
            "grpcTimeoutSeconds": {
                "type": "number",
                "minimum": 0.1,
                "maximum": 300,
                "default": 5,
                "description": "Deadline of each call between services.",
            },
            "rateLimit": string(
                64,
                default="100/60seconds",
                pattern=r"^[1-9][0-9]*/([1-9][0-9]*)?(second|minute|hour|day)s?$",
                description="Requests per client address of the public API, e.g. 100/60seconds.",
            ),
        },
        default={},
        description="Circuit breakers, deadlines and rate limits of every service.",
    )


# Pinned, without a registry host (the runtime's default registry resolves them); the stores' alerts and dashboard
# read these exporters' metric names (observability/rules/venta-stores.yaml, dashboards/venta-stores.json).
POSTGRES_EXPORTER_IMAGE = "prometheuscommunity/postgres-exporter:v0.17.1"
NATS_EXPORTER_IMAGE = "natsio/prometheus-nats-exporter:0.17.3"
REDIS_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.74.0"
EXPORTER_RESOURCES = ("10m", "32Mi", "200m", "128Mi")


def exporters() -> Schema:
    """Prometheus exporters of the data stores: sidecars of the managed ones, a small Deployment per external one."""

    def exporter(store: str, default_image: str, extra: Schema | None = None) -> Schema:
        return obj(
            {
                "image": {**image(default_image), "minLength": 1},
                "resources": resources(*EXPORTER_RESOURCES),
                **(extra or {}),
            },
            default={},
            description=f"The {store} exporter.",
        )

    monitor_url = string(
        512,
        pattern=r"^https?://[^\s@]+$",
        description="The monitoring endpoint (port 8222) of the external NATS server, e.g. http://nats.example:8222; "
        "unset, an external NATS gets no exporter.",
    )
    return obj(
        {
            "enabled": boolean(
                False,
                "Run an exporter for each data store (a sidecar of a managed store, a Deployment for an external "
                "PostgreSQL or Redis, and for an external NATS with monitorUrl), with a ServiceMonitor when the "
                "cluster serves monitoring.coreos.com/v1, and the stores' alerts in the platform's PrometheusRule.",
            ),
            "postgres": exporter("PostgreSQL", POSTGRES_EXPORTER_IMAGE),
            "nats": exporter("NATS", NATS_EXPORTER_IMAGE, {"monitorUrl": monitor_url}),
            "redis": exporter("Redis", REDIS_EXPORTER_IMAGE),
        },
        default={},
        description="The data stores watched like the services (docs/observability.md#the-data-stores).",
    )


def observability() -> Schema:
    return obj(
        {
            "logLevel": string(
                8,
                enum=["DEBUG", "INFO", "WARNING", "ERROR"],
                default="INFO",
                description="The services' log level (JSON logs on standard output).",
            ),
            "tracing": obj(
                {
                    "endpoint": string(
                        512,
                        pattern=r"^https?://[^\s]+$",
                        description="An OTLP/gRPC collector, e.g. http://otel-collector:4317; "
                        "unset, no spans are exported.",
                    ),
                    "samplingRatio": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "default": 0.1,
                        "description": "The share of new traces recorded (parent-based).",
                    },
                },
                default={},
                description="OpenTelemetry traces of every service.",
            ),
            "serviceMonitor": obj(
                {
                    "enabled": boolean(
                        True, "A ServiceMonitor per service, when the cluster serves monitoring.coreos.com/v1."
                    ),
                    "interval": string(
                        16,
                        default="30s",
                        pattern=r"^[0-9]+(ms|s|m|h)$",
                        description="How often Prometheus scrapes the services.",
                    ),
                },
                default={},
                description="Prometheus scraping through the Prometheus Operator.",
            ),
            "alerts": obj(
                {
                    "enabled": boolean(
                        True,
                        "A PrometheusRule with the platform's alerts, when the cluster "
                        "serves monitoring.coreos.com/v1.",
                    )
                },
                default={},
                description="The platform's alerts (docs/runbooks.md).",
            ),
            "dashboards": obj(
                {
                    "enabled": boolean(
                        True, "A ConfigMap of Grafana dashboards for the Grafana sidecar (label grafana_dashboard=1)."
                    )
                },
                default={},
                description="Grafana dashboards of the platform.",
            ),
            "exporters": exporters(),
        },
        default={},
        description="Logs, traces, metrics scraping, alerts and dashboards.",
    )


def network_policy() -> Schema:
    return obj(
        {
            "enabled": boolean(True, "NetworkPolicies that let each component receive only what it needs."),
            "metricsNamespaceLabels": {
                "type": "object",
                "maxProperties": 8,
                "additionalProperties": string(63),
                "description": "Labels of the namespaces allowed to scrape metrics.",
            },
        },
        default={},
        description="NetworkPolicies of the platform's pods (enforced only by a CNI that implements them).",
    )


DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# An image name without tag or digest, as the distribution reference grammar has it: an optional registry host with
# an optional port (e.g. localhost:5001/, where Tilt pushes), then lower-case path components.
_PATH_COMPONENT = r"[a-z0-9]+([._-]+[a-z0-9]+)*"
IMAGE_REPOSITORY = rf"^([A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*$"


def uploads() -> Schema:
    """Where uploaded images go: Cloudinary, or a directory of the gateway's (a claim the user provides, or scratch)."""
    return obj(
        {
            "publicBaseUrl": string(
                512,
                pattern=r"^https?://[^\s]+$",
                description="Where clients reach the gateway (e.g. https://api.venta.example): "
                "the base of the URLs of images the platform keeps itself. Defaults "
                "to the gateway Service's in-cluster URL.",
            ),
            "cloudinary": obj(
                {
                    "urlSecretRef": secret_key_ref(
                        "A Secret key holding cloudinary://<api_key>:<api_secret>@<cloud_name>."
                    ),
                    "folder": string(
                        128,
                        default="venta",
                        pattern=r"^[A-Za-z0-9_/-]+$",
                        description="The Cloudinary folder images go to.",
                    ),
                },
                required=("urlSecretRef",),
                description="Images go to Cloudinary.",
            ),
            "existingClaim": string(
                253,
                pattern=DNS_SUBDOMAIN,
                description="A PersistentVolumeClaim in the platform's namespace for images kept by "
                "the platform itself (ReadWriteMany when gateway replicas may run on "
                "several nodes). Without it and without Cloudinary, each gateway pod "
                "keeps uploads in scratch space that is lost with the pod.",
            ),
        },
        default={},
        description="Where images uploaded through the gateway are kept.",
        rules=(
            rule(
                "!(has(self.cloudinary) && has(self.existingClaim))",
                "set uploads.cloudinary or uploads.existingClaim, not both",
                ".existingClaim",
                "FieldValueForbidden",
            ),
        ),
    )


def network() -> Schema:
    return obj(
        {
            "trustedProxies": {
                "type": "array",
                "maxItems": 32,
                "x-kubernetes-list-type": "set",
                "items": string(
                    64,
                    **{
                        "x-kubernetes-validations": [
                            rule("isIP(self) || isCIDR(self)", "must be an IP address or a CIDR, such as 10.0.0.0/8")
                        ]
                    },
                ),
                "description": "Addresses or networks of the proxies in front of the gateway (an ingress controller, "
                "a load balancer) whose X-Forwarded-For and X-Forwarded-Proto are believed. Rate limits "
                "key on the client address: without this, every user behind a proxy shares one budget.",
            },
            "grpcTLS": grpc_tls(),
        },
        default={},
        description="How the platform sits in your network.",
    )


def grpc_tls() -> Schema:
    """Mutual TLS between the services (builders/grpc_tls.py); absent, internal gRPC is plaintext."""
    return obj(
        {
            "secretName": string(
                253,
                pattern=DNS_SUBDOMAIN,
                description="A Secret in the platform's namespace with `tls.crt`, `tls.key` and `ca.crt` (what "
                "cert-manager writes for a Certificate), mounted read-only into every pod that serves or calls "
                "gRPC. The certificate must carry both server and client usages and name the services' addresses, "
                "`<platform>-<service>-headless.<namespace>.svc` (`*.<namespace>.svc` covers them all), or "
                "`serverName`.",
            ),
            "serverName": string(
                253,
                pattern=DNS_SUBDOMAIN,
                description="The one name the certificate was issued for, which clients check instead of each "
                "peer's address (e.g. `venta-grpc.internal`).",
            ),
        },
        required=("secretName",),
        description="Internal gRPC over mutual TLS: servers accept only clients with a certificate the Secret's CA "
        "signed, clients only such servers. Probes and metrics stay on the plaintext HTTP port. The files are read "
        "when a pod starts: after a renewal, restart the Deployments (`kubectl rollout restart`).",
    )


def development() -> Schema:
    return obj(
        {
            "liveReload": boolean(
                False,
                "Each service runs from a writable copy of its Python sources and restarts "
                "when one changes, so that `tilt up`'s live update reaches a running pod "
                "without a new image (docs/development.md). The root filesystem stays "
                "read-only. Never in production.",
            )
        },
        default={},
        description="For the inner loop on a local cluster; off by default.",
    )


def spec_schema() -> Schema:
    services = {c.key: component(c.name, c.default_replicas, public=c.public) for c in APP_COMPONENTS}
    return obj(
        {
            "version": string(
                128,
                pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                description="Image tag of every component; changing it migrates, then rolls.",
            ),
            "image": obj(
                {
                    "repository": string(
                        255,
                        default="venta/venta",
                        pattern=IMAGE_REPOSITORY,
                        description="The Venta image, without tag; it may name a registry "
                        "(registry.example:5000/venta).",
                    ),
                    "tag": string(
                        128,
                        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                        description="The image tag, when it is not the version (a development "
                        "build, e.g. the one `tilt up` injects); defaults to version.",
                    ),
                    "pullPolicy": string(
                        16,
                        enum=["Always", "IfNotPresent", "Never"],
                        default="IfNotPresent",
                        description="The pods' imagePullPolicy.",
                    ),
                    "pullSecrets": {
                        "type": "array",
                        "maxItems": 8,
                        "items": string(253),
                        "description": "Secrets (in the platform's namespace) the pods pull with.",
                    },
                },
                default={},
                description="The one image every Venta component runs.",
            ),
            "services": obj(services, default={}, description="Each service's replicas, resources and autoscaling."),
            "nats": nats(),
            "postgres": postgres(),
            "redis": redis(),
            "events": events(),
            "search": search(),
            "identity": identity(),
            "resilience": resilience(),
            "observability": observability(),
            "ingress": ingress(),
            "networkPolicy": network_policy(),
            "network": network(),
            "uploads": uploads(),
            "development": development(),
            "paused": {
                "type": "boolean",
                "default": False,
                "description": "Stop reconciling (same as the venta.io/pause-reconciliation annotation).",
            },
        },
        required=("version",),
        rules=(
            rule(
                EVENTS_NEED_JETSTREAM,
                "events.provider redis needs search.reindexSchedule '' and search.reindexOnCreate false: the full "
                "re-index replays the NATS JetStream stream",
                ".events.provider",
                "FieldValueInvalid",
            ),
        ),
    )

"""The runtime contract of the Venta services, as one table: command, ports, database, what each one needs.

Every builder reads this table instead of hard-coding a port or a command, so that a change to the contract (a new
service, a moved port) is one line here. It must stay a plain description: no Kubernetes objects are built here.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a component may need besides the shared ConfigMap; each need turns into secretKeyRef env vars.
DB = "db"
REDIS = "redis"
ALGOLIA = "algolia"
CLERK = "clerk"
REVENUECAT = "revenuecat"
SEARCH_DB = "search-db"  # the gateway reads the self-hosted search index (venta_search) when provider=postgres
UPLOADS = "uploads"  # Cloudinary credentials, or a writable directory for images kept by the platform itself
SIGNING_KEYS = "signing-keys"  # the local identity issuer's RSA key, generated once into a Secret
EVENTS = "events"  # publishes or consumes events: Redis's password too when spec.events.provider is redis
GRPC = "grpc"  # serves gRPC or calls a peer over it: the certificates of spec.network.grpcTLS when set


@dataclass(frozen=True)
class Component:
    """One Deployment + Service of the platform, all from the one image."""

    key: str  # the key under spec.services and status.components
    name: str  # the suffix of child names and the value of app.kubernetes.io/component
    command: tuple[str, ...]
    http_port: int  # /health, /health/ready, /metrics
    grpc_port: int | None = None
    database: str | None = None
    public: bool = False  # reachable from outside the platform (gateway, websocket)
    # Clients must keep talking to the replica they started with: Socket.IO's long-polling transport sends each
    # poll as a new request, and only the replica that accepted the handshake knows the session id.
    sticky: bool = False
    default_replicas: int = 1
    needs: frozenset[str] = frozenset()

    @property
    def ports(self) -> dict[str, int]:
        ports = {"http": self.http_port}
        if self.grpc_port is not None:
            ports["grpc"] = self.grpc_port
        return ports

    @property
    def condition(self) -> str:
        """The status condition type of this component, e.g. `SearchSyncReady`."""
        return self.key[0].upper() + self.key[1:] + "Ready"


def _serve(name: str) -> tuple[str, ...]:
    return ("venta", "serve", name)


USERS = Component("users", "users", _serve("users"), 9000, 5000, "venta_users", needs=frozenset({DB, EVENTS, GRPC}))
LOCATION = Component(
    "location", "location", _serve("location"), 9001, 5001, "venta_location", needs=frozenset({DB, GRPC})
)
VENDORS = Component(
    "vendors", "vendors", _serve("vendors"), 9005, 5005, "venta_vendors", needs=frozenset({DB, EVENTS, GRPC})
)
GATEWAY = Component(
    "gateway",
    "gateway",
    _serve("gateway"),
    5002,
    public=True,
    default_replicas=2,
    needs=frozenset({REDIS, ALGOLIA, CLERK, REVENUECAT, SEARCH_DB, UPLOADS, EVENTS, GRPC}),
)
WEBSOCKET = Component(
    "websocket",
    "websocket",
    _serve("websocket"),
    5004,
    public=True,
    default_replicas=2,
    sticky=True,
    needs=frozenset({REDIS, EVENTS, GRPC}),
)
SEARCH_SYNC = Component(
    "searchSync",
    "search-sync",
    _serve("search-sync"),
    5006,
    database="venta_search",
    needs=frozenset({DB, ALGOLIA, EVENTS}),
)
# Favourites and notifications: an HTTP API the gateway forwards to, event consumers, pushes through Redis.
NOTIFICATIONS = Component(
    "notifications",
    "notifications",
    _serve("notifications"),
    5007,
    database="venta_notifications",
    needs=frozenset({DB, REDIS, EVENTS, GRPC}),
)
# Only in identity mode "local": a small token issuer serving a JWKS, so the gateway verifies tokens one way.
IDENTITY = Component("identity", "identity", _serve("identity"), 5010, needs=frozenset({SIGNING_KEYS, GRPC}))

APP_COMPONENTS: tuple[Component, ...] = (USERS, LOCATION, VENDORS, GATEWAY, WEBSOCKET, SEARCH_SYNC, NOTIFICATIONS)
DATABASES: tuple[str, ...] = tuple(c.database for c in APP_COMPONENTS if c.database)
JWKS_PATH = "/.well-known/jwks.json"

# Data stores (when managed) and their ports.
NATS_CLIENT_PORT = 4222
NATS_MONITOR_PORT = 8222
NATS_CLUSTER_PORT = 6222  # routes between the servers of a clustered NATS
POSTGRES_PORT = 5432
REDIS_PORT = 6379

# Jobs run by the operator, from the same image.
MIGRATE_COMMAND = ("venta", "migrate", "--all")
REINDEX_COMMAND = ("venta", "reindex")

DATA_STORES = ("nats", "postgres", "redis")
COMPONENT_STATUS_KEYS: tuple[str, ...] = (*(c.key for c in APP_COMPONENTS), IDENTITY.key, *DATA_STORES)

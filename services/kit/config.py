"""Settings read from the environment (prefix `VENTA_`), validated once at start-up.

A bad variable stops the process with one line naming the variable, never a traceback deep inside a handler.
Settings are built by `load_settings()` when a process starts, not at import time, so tests can build their own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

ENV_PREFIX = "VENTA_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port; 0 asks the OS for a free one (tests)."""


class ConfigError(Exception):
    """The environment does not describe a runnable service; the message names each bad variable."""


class KitSettings(BaseSettings):
    """What every service needs: identity, logging, the HTTP port for health and metrics."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = Field(
        default="venta",
        description="The process's name in breaker names (`<service>-><peer>`), health answers, metric labels and "
        "the database's application_name; every service has its own default, leave it.",
    )
    log_level: LogLevel = Field(
        default="INFO", description="The lowest level logged; in a cluster it comes from `spec.observability.logLevel`."
    )
    host: str = Field(
        default="0.0.0.0",
        description="The interface to listen on; `0.0.0.0` is every interface (what the operator sets, so that probes "
        "and peers reach the pod's address).",
    )
    http_port: Port = Field(
        default=9000,
        description="The HTTP port: `/health`, `/health/ready` and `/metrics` (and the API of the HTTP services); "
        "0 asks the OS for a free one (tests).",
    )
    shutdown_grace_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds in-flight calls get to finish after the shutdown delay, before the process stops; "
        "keep it above the callers' `VENTA_GRPC_TIMEOUT_S` (the operator sets the larger of 10 and that + 1).",
    )
    shutdown_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=120,
        description="Seconds to keep serving after SIGTERM while not ready (gRPC health `NOT_SERVING`, HTTP "
        "`Connection: close`), so Services, DNS and peers forget the process before it stops listening (see "
        "kit/lifecycle.py); the operator sets 5.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="The event loop a served process runs on: `uvloop` (libuv's, in C: less time in the loop "
        "itself under load, bench/README.md) or `asyncio` (the standard library's).",
    )
    metrics_enabled: bool = Field(
        default=True,
        description="`false` stops the per-request `venta_*` metrics at the HTTP and gRPC edges (to measure their "
        "cost; not for production).",
    )
    gc_threshold: int = Field(
        default=10_000,
        ge=700,
        le=1_000_000,
        description="Objects allocated (less those freed) between two collections of the garbage collector's "
        "youngest generation (CPython's default: 700). Fewer, larger young collections let a request's objects "
        "die before they are promoted, so the older generations, whose collections pause every request, fill "
        "more slowly (bench/README.md).",
    )
    gc_freeze: bool = Field(
        default=True,
        description="Before listening, collect once and move every object then alive (modules, the built app) "
        "out of the garbage collector's sight (`gc.freeze()`): its full collections then scan what requests made, "
        "not the whole process (each took ~0.2 s in the gateway, in every request's path).",
    )


class DatabaseSettings(BaseSettings):
    """One PostgreSQL database per service: a URL, or the parts the operator passes from Secrets."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="A `postgresql://user:pass@host:port/db` URL; when set it overrides the `VENTA_DB_*` parts below "
        "(what `venta up` sets).",
    )
    db_host: str = Field(default="127.0.0.1", description="The PostgreSQL server's host name or address.")
    db_port: int = Field(default=5432, ge=1, le=65535, description="The PostgreSQL server's port.")
    db_name: str | None = Field(
        default=None,
        description="The service's database (each service defaults to its own); never set it for `venta migrate` of "
        "several services, which would put all their tables in it.",
    )
    db_user: str = Field(
        default="postgres", description="The PostgreSQL user; in a cluster the operator passes it from a Secret."
    )
    db_password: SecretStr = Field(
        default=SecretStr(""),
        description="The PostgreSQL user's password; in a cluster the operator passes it from a Secret, never a "
        "ConfigMap.",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Connections each process keeps open (as many again may open as overflow under load), and the "
        "size of the asyncpg pool of the vendor service's hot paths beside it; mind PostgreSQL's `max_connections` "
        "across replicas when raising it.",
    )
    db_connect_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds to wait for a connection (a new one, or a free one from the pool) before the call fails, "
        "so a dead database is a fast error.",
    )
    db_statement_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Seconds one statement may run before the call fails; raise it only for slow queries you expect.",
    )

    @model_validator(mode="after")
    def _url_or_name(self) -> DatabaseSettings:
        if self.database_url is None and not self.db_name:
            raise ValueError("set VENTA_DATABASE_URL or VENTA_DB_NAME")
        if self.database_url is not None and not self.database_url.startswith("postgresql"):
            raise ValueError("VENTA_DATABASE_URL must be a postgresql:// URL")
        return self

    @property
    def dsn(self) -> str:
        """The SQLAlchemy URL, always with the asyncpg driver."""
        if self.database_url is not None:
            scheme, _, rest = self.database_url.partition("://")
            return f"postgresql+asyncpg://{rest}" if "+" not in scheme else self.database_url
        password = quote(self.db_password.get_secret_value(), safe="")
        auth = f"{quote(self.db_user, safe='')}:{password}" if password else quote(self.db_user, safe="")
        return f"postgresql+asyncpg://{auth}@{self.db_host}:{self.db_port}/{self.db_name}"


class GrpcTlsSettings(BaseSettings):
    """Mutual TLS of internal gRPC (servers and their clients alike); unset, gRPC is plaintext (local mode, tests).

    In a cluster the operator sets these from `spec.network.grpcTLS` (a Secret mounted read-only into every pod that
    serves or calls gRPC). The files are read once, when the process starts: a renewed certificate is used from the
    next restart (see docs/operator.md).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    grpc_tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (chain) this process presents, as a gRPC server and as a client of its peers; "
        "with the key and CA files below, gRPC becomes mutual TLS (the Secret's `tls.crt`).",
    )
    grpc_tls_key_file: Path | None = Field(
        default=None, description="PEM private key of `VENTA_GRPC_TLS_CERT_FILE` (the Secret's `tls.key`)."
    )
    grpc_tls_ca_file: Path | None = Field(
        default=None,
        description="PEM CA certificate(s) peers' certificates must be signed by: servers refuse clients without "
        "one, clients refuse servers without one (the Secret's `ca.crt`).",
    )
    grpc_tls_server_name: str | None = Field(
        default=None,
        max_length=253,
        description="The name clients check every peer's certificate against instead of the host in the peer's "
        "address, for a certificate issued for one name; unset, the address's host (e.g. "
        "`<platform>-vendors-headless.<namespace>.svc`, which a certificate for `*.<namespace>.svc` covers).",
    )

    @model_validator(mode="after")
    def _all_or_nothing(self) -> GrpcTlsSettings:
        files = {
            "VENTA_GRPC_TLS_CERT_FILE": self.grpc_tls_cert_file,
            "VENTA_GRPC_TLS_KEY_FILE": self.grpc_tls_key_file,
            "VENTA_GRPC_TLS_CA_FILE": self.grpc_tls_ca_file,
        }
        missing = [name for name, value in files.items() if value is None]
        if missing and len(missing) < len(files):
            raise ValueError(f"gRPC TLS needs the certificate, its key and the CA: set {', '.join(missing)} too")
        if missing and self.grpc_tls_server_name is not None:
            raise ValueError("VENTA_GRPC_TLS_SERVER_NAME needs VENTA_GRPC_TLS_CERT_FILE, _KEY_FILE and _CA_FILE")
        for name, value in files.items():
            if value is not None and not value.is_file():
                raise ValueError(f"{name}: {value} is not a readable file")
        return self


class GrpcSettings(GrpcTlsSettings):
    """A gRPC server's port and the deadline/breaker defaults of its outgoing calls (and their TLS)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    grpc_port: Port = Field(
        default=5000,
        description="The gRPC server's port (gRPC services only); 0 asks the OS for a free one (tests).",
    )
    grpc_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Deadline, in seconds, of every call to a peer service; in a cluster it comes from "
        "`spec.resilience.grpcTimeoutSeconds`.",
    )
    grpc_max_connection_age_s: float = Field(
        default=120.0,
        ge=1,
        le=86400,
        description="Seconds (+/-10%) after which a gRPC server closes each client connection (GOAWAY; calls in "
        "flight finish), so that clients resolve the service's name again and spread over replicas added since.",
    )
    breaker_fail_max: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive failed calls to one peer that open its circuit breaker (calls then fail at once); in "
        "a cluster it comes from `spec.resilience.breakerFailMax`.",
    )
    breaker_reset_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds an open breaker waits before letting one trial call through (half-open); in a cluster it "
        "comes from `spec.resilience.breakerResetTimeoutSeconds`.",
    )


def peer_address(service: str, port: int) -> Any:
    """The field of a peer's gRPC address (`VENTA_<PEER>_ADDR`), declared alike by every service that calls it."""
    return Field(
        default=f"127.0.0.1:{port}",
        description=f"The `{service}` service's gRPC address: any gRPC target, calls going round robin over every "
        f"address it resolves to (in a cluster `dns:///<platform>-{service}-headless.<namespace>.svc:{port}`, every "
        "ready replica).",
    )


S = TypeVar("S", bound=BaseSettings)

_UNPARSABLE_FIELD = re.compile(r'field "(?P<field>\w+)"')


def env_variable(cls: type[BaseSettings], field: str) -> str:
    """The environment variable pydantic-settings reads `field` of `cls` from (its prefix, upper case: no aliases)."""
    return f"{cls.model_config.get('env_prefix') or ''}{field}".upper()


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build `cls` from the environment; on failure raise ConfigError naming every bad variable."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            name = env_variable(cls, field) if field else cls.__name__
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    except SettingsError as exc:
        # A list or mapping variable that is not JSON fails while pydantic-settings decodes it, before validation.
        found = _UNPARSABLE_FIELD.search(str(exc))
        name = env_variable(cls, found["field"]) if found else cls.__name__
        raise ConfigError(f"invalid configuration: {name}: not valid JSON ({exc.__cause__ or exc})") from None

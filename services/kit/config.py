"""Settings read from the environment (prefix `VENTA_`), validated once at start-up.

A bad variable stops the process with one line naming the variable, never a traceback deep inside a handler.
Settings are built by `load_settings()` when a process starts, not at import time, so tests can build their own.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar
from urllib.parse import quote

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "VENTA_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port; 0 asks the OS for a free one (tests)."""


class ConfigError(Exception):
    """The environment does not describe a runnable service; the message names each bad variable."""


class KitSettings(BaseSettings):
    """What every service needs: identity, logging, the HTTP port for health and metrics."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = "venta"
    log_level: LogLevel = "INFO"
    host: str = "0.0.0.0"
    http_port: Port = 9000
    shutdown_grace_s: float = Field(default=10.0, gt=0, le=300)
    shutdown_delay_s: float = Field(default=0.0, ge=0, le=120)
    """After a stop signal, keep serving this long while not ready, before stopping (see kit/lifecycle.py)."""
    metrics_enabled: bool = True
    """False stops the per-request metrics at the HTTP and gRPC edges (to measure their cost; not for production)."""


class DatabaseSettings(BaseSettings):
    """One PostgreSQL database per service: a URL, or the parts the operator passes from Secrets."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str | None = None
    db_host: str = "127.0.0.1"
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_name: str | None = None
    db_user: str = "postgres"
    db_password: SecretStr = SecretStr("")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_connect_timeout_s: float = Field(default=2.0, gt=0, le=60)
    db_statement_timeout_s: float = Field(default=5.0, gt=0, le=600)

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


class GrpcSettings(BaseSettings):
    """A gRPC server's port and the deadline/breaker defaults of its outgoing calls."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    grpc_port: Port = 5000
    grpc_timeout_s: float = Field(default=5.0, gt=0, le=300)
    grpc_max_connection_age_s: float = Field(default=120.0, ge=1, le=86400)
    """A server closes each client connection (GOAWAY, in-flight calls finish) after this long (+/-10%), so that
    clients resolve the service's name again and spread over replicas added since they connected."""
    breaker_fail_max: int = Field(default=5, ge=1, le=1000)
    breaker_reset_timeout_s: float = Field(default=30.0, gt=0, le=3600)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build `cls` from the environment; on failure raise ConfigError naming every bad variable."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            name = f"{ENV_PREFIX}{field.upper()}" if field else cls.__name__
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None

"""Settings of the local identity provider (`VENTA_*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.config import GrpcSettings, KitSettings, Port


class IdentitySettings(KitSettings, GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "identity"
    host: str = "127.0.0.1"  # it mints tokens for anyone who asks: never expose it beyond the machine
    http_port: Port = 5010
    identity_issuer: str | None = Field(default=None, description="defaults to http://127.0.0.1:<port>")
    identity_key_dir: Path | None = Field(default=None, description="where keys persist; None keeps them in memory")
    identity_authorized_party: str = "venta-local"
    identity_token_ttl_s: int = Field(default=3600, ge=10, le=7 * 86_400)
    identity_retired_keys: int = Field(default=2, ge=0, le=20)
    identity_admin_token: SecretStr | None = None
    users_addr: str = "127.0.0.1:5000"

    @property
    def issuer(self) -> str:
        return (self.identity_issuer or f"http://127.0.0.1:{self.http_port}").rstrip("/")

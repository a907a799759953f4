"""Settings of the local identity provider (`VENTA_*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.config import GrpcSettings, KitSettings, Port, peer_address


class IdentitySettings(KitSettings, GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "identity"
    host: str = Field(
        default="127.0.0.1",
        description="The interface to listen on; loopback by default because the provider mints tokens for anyone who "
        "asks: never expose it beyond the machine (in a cluster it is reached only through its Service).",
    )
    http_port: Port = 5010
    identity_issuer: str | None = Field(
        default=None,
        description="The `iss` of the tokens it mints, which the edges' `VENTA_AUTH_ISSUER` must equal; unset, "
        "`http://127.0.0.1:<VENTA_HTTP_PORT>`.",
    )
    identity_key_dir: Path | None = Field(
        default=None,
        description="Where the signing keys persist (PKCS#8 PEM files, mode 0600), so tokens survive a restart; "
        "unset, they live in memory (tests); in a cluster a read-only Secret.",
    )
    identity_authorized_party: str = Field(
        default="venta-local",
        description="The `azp` of the tokens it mints; it must be among the edges' `VENTA_AUTH_AUTHORIZED_PARTIES`.",
    )
    identity_token_ttl_s: int = Field(
        default=3600,
        ge=10,
        le=7 * 86_400,
        description="Lifetime, in seconds, of a token minted without `ttlSeconds`.",
    )
    identity_retired_keys: int = Field(
        default=2,
        ge=0,
        le=20,
        description="How many keys replaced by `POST /v1/keys/rotate` stay published, so tokens they signed stay "
        "valid.",
    )
    identity_admin_token: SecretStr | None = Field(
        default=None,
        description="When set, minting and rotation require `Authorization: Bearer <admin token>` (`venta token` "
        "sends `$VENTA_IDENTITY_ADMIN_TOKEN`); at least 16 characters. In a cluster the operator generates it into "
        "the Secret `<platform>-identity-admin` (key `token`).",
    )
    identity_require_admin_token: bool = Field(
        default=False,
        description="`true` refuses to start without `VENTA_IDENTITY_ADMIN_TOKEN`, so the provider can never mint "
        "for anyone who asks; the operator sets it in a cluster. `venta up` leaves it off.",
    )
    users_addr: str = peer_address("users", 5000)

    @field_validator("identity_admin_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (a random string: `openssl rand -base64 24`)")
        return token

    @model_validator(mode="after")
    def _admin_token_when_required(self) -> IdentitySettings:
        if self.identity_require_admin_token and self.identity_admin_token is None:
            raise ValueError(
                "VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN is true but VENTA_IDENTITY_ADMIN_TOKEN is not set: "
                "the provider would mint tokens for anyone"
            )
        return self

    @property
    def issuer(self) -> str:
        return (self.identity_issuer or f"http://127.0.0.1:{self.http_port}").rstrip("/")

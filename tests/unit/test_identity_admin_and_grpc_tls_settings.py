"""Garbage in the settings of the identity provider's admin token and of internal gRPC TLS stops the process with
one line naming the variable; the operator's side gives the identity pod a generated token and the requirement."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from services.identity.config import IdentitySettings
from services.kit.config import ConfigError, GrpcSettings, GrpcTlsSettings, load_settings
from services.kit.grpc.tls import GrpcTls
from tests.support.certificates import issue
from venta_operator.builders.pods import needs_env
from venta_operator.builders.secret import (
    IDENTITY_ADMIN_TOKEN_KEY,
    PASSWORD,
    credentials_secret,
    generated_secret_names,
    identity_admin_secret_name,
    secret_keys,
)
from venta_operator.components import IDENTITY
from venta_operator.spec import Platform, parse_spec


def test_a_required_admin_token_that_is_missing_stops_the_provider(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    monkeypatch.delenv("VENTA_IDENTITY_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN", "true")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "identity"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "VENTA_IDENTITY_ADMIN_TOKEN is not set" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"identity_admin_token": "short"}, "VENTA_IDENTITY_ADMIN_TOKEN: Value error, must be at least 16 characters"),
        ({"identity_require_admin_token": "maybe"}, "VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN"),
    ],
)
def test_admin_token_garbage_is_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(IdentitySettings, **overrides)


def test_local_mode_mints_without_a_token_unless_one_is_set() -> None:
    assert load_settings(IdentitySettings).identity_admin_token is None  # what `venta up` runs
    token = "a-token-of-24-characters"
    settings = load_settings(IdentitySettings, identity_admin_token=token, identity_require_admin_token=True)
    assert settings.identity_admin_token is not None and settings.identity_admin_token.get_secret_value() == token


def test_grpc_tls_settings_are_all_or_nothing(tmp_path: Path) -> None:
    files = issue(tmp_path)
    assert GrpcTls.from_settings(load_settings(GrpcSettings)) is None  # plaintext by default (local mode, tests)
    with pytest.raises(ConfigError, match="set VENTA_GRPC_TLS_KEY_FILE, VENTA_GRPC_TLS_CA_FILE too"):
        load_settings(GrpcSettings, grpc_tls_cert_file=files.cert)
    with pytest.raises(ConfigError, match="VENTA_GRPC_TLS_SERVER_NAME needs"):
        load_settings(GrpcTlsSettings, grpc_tls_server_name="vendors.example")
    with pytest.raises(ConfigError, match=r"VENTA_GRPC_TLS_CA_FILE: .*/nowhere/ca.crt is not a readable file"):
        load_settings(GrpcSettings, **{**files.settings(), "grpc_tls_ca_file": tmp_path / "nowhere" / "ca.crt"})
    with pytest.raises(ConfigError, match="VENTA_GRPC_TLS_SERVER_NAME"):
        load_settings(GrpcSettings, **files.settings(server_name="x" * 300))
    tls = GrpcTls.from_settings(load_settings(GrpcSettings, **files.settings(server_name="vendors.example")))
    assert tls is not None and tls.root_certificates == files.ca.read_bytes()
    assert tls.channel_options() == [("grpc.ssl_target_name_override", "vendors.example")]
    assert "PRIVATE KEY" not in repr(tls)


def test_the_operator_generates_the_admin_token_and_requires_it() -> None:
    p = Platform(name="demo", namespace="shop", spec=parse_spec({"version": "1"}))
    assert identity_admin_secret_name("demo") in generated_secret_names(p)
    assert secret_keys("demo-identity-admin", "demo") == {IDENTITY_ADMIN_TOKEN_KEY: PASSWORD}
    secret = credentials_secret(p, "demo-identity-admin", {IDENTITY_ADMIN_TOKEN_KEY: "generated-token-value-1234"})
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "identity"
    assert base64.b64decode(secret["data"]["token"]).decode() == "generated-token-value-1234"
    env = {e["name"]: e for e in needs_env(p, IDENTITY.needs, None)}
    assert env["VENTA_IDENTITY_ADMIN_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "demo-identity-admin", "key": "token"}
    }
    assert env["VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN"]["value"] == "true"
    clerk = Platform(
        name="demo",
        namespace="shop",
        spec=parse_spec(
            {
                "version": "1",
                "identity": {
                    "mode": "clerk",
                    "clerk": {
                        "jwksUrl": "https://clerk.example/.well-known/jwks.json",
                        "issuer": "https://clerk.example",
                        "webhookSecretRef": {"name": "clerk", "key": "webhook"},
                    },
                },
            }
        ),
    )
    assert identity_admin_secret_name("demo") not in generated_secret_names(clerk)  # no local issuer, no token

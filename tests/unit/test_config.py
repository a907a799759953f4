"""Settings: a bad environment stops start-up with a message naming the variable."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from services.gateway.config import GatewaySettings
from services.kit.config import ConfigError, load_settings
from services.search_sync.config import SearchSyncSettings
from services.vendors.config import VendorSettings
from services.websocket.config import WebsocketSettings
from venta_operator.config import OperatorConfig


def test_defaults_match_the_spec_ports() -> None:
    settings = load_settings(VendorSettings)
    assert (settings.grpc_port, settings.http_port, settings.db_name) == (5005, 9005, "venta_vendors")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VENTA_GRPC_PORT", "not-a-port"),
        ("VENTA_HTTP_PORT", "70000"),
        ("VENTA_LOG_LEVEL", "LOUD"),
        ("VENTA_DB_POOL_SIZE", "0"),
        ("VENTA_GRPC_TIMEOUT_S", "-1"),
        ("VENTA_EVENT_LOOP", "tokio"),
        ("VENTA_GC_THRESHOLD", "10"),
        ("VENTA_GC_THRESHOLD", "often"),
        ("VENTA_GC_FREEZE", "perhaps"),
    ],
)
def test_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings(VendorSettings)


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        (GatewaySettings, "VENTA_RATE_LIMIT_ROUTES"),
        (SearchSyncSettings, "VENTA_ALGOLIA_HOSTS"),
        (WebsocketSettings, "VENTA_CORS_ORIGINS"),
    ],
)
def test_a_json_variable_that_is_not_json_is_named(
    monkeypatch: pytest.MonkeyPatch, settings: type[BaseSettings], variable: str
) -> None:
    """A list or mapping fails while pydantic-settings decodes it, before validation: still one line naming it."""
    monkeypatch.setenv(variable, "[not json")
    with pytest.raises(ConfigError, match=variable) as raised:
        load_settings(settings)
    assert "\n" not in str(raised.value)


def test_a_bad_variable_is_named_with_its_class_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENTA_OPERATOR_WORKERS", "many")
    with pytest.raises(ConfigError, match="VENTA_OPERATOR_WORKERS"):
        load_settings(OperatorConfig)


def test_database_url_must_be_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENTA_DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ConfigError, match="VENTA_DATABASE_URL must be a postgresql"):
        load_settings(VendorSettings)


def test_dsn_from_parts_quotes_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "VENTA_DB_HOST": "db",
        "VENTA_DB_PORT": "6543",
        "VENTA_DB_USER": "venta",
        "VENTA_DB_PASSWORD": "p@ss/word",
        "VENTA_DB_NAME": "venta_vendors",
    }.items():
        monkeypatch.setenv(key, value)
    assert load_settings(VendorSettings).dsn == "postgresql+asyncpg://venta:p%40ss%2Fword@db:6543/venta_vendors"


def test_cli_reports_config_errors_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    monkeypatch.setenv("VENTA_GRPC_PORT", "abc")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "vendors"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "VENTA_GRPC_PORT" in err and "Traceback" not in err

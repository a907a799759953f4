"""The configuration reference: the committed page is current, every setting says what it does, secrets stay hidden,
and the variable names on the page are the ones pydantic-settings really reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.cli.config_reference import (
    COMMAND,
    COMPONENTS,
    GROUPS,
    description_of,
    settings_classes,
    table,
    type_of,
)
from services.cli.config_reference import render as render_reference
from services.kit.config import env_variable

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "configuration-reference.md"


def test_committed_reference_is_current() -> None:
    assert REFERENCE.read_text() == render_reference(), f"stale: run `{COMMAND}`"


def test_every_setting_has_a_description() -> None:
    missing = [
        f"{cls.__name__}.{name}"
        for cls in settings_classes()
        for name in cls.model_fields
        if not (description_of(cls, name) or "").strip()
    ]
    assert not missing, f"give these fields a Field(description=...): {missing}"


def test_a_component_redeclares_a_shared_field_only_to_change_its_default() -> None:
    """Such a field may go without a description of its own (the group's is shown); one the group does not know
    may not: it would be documented by nobody."""
    shared = {name for group in GROUPS for name in group.settings.model_fields}
    for section in COMPONENTS:
        for name, field in section.settings.model_fields.items():
            assert field.description or name in shared, f"{section.settings.__name__}.{name}"


def test_secret_defaults_are_never_printed() -> None:
    class Leaky(BaseSettings):
        """A stand-in with a real-looking secret default."""

        model_config = SettingsConfigDict(env_prefix="VENTA_TEST_")

        token: SecretStr = Field(default=SecretStr("hunter2"), description="A secret.")
        maybe: SecretStr | None = Field(default=SecretStr("hunter3"), description="Another.")

    rendered = "\n".join(table(Leaky, ["token", "maybe"]))
    assert "hunter" not in rendered
    assert "`VENTA_TEST_TOKEN`" in rendered and type_of(Leaky.model_fields["maybe"]) == "secret string"


def test_the_names_on_the_page_are_the_ones_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Set each plain string or path setting under the name the page shows; the class must pick it up."""
    for variable in [v for v in os.environ if v.startswith("VENTA_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("VENTA_DB_NAME", "venta_probe")  # the database group needs a name or a URL
    probe = "postgresql-probe"  # a string every string or path setting accepts, the database URL included
    # gRPC TLS takes its three files together, and each must exist: the others are set to a file, this one probed
    tls_file = tmp_path / probe
    tls_file.write_text("")
    tls_files = ("grpc_tls_cert_file", "grpc_tls_key_file", "grpc_tls_ca_file")
    probed = 0
    for cls in settings_classes():
        for name, field in cls.model_fields.items():
            if type_of(field) not in ("string", "path"):
                continue
            expected = str(tls_file) if name in tls_files else probe
            with monkeypatch.context() as env:
                if name.startswith("grpc_tls_"):
                    for companion in tls_files:
                        env.setenv(env_variable(cls, companion), str(tls_file))
                env.setenv(env_variable(cls, name), expected)
                value = getattr(cls(), name)
            assert str(value) == expected, f"{cls.__name__}.{name} is not read from {env_variable(cls, name)}"
            probed += 1
    assert probed > 30

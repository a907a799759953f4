"""The configuration reference, docs/configuration-reference.md, rendered from the settings classes themselves.

Every variable a process reads is a field of a pydantic-settings class, and every field carries a `description`:
this module turns them into one table per shared group (kit, database, gRPC, ...), printed once, and one per
component (its own fields, and the shared ones whose default it changes). The names are the ones pydantic-settings
reads (`env_variable`), the types and bounds those it validates, so the page cannot drift from the code; a unit test
fails when the committed file is stale. Regenerate it with

    .venv/bin/python -m services.cli.config_reference > docs/configuration-reference.md

It reads classes only (never the environment), and never prints a secret's default.
"""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode

from services.cli.registry import SERVICES
from services.kit.auth.settings import AuthSettings
from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, env_variable
from services.kit.events.settings import EventSettings
from services.kit.redis_client import RedisSettings
from services.search.settings import SearchSettings
from venta_operator.config import OperatorConfig

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python -m services.cli.config_reference > docs/configuration-reference.md"


@dataclass(frozen=True)
class Section:
    """One table of the page: a shared group or a component, under a heading that is also its anchor."""

    title: str
    settings: type[BaseSettings]
    guide: str | None = None
    """The docs page that explains the behaviour behind these settings."""

    @property
    def anchor(self) -> str:
        return self.title.lower()


GROUPS = (
    Section("kit", KitSettings),
    Section("database", DatabaseSettings),
    Section("gRPC", GrpcSettings, "architecture.md"),
    Section("events", EventSettings, "events.md"),
    Section("auth", AuthSettings, "gateway.md#authentication"),
    Section("Redis", RedisSettings),
    Section("search", SearchSettings, "search.md"),
)
GUIDES = {"gateway": "gateway.md", "identity": "identity.md", "search-sync": "search.md", "websocket": "realtime.md"}
COMPONENTS = tuple(Section(name, SERVICES[name].settings, GUIDES.get(name)) for name in sorted(SERVICES))
OPERATOR = Section("Operator", OperatorConfig, "operator.md#operating-the-operator")


def settings_classes() -> Iterator[type[BaseSettings]]:
    """Every settings class the page documents: the groups, the components, the operator."""
    for section in (*GROUPS, *COMPONENTS, OPERATOR):
        yield section.settings


def description_of(cls: type[BaseSettings], name: str) -> str | None:
    """The field's description, or, for a field a component redeclares only to change its default, the group's."""
    for klass in cls.__mro__:
        fields: dict[str, FieldInfo] = getattr(klass, "__pydantic_fields__", {})
        if name in fields and fields[name].description:
            return fields[name].description
    return None


def groups_of(cls: type[BaseSettings]) -> list[Section]:
    return [group for group in GROUPS if issubclass(cls, group.settings)]


def group_fields(group: Section) -> list[str]:
    """A group's fields, less those of another group it includes (events include Redis: listed once, under Redis)."""
    included = [other for other in GROUPS if other is not group and issubclass(group.settings, other.settings)]
    return [name for name in group.settings.model_fields if not any(name in o.settings.model_fields for o in included)]


def own_fields(cls: type[BaseSettings]) -> list[str]:
    """A component's fields: those no group of it declares, and the group fields it redeclares (a new default)."""
    shared = {name for group in groups_of(cls) for name in group.settings.model_fields}
    redeclared = inspect.get_annotations(cls)
    return [name for name in cls.model_fields if name not in shared or name in redeclared]


def _members(annotation: Any) -> list[Any]:
    """The types of an annotation, `None` left out (`str | None` is a `str` that may be unset)."""
    if get_origin(annotation) in (Union, UnionType):
        return [arg for arg in get_args(annotation) if arg is not NoneType]
    return [annotation]


def is_secret(field: FieldInfo) -> bool:
    return any(member in (SecretStr, SecretBytes) for member in _members(field.annotation))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounds(field: FieldInfo) -> list[str]:
    found = {
        key: getattr(item, key)
        for item in field.metadata
        for key in ("ge", "gt", "le", "lt", "pattern")
        if getattr(item, key, None) is not None
    }
    if "ge" in found and "le" in found:
        out = [f"{_number(found['ge'])} to {_number(found['le'])}"]
    else:
        symbols = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
        out = [f"{symbols[key]} {_number(found[key])}" for key in symbols if key in found]
    if "pattern" in found:
        out.append(f"matching `{found['pattern']}`")
    return out


def type_of(field: FieldInfo) -> str:
    """What the variable must hold, as an operator would write it, with the bounds the class validates."""
    (annotation, *rest) = _members(field.annotation)
    assert not rest, f"a union of types is not described: {field.annotation}"
    origin = get_origin(annotation)
    if is_secret(field):
        name = "secret string"
    elif origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    elif origin is list:
        name = "list, comma-separated or JSON" if NoDecode in field.metadata else "list, JSON"
    elif origin is dict:
        name = "object, JSON"
    else:
        name = {bool: "bool", int: "int", float: "float", str: "string", Path: "path"}[annotation]
    bounds = _bounds(field)
    return f"{name} ({', '.join(bounds)})" if bounds else name


def _sized(value: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"`{value}` ({value // size} {unit})"
    return f"`{value}`"


def default_of(name: str, field: FieldInfo) -> str:
    """The default as the variable would spell it; a secret's is never shown."""
    if is_secret(field):
        return "*secret*"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "*unset*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and name.endswith("_bytes"):
        return _sized(value)
    if isinstance(value, int | float):
        return f"`{_number(value)}`"
    if isinstance(value, list) and not value:
        return "*none*"
    if isinstance(value, list):
        return f"`{','.join(value)}`" if NoDecode in field.metadata else f"`{json.dumps(value)}`"
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`" if str(value) else '`""`'


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(cls: type[BaseSettings], names: list[str]) -> list[str]:
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name in names:
        field = cls.model_fields[name]
        description = description_of(cls, name)
        assert description, f"{cls.__name__}.{name} has no description"
        row = (f"`{env_variable(cls, name)}`", type_of(field), default_of(name, field), description)
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    return lines


def _source(cls: type[BaseSettings]) -> str:
    return Path(inspect.getfile(cls)).resolve().relative_to(ROOT).as_posix()


def _summary(cls: type[BaseSettings]) -> str:
    doc = cls.__dict__.get("__doc__")
    assert doc, f"{cls.__name__} needs a docstring: it introduces its table"
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")


def _links(sections: list[Section]) -> str:
    return ", ".join(f"[{section.title}](#{section.anchor})" for section in sections) or "none"


def _paragraph(text: str) -> str:
    return textwrap.fill(text, width=120, break_long_words=False, break_on_hyphens=False)


def _intro(section: Section, text: str) -> str:
    more = f" More in [{section.guide.partition('#')[0]}]({section.guide})." if section.guide else ""
    return _paragraph(text + more)


def _where(cls: type[BaseSettings]) -> str:
    return f"`{cls.__name__}` in `{_source(cls)}`"


def render() -> str:
    lines = [
        f"<!-- Generated by `{COMMAND}` from the settings classes: do not edit. -->",
        "# Configuration reference",
        "",
        _paragraph(
            "Generated from the settings classes' field descriptions: do not edit this page, edit the `description` "
            f"of the field and regenerate it with `{COMMAND}` (a unit test fails when it is stale). How settings are "
            "read, precedence, secrets and examples: [configuration.md](configuration.md)."
        ),
        "",
        _paragraph(
            "A component reads the variables of the shared groups it uses, plus its own. Variables not listed are "
            "ignored; a bad value stops the process with one line naming the variable."
        ),
        "",
        "| component | settings | shared groups |",
        "|---|---|---|",
    ]
    for section in COMPONENTS:
        groups = _links(groups_of(section.settings))
        lines.append(f"| [{section.title}](#{section.anchor}) | `{section.settings.__name__}` | {groups} |")
    lines.append(f"| [{OPERATOR.title}](#{OPERATOR.anchor}) | `{OPERATOR.settings.__name__}` | none |")
    lines += ["", "## Shared groups"]
    for group in GROUPS:
        users = [section.title for section in COMPONENTS if issubclass(section.settings, group.settings)]
        text = f"{_summary(group.settings)} {_where(group.settings)}, used by {', '.join(users)}."
        lines += [
            "",
            f"### {group.title}",
            "",
            _intro(group, text),
            "",
            *table(group.settings, group_fields(group)),
        ]
    lines += ["", "## Components"]
    for section in COMPONENTS:
        entry = SERVICES[section.title]
        text = (
            f"{_where(section.settings)}, read by `venta serve {entry.name}`: the shared groups "
            f"{_links(groups_of(section.settings))}, and below, its own settings and the shared ones whose default "
            "it changes."
        )
        lines += [
            "",
            f"### {section.title}",
            "",
            _intro(section, text),
            "",
            *table(section.settings, own_fields(section.settings)),
        ]
    lines += [
        "",
        f"## {OPERATOR.title}",
        "",
        _intro(OPERATOR, f"{_summary(OPERATOR.settings)} {_where(OPERATOR.settings)}."),
        "",
        *table(OPERATOR.settings, list(OPERATOR.settings.model_fields)),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

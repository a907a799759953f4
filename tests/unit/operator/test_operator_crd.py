"""The CRD: committed copies are current, the schema is structural, every default is valid for its own schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from venta_operator.crd import build_crd, render
from venta_operator.spec_schema import spec_schema

ROOT = Path(__file__).resolve().parents[3]
COPIES = [
    ROOT / "crds" / "ventaplatforms.venta.io.yaml",
    ROOT / "charts" / "venta-operator" / "crds" / "ventaplatforms.venta.io.yaml",
]


@pytest.mark.parametrize("path", COPIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_crd_is_current(path: Path) -> None:
    assert path.read_text() == render(), f"stale: run `python -m venta_operator.crd > {path.relative_to(ROOT)}`"


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        out += walk(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        out += walk(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        out += walk(schema["items"], f"{path}[]")
    return out


def root() -> dict[str, Any]:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_schema_is_structural() -> None:
    for path, node in walk(root()):
        if node.get("x-kubernetes-preserve-unknown-fields") or path == ".metadata":
            continue
        assert "type" in node, f"{path} has no type"
        if node["type"] == "string" and path.startswith(".spec"):
            assert "maxLength" in node, f"{path}: strings need maxLength for CEL cost estimates"


def test_defaults_respect_enums_and_bounds() -> None:
    for path, node in walk(spec_schema()):
        if "default" not in node:
            continue
        value = node["default"]
        if "enum" in node:
            assert value in node["enum"], path
        if "minimum" in node:
            assert node["minimum"] <= value <= node["maximum"], path
        allowed = {
            "string": (str,),
            "integer": (int,),
            "number": (int, float),
            "boolean": (bool,),
            "object": (dict,),
            "array": (list,),
        }[node["type"]]
        assert isinstance(value, allowed), path


def test_rules_cover_the_documented_cases() -> None:
    rules = " ".join(r["rule"] for _, n in walk(root()) for r in n.get("x-kubernetes-validations", []))
    for fragment in (
        "has(self.managed) != has(self.external)",
        "self.minReplicas <= self.maxReplicas",
        "self.provider != 'algolia'",
        "self.events.provider != 'redis'",
        "self.mode != 'clerk'",
        "self.matches(",
        "isQuantity(self)",
        "self.metadata.name.size() <= 40",
    ):
        assert fragment in rules


def test_printer_columns_and_subresources() -> None:
    version = build_crd()["spec"]["versions"][0]
    names = [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert names == ["Ready", "Version", "Gateway", "Age"]
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.services.gateway.replicas"
    assert build_crd()["spec"]["names"]["shortNames"] == ["vp"]


def test_render_is_loadable_yaml() -> None:
    assert yaml.safe_load(render()) == build_crd()


def test_every_field_documents_itself() -> None:
    """`kubectl explain vp.spec.<anything>` says what the field is: every property carries a description, written
    beside its schema in spec_schema.py / crd.py (items of arrays and maps are described by their field; metadata
    is the API server's ObjectMeta, which may carry nothing of ours)."""
    missing = [
        path
        for path, node in walk(root())
        if path not in ("", ".metadata") and not path.endswith(("[]", ".*")) and not node.get("description")
    ]
    assert missing == []

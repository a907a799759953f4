"""Building blocks of the CRD's OpenAPI v3 schema: typed leaves, objects, CEL rules, and the API server's structural
defaulting, which the operator applies to a spec itself (`spec.py`) so that both read the same defaults.

Pure: no Kubernetes client, no I/O. `spec_schema.py` writes the spec with these, `crd.py` the status.
"""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

QUANTITY_RULE = {"rule": "isQuantity(self)", "message": "must be a Kubernetes quantity, such as 500m or 1Gi"}


def string(max_length: int = 253, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def integer(minimum: int, maximum: int, default: int | None = None, description: str | None = None) -> Schema:
    schema: Schema = {"type": "integer", "format": "int32", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    if description:
        schema["description"] = description
    return schema


def boolean(default: bool, description: str) -> Schema:
    return {"type": "boolean", "default": default, "description": description}


def obj(
    properties: Schema,
    *,
    required: tuple[str, ...] = (),
    default: Any = None,
    rules: tuple[Schema, ...] = (),
    description: str | None = None,
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if description:
        schema["description"] = description
    if required:
        schema["required"] = list(required)
    if default is not None:
        schema["default"] = default
    if rules:
        schema["x-kubernetes-validations"] = list(rules)
    return schema


def rule(expression: str, message: str, field_path: str | None = None, reason: str | None = None) -> Schema:
    """A CEL validation rule; `field_path` points the error at a field, `reason` sets its kind (e.g. Required)."""
    out: Schema = {"rule": expression, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def quantity(default: str, description: str) -> Schema:
    return string(32, default=default, description=description, **{"x-kubernetes-validations": [QUANTITY_RULE]})


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Structural defaulting as the API server does it: fill missing properties, then recurse (also into defaults)."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props: Schema = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, sub in props.items():
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in [k for k in value if k not in props]:
                value[name] = apply_defaults(extra, value[name])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value

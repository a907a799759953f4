"""The VentaPlatform CustomResourceDefinition: the spec schema (`spec_schema.py`), status, columns, subresources.

`python -m venta_operator.crd` prints the YAML committed at `crds/ventaplatforms.venta.io.yaml` (and copied into
the Helm chart); a unit test fails when either copy is stale.
"""

from __future__ import annotations

import copy
import sys

import yaml

from venta_operator import API_GROUP, API_VERSION, KIND, PLURAL
from venta_operator.components import COMPONENT_STATUS_KEYS
from venta_operator.spec_schema import Schema, apply_defaults, obj, rule, spec_schema, string


def _complete_defaults(schema: Schema) -> Schema:
    """Write every object default out in full (`{}` -> `{requests: {cpu: 100m, ...}}`).

    The API server validates a default value, CEL rules included, without defaulting inside it first: a rule such
    as requests <= limits would find no `requests` in a bare `{}`.
    """
    for sub in schema.get("properties", {}).values():
        _complete_defaults(sub)
    if isinstance(schema.get("items"), dict):
        _complete_defaults(schema["items"])
    if isinstance(schema.get("default"), dict):
        schema["default"] = apply_defaults(schema, copy.deepcopy(schema["default"]))
    return schema


def _condition() -> Schema:
    return obj(
        {"type": string(64), "status": string(8, enum=["True", "False", "Unknown"]), "reason": string(128),
         "message": string(4096), "lastTransitionTime": string(64, format="date-time"),
         "observedGeneration": {"type": "integer", "format": "int64"}},
        required=("type", "status"),
    )


def status_schema() -> Schema:
    replicas = obj({"desiredReplicas": {"type": "integer"}, "replicas": {"type": "integer"},
                    "readyReplicas": {"type": "integer"}, "updatedReplicas": {"type": "integer"}})
    return obj(
        {"observedGeneration": {"type": "integer", "format": "int64"},
         "paused": {"type": "boolean"},
         "version": string(128),
         "conditions": {"type": "array", "maxItems": 32, "items": _condition(),
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
         "components": obj({k: replicas for k in COMPONENT_STATUS_KEYS}),
         "endpoints": {"type": "object", "additionalProperties": string(512)},
         "gatewaySelector": string(1024),
         "migration": obj({"job": string(253), "version": string(128), "state": string(32)}),
         "lastReindex": obj({"job": string(253), "completionTime": string(64, format="date-time")})},
    )


def build_crd() -> Schema:
    """The CRD object: schema, CEL rules, printer columns, status and scale subresources."""
    name_rules = (
        rule("self.metadata.name.size() <= 40",
             "metadata.name must be at most 40 characters: it prefixes the names of every child object",
             reason="FieldValueInvalid"),
        rule("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
             "metadata.name must be a DNS label starting with a letter (it names Services)",
             reason="FieldValueInvalid"),
    )
    root = obj({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": _complete_defaults(spec_schema()), "status": status_schema()},
               required=("spec",), rules=name_rules)
    columns = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Version", "type": "string", "jsonPath": ".status.version"},
        {"name": "Gateway", "type": "string", "jsonPath": ".status.endpoints.gateway"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".status.paused", "priority": 1},
        {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
         "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}",
                     "labels": {"app.kubernetes.io/name": "venta-operator", "app.kubernetes.io/part-of": "venta"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": "ventaplatform",
                      "shortNames": ["vp"], "categories": ["venta"]},
            "versions": [{
                "name": API_VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": root},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.services.gateway.replicas",
                              "statusReplicasPath": ".status.components.gateway.readyReplicas",
                              "labelSelectorPath": ".status.gatewaySelector"},
                },
                "additionalPrinterColumns": columns,
            }],
        },
    }


def render() -> str:
    header = "# Generated by `python -m venta_operator.crd` from operator/venta_operator/crd.py: do not edit.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())

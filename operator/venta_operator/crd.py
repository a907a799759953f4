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
from venta_operator.openapi import Schema, apply_defaults, obj, rule, string
from venta_operator.spec_schema import spec_schema


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


def _integer(description: str, **extra: str) -> Schema:
    return {"type": "integer", "description": description, **extra}


def _condition() -> Schema:
    return obj(
        {
            "type": string(64, description="Ready, Progressing, Degraded, Migrated, or a component's own."),
            "status": string(8, enum=["True", "False", "Unknown"], description="Whether the condition holds."),
            "reason": string(128, description="Why, as one CamelCase word (e.g. MigrationRunning)."),
            "message": string(4096, description="Why, for people."),
            "lastTransitionTime": string(64, format="date-time", description="When status last changed."),
            "observedGeneration": _integer("The spec's generation this condition describes.", format="int64"),
        },
        required=("type", "status"),
        description="One condition, as in every Kubernetes object.",
    )


def status_schema() -> Schema:
    def replicas(component: str) -> Schema:
        return obj(
            {
                "desiredReplicas": _integer("Pods the workload should have."),
                "replicas": _integer("Pods it has."),
                "readyReplicas": _integer("Pods that are Ready."),
                "updatedReplicas": _integer("Pods that run the current pod template."),
            },
            description=f"The {component} workload's pods.",
        )

    return obj(
        {
            "observedGeneration": _integer("The spec's generation this status describes.", format="int64"),
            "paused": {"type": "boolean", "description": "Reconciliation is paused (spec.paused or the annotation)."},
            "version": string(128, description="The version every component runs, once the rollout is complete."),
            "conditions": {
                "type": "array",
                "maxItems": 32,
                "items": _condition(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "description": "Ready, Progressing, Degraded, Migrated and one per component.",
            },
            "components": obj(
                {k: replicas(k) for k in COMPONENT_STATUS_KEYS},
                description="Each workload's pods, as its Deployment or StatefulSet counts them.",
            ),
            "endpoints": {
                "type": "object",
                "additionalProperties": string(512),
                "description": "In-cluster URLs of the parts; with spec.ingress, the public host (public, liveMap).",
            },
            "gatewaySelector": string(
                1024, description="The gateway pods' label selector (for the scale subresource)."
            ),
            "migration": obj(
                {
                    "job": string(253, description="The migration Job of the current spec."),
                    "version": string(128, description="The version it migrates to."),
                    "state": string(32, description="Succeeded, or the reason it has not yet."),
                },
                description="The schema migration that gates every rollout.",
            ),
            "lastReindex": obj(
                {
                    "job": string(253, description="The Job."),
                    "completionTime": string(64, format="date-time", description="When it completed."),
                },
                description="The last completed full re-index of the search index.",
            ),
        },
        description="What the operator observed; written by the operator only.",
    )


def build_crd() -> Schema:
    """The CRD object: schema, CEL rules, printer columns, status and scale subresources."""
    name_rules = (
        rule(
            "self.metadata.name.size() <= 40",
            "metadata.name must be at most 40 characters: it prefixes the names of every child object",
            reason="FieldValueInvalid",
        ),
        rule(
            "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            "metadata.name must be a DNS label starting with a letter (it names Services)",
            reason="FieldValueInvalid",
        ),
    )
    spec = _complete_defaults(spec_schema())
    spec["description"] = "The platform: its services, stores, search, identity and operations (docs/operator.md)."
    root = obj(
        {
            "apiVersion": {"type": "string", "description": "venta.io/v1alpha1"},
            "kind": {"type": "string", "description": "VentaPlatform"},
            # The API server allows nothing more here; it describes metadata itself (ObjectMeta).
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status_schema(),
        },
        required=("spec",),
        rules=name_rules,
        description="A whole Venta platform, run by the Venta operator.",
    )
    columns = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Version", "type": "string", "jsonPath": ".status.version"},
        {"name": "Gateway", "type": "string", "jsonPath": ".status.endpoints.gateway"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".status.paused", "priority": 1},
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
            "priority": 1,
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{API_GROUP}",
            "labels": {"app.kubernetes.io/name": "venta-operator", "app.kubernetes.io/part-of": "venta"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "ventaplatform",
                "shortNames": ["vp"],
                "categories": ["venta"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.services.gateway.replicas",
                            "statusReplicasPath": ".status.components.gateway.readyReplicas",
                            "labelSelectorPath": ".status.gatewaySelector",
                        },
                    },
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated by `python -m venta_operator.crd` from operator/venta_operator/crd.py: do not edit.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())

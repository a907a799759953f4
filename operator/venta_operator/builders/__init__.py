"""Pure builders: one module per child kind, each a function `Platform -> manifest dicts`.

Rules every builder keeps: no I/O, no clock, no randomness (generated passwords come in as arguments); the same
input gives the same dicts, key for key, so that the desired-state hash is stable and a no-op reconcile writes
nothing; values are in the form the API server stores them (quantities as given, `data` not `stringData`), so that
comparing a manifest with the live object does not report phantom drift; owner references and the desired-state
hash are added later by `plan`, in one place.

A manifest's type and its identity (`Key`: kind and name) live here, a layer below `plan`, `status` and `drift`,
so that those three share them without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from venta_operator.naming import child_name, labels

if TYPE_CHECKING:
    from venta_operator.spec import Platform

Manifest = dict[str, Any]  # a Kubernetes object as plain JSON-able dicts
Key = tuple[str, str]  # (kind, name): unique within one platform's namespace


def key_of(manifest: Manifest) -> Key:
    return manifest["kind"], manifest["metadata"]["name"]


def child_metadata(p: Platform, suffix: str, component: str | None = None, *, version: str | None = None) -> Manifest:
    """The metadata of a child: named `<platform>-<suffix>` in the platform's namespace, labelled as `component`
    (the suffix unless given) and, for what rolls with the platform's version, that version."""
    return {
        "name": child_name(p.name, suffix),
        "namespace": p.namespace,
        "labels": labels(p.name, component or suffix, version),
    }

"""Names, labels and annotations of child objects.

Child names are deterministic (`<platform>-<component>`), which is what makes a restarted operator converge to the
same objects instead of duplicating them. The labels are also how the operator finds its children again: every
child carries `managed-by` and `instance`, and one labelled list per kind replaces one GET per child.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from venta_operator import API_GROUP

MANAGED_BY = "venta-operator"
FIELD_MANAGER = "venta-operator"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"

ANNOTATION_PAUSE = f"{API_GROUP}/pause-reconciliation"
ANNOTATION_DESIRED_HASH = f"{API_GROUP}/desired-hash"
ANNOTATION_CONFIG_CHECKSUM = f"{API_GROUP}/config-checksum"


def child_name(platform: str, suffix: str) -> str:
    return f"{platform}-{suffix}"


def headless_name(platform: str, component: str) -> str:
    """The headless Service of a component: one DNS record per pod (StatefulSet peers, gRPC client balancing)."""
    return child_name(platform, f"{component}-headless")


def selector_labels(platform: str, component: str) -> dict[str, str]:
    """The immutable part: a Deployment's selector cannot change, so it never includes the version."""
    return {LABEL_NAME: "venta", LABEL_INSTANCE: platform, LABEL_COMPONENT: component}


def labels(platform: str, component: str, version: str | None = None) -> dict[str, str]:
    out = {**selector_labels(platform, component), LABEL_PART_OF: "venta", LABEL_MANAGED_BY: MANAGED_BY}
    if version:
        out[LABEL_VERSION] = version[:63]
    return out


def ownership_selector(platform: str) -> str:
    """The label selector listing every child of one platform."""
    return f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_INSTANCE}={platform}"


def platform_selector(platform: str) -> dict[str, str]:
    """Pods of one platform (all components), for NetworkPolicies and ServiceMonitors."""
    return {LABEL_NAME: "venta", LABEL_INSTANCE: platform}


def digest(value: Any, length: int = 16) -> str:
    """A stable short hash of any JSON-able value (key order does not matter)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()[:length]

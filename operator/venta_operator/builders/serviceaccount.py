"""The ServiceAccount every workload of a platform runs as: no token mounted, no role bound.

The services never call the Kubernetes API; a dedicated account (instead of `default`) makes that explicit and keeps
any RBAC someone grants to `default` away from them.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.builders.pods import service_account_name
from venta_operator.naming import labels
from venta_operator.spec import Platform


def service_account(p: Platform) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": service_account_name(p), "namespace": p.namespace, "labels": labels(p.name, "workload")},
        "automountServiceAccountToken": False,
    }

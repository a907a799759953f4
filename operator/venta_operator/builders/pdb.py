"""PodDisruptionBudgets: at most one pod of a replicated service down at a time during voluntary disruptions.

Only for components that can have two or more replicas: a budget on a single pod would either block node drains
(minAvailable 1) or promise nothing (maxUnavailable 1). A clustered NATS gets one too: its JetStream meta group and
streams (three copies) keep a majority with one server down, not with two.
"""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.components import APP_COMPONENTS
from venta_operator.naming import selector_labels
from venta_operator.spec import Platform


def _pdb(p: Platform, component: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(p, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(p.name, component)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def pdbs(p: Platform) -> list[Manifest]:
    out = []
    for c in APP_COMPONENTS:
        svc = p.spec.services[c.key]
        floor = svc.autoscaling.min_replicas if svc.autoscaling.enabled else svc.replicas
        if floor >= 2:
            out.append(_pdb(p, c.name))
    nats = p.spec.nats.managed
    if nats is not None and nats.clustered:
        out.append(_pdb(p, "nats"))
    return out

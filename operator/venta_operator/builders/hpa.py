"""HorizontalPodAutoscalers for the services whose `autoscaling.enabled` is true (CPU utilisation target)."""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.components import APP_COMPONENTS
from venta_operator.naming import child_name
from venta_operator.spec import Platform


def hpas(p: Platform) -> list[Manifest]:
    out = []
    for c in APP_COMPONENTS:
        scaling = p.spec.services[c.key].autoscaling
        if not scaling.enabled:
            continue
        out.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": child_metadata(p, c.name),
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": child_name(p.name, c.name),
                    },
                    "minReplicas": scaling.min_replicas,
                    "maxReplicas": scaling.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu},
                            },
                        }
                    ],
                },
            }
        )
    return out

"""The CronJob of the periodic full re-index (none when `search.reindexSchedule` is empty).

`Forbid` concurrency: a re-index swaps a fresh index in at its end, so two at once would only waste the backend.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.builders.job import REINDEX, reindex_pod
from venta_operator.naming import child_name, labels
from venta_operator.spec import Platform


def reindex_cronjob_name(platform: str) -> str:
    return child_name(platform, REINDEX)


def reindex_cronjob(p: Platform) -> Manifest | None:
    schedule = p.spec.search.reindex_schedule
    if not schedule:
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": reindex_cronjob_name(p.name),
            "namespace": p.namespace,
            "labels": labels(p.name, REINDEX, p.spec.version),
        },
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels(p.name, REINDEX, p.spec.version)},
                "spec": {"backoffLimit": 3, "activeDeadlineSeconds": 3600, "template": reindex_pod(p)},
            },
        },
    }

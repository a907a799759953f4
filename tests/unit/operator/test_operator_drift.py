"""Drift detection: API-server defaults are not drift, hand edits and removed children are."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.operator_plans import full_plan, make
from venta_operator.drift import is_subset, needs_apply, quantity
from venta_operator.naming import ANNOTATION_DESIRED_HASH


def live_copy(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: our fields plus defaults and status."""
    live = copy.deepcopy(desired)
    live["metadata"].update(uid="x", resourceVersion="7", generation=1, creationTimestamp="2024-01-01T00:00:00Z")
    live["spec"]["progressDeadlineSeconds"] = 600
    pod = live["spec"]["template"]["spec"]
    pod["dnsPolicy"] = "ClusterFirst"
    for c in pod["containers"]:
        c["terminationMessagePath"] = "/dev/termination-log"
        c["resources"]["limits"]["cpu"] = "1000m"  # an equal quantity, written differently
    live["status"] = {"replicas": 2}
    return live


def deployment() -> dict[str, Any]:
    return next(
        m for m in full_plan(make()).apply if m["metadata"]["name"] == "demo-users" and m["kind"] == "Deployment"
    )


def test_live_with_defaults_is_not_drift() -> None:
    want = deployment()
    assert needs_apply(want, live_copy(want)) is None


def test_missing_child_is_applied() -> None:
    assert needs_apply(deployment(), None) == "missing"


def test_hand_edit_is_drift() -> None:
    want = deployment()
    live = live_copy(want)
    live["spec"]["replicas"] = 7
    assert needs_apply(want, live) == "drifted"
    live = live_copy(want)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    assert needs_apply(want, live) == "drifted"


def test_spec_change_is_seen_through_the_hash() -> None:
    want = deployment()
    live = live_copy(want)
    live["metadata"]["annotations"][ANNOTATION_DESIRED_HASH] = "0" * 16
    assert needs_apply(want, live) == "changed"


def test_empty_values_match_omitted_fields() -> None:
    assert is_subset({"ingress": [], "annotations": {}}, {})
    assert not is_subset({"ingress": [{"ports": []}]}, {})


def test_quantities_compare_by_value_only_in_resources() -> None:
    assert quantity("1000m") == quantity("1") and quantity("1Gi") == quantity("1024Mi")
    assert quantity("latest") is None
    assert is_subset({"resources": {"limits": {"cpu": "1"}}}, {"resources": {"limits": {"cpu": "1000m"}}})
    assert not is_subset({"image": "1"}, {"image": "1000m"})


def test_lists_must_match_item_by_item() -> None:
    assert is_subset({"args": ["a", "b"]}, {"args": ["a", "b"]})
    assert not is_subset({"args": ["a", "b"]}, {"args": ["a"]})
    assert not is_subset({"args": ["a"]}, {"args": ["a", "b"]})

"""spec.development.liveReload: the services run from a writable copy of their sources and restart on change, for
Tilt's live update; spec.image.tag: the image Tilt injects. Off by default, and then nothing in the pods changes."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.support.operator_plans import env_of, full_plan, make, pod_specs
from venta_operator.builders.development import SOURCE_DIRS, with_live_reload
from venta_operator.components import APP_COMPONENTS, IDENTITY
from venta_operator.spec import SpecError

LIVE = {"development": {"liveReload": True}}
SERVICES = [c.name for c in [*APP_COMPONENTS, IDENTITY]]


def pods(spec: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return dict(pod_specs(full_plan(make(spec)).apply))


def test_off_by_default_and_then_the_pods_are_exactly_the_hardened_ones() -> None:
    assert make().spec.development.live_reload is False
    for name, pod in pods().items():
        assert "initContainers" not in pod, name
        assert all(v["name"] != "sources" for v in pod["volumes"]), name
        assert all(c.get("command", [""])[0] != "watchfiles" for c in pod["containers"]), name


@pytest.mark.parametrize("component", SERVICES)
def test_live_reload_runs_the_same_command_under_watchfiles_from_a_writable_copy(component: str) -> None:
    plain = pods()[f"Deployment/demo-{component}"]
    live = pods(LIVE)[f"Deployment/demo-{component}"]
    before, after = plain["containers"][0], live["containers"][0]

    assert after["command"][0] == "watchfiles"
    assert shlex.split(after["command"][-2]) == before["command"]  # the service's own command, unchanged
    assert after["command"][-1] == "/app/services"
    mounts = {m["mountPath"]: m for m in after["volumeMounts"]}
    for d in SOURCE_DIRS:
        assert mounts[f"/app/{d}"] == {"name": "sources", "mountPath": f"/app/{d}", "subPath": d}
    assert {"name": "sources", "emptyDir": {"sizeLimit": "256Mi"}} in live["volumes"]

    (init,) = live["initContainers"]
    assert init["image"] == after["image"] == before["image"]
    assert init["command"][:3] == ["cp", "-R", "--preserve=mode,timestamps"]  # the image's .pyc files stay valid
    assert init["volumeMounts"] == [{"name": "sources", "mountPath": "/sources"}]
    # The hardening stays: the sources volume is the only writable place added.
    for c in (after, init):
        assert c["securityContext"] == before["securityContext"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert live["securityContext"] == plain["securityContext"]
    assert env_of(after)["VENTA_SHUTDOWN_DELAY_S"] == "0"  # a restart takes a second, not the drain delay
    # Everything else is as in production.
    for key in ("ports", "readinessProbe", "startupProbe", "resources", "envFrom"):
        assert after.get(key) == before.get(key), key
    # the same liveness check, tolerating the restart every save causes for two minutes
    assert {**after["livenessProbe"], "failureThreshold": before["livenessProbe"]["failureThreshold"]} == before[
        "livenessProbe"
    ]
    assert after["livenessProbe"]["failureThreshold"] * after["livenessProbe"]["periodSeconds"] == 120


def test_jobs_and_stores_are_never_wrapped() -> None:
    for name, pod in pods(LIVE).items():
        if name.startswith(("Job/", "CronJob/", "StatefulSet/", "Deployment/demo-redis")):
            assert "initContainers" not in pod, name  # a Job under watchfiles would never end
            assert all(c.get("command", [""])[0] != "watchfiles" for c in pod["containers"]), name


def test_with_live_reload_does_not_touch_its_input() -> None:
    pod = pods()["Deployment/demo-gateway"]
    snapshot = repr(pod)
    with_live_reload(pod)
    assert repr(pod) == snapshot


def test_image_tag_overrides_the_version_and_may_name_a_registry_with_a_port() -> None:
    assert make().image == "venta/venta:1.2.3"
    p = make({"image": {"repository": "localhost:5001/venta_venta", "tag": "tilt-0123abcd"}})
    assert p.image == "localhost:5001/venta_venta:tilt-0123abcd"
    for name, pod in pods({"image": {"repository": "localhost:5001/venta_venta", "tag": "tilt-1"}}).items():
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            if c["name"] not in ("nats", "postgres", "redis"):
                assert c["image"] == "localhost:5001/venta_venta:tilt-1", name


def test_garbage_development_settings_are_refused() -> None:
    with pytest.raises(SpecError, match=r"spec\.development\.liveReload"):
        make({"development": {"liveReload": "sometimes"}})

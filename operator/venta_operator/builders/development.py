"""Live reload for the inner loop on a local cluster (`spec.development.liveReload`, docs/development.md).

`tilt up` syncs changed Python files into running containers instead of building an image. The hardened pod cannot
take them as it is: its root filesystem is read-only and nothing would restart the process. So, only when the spec
asks for it, a service's pod gets
- an init container that copies the image's sources (/app/services, /app/operator) into an emptyDir, mounted over
  the same paths in the service's container: the one writable place, for Tilt's `tar`;
- its command run under watchfiles, which restarts the process when a Python file there changes;
- no drain delay, so that a restart takes a second, not the seconds that protect traffic during a rollout.
Everything else (read-only root, non-root, no capabilities) stays as it is. Jobs are never wrapped: they must end.
"""

from __future__ import annotations

import copy
import shlex

from venta_operator.builders import Manifest

SOURCES_VOLUME = "sources"
SOURCE_DIRS = ("services", "operator")
APP_DIR = "/app"
COPY_TO = "/sources"
# watchfiles sends SIGINT and waits this long before it kills the old process.
SIGINT_TIMEOUT_S = 10
COPY_RESOURCES: Manifest = {
    "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "64Mi"},
    "limits": {"cpu": "500m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
}


def reload_command(command: list[str], watched: str = f"{APP_DIR}/services") -> list[str]:
    """`command` run by watchfiles: started once, restarted whenever a Python file under `watched` changes."""
    return [
        "watchfiles",
        "--filter",
        "python",
        "--target-type",
        "command",
        "--sigint-timeout",
        str(SIGINT_TIMEOUT_S),
        shlex.join(command),
        watched,
    ]


def copy_sources_container(container: Manifest) -> Manifest:
    """Copies the image's sources into the volume; timestamps kept, so the image's compiled .pyc files stay valid."""
    return {
        "name": "copy-sources",
        "image": container["image"],
        "imagePullPolicy": container["imagePullPolicy"],
        "command": ["cp", "-R", "--preserve=mode,timestamps", *(f"{APP_DIR}/{d}" for d in SOURCE_DIRS), f"{COPY_TO}/"],
        "resources": COPY_RESOURCES,
        "securityContext": copy.deepcopy(container["securityContext"]),
        "volumeMounts": [{"name": SOURCES_VOLUME, "mountPath": COPY_TO}],
    }


RELOAD_LIVENESS_FAILURES = 12  # x the 10 s period: a reload restarting every service's process is not a hang


def with_live_reload(pod: Manifest) -> Manifest:
    """A copy of a service's pod spec (one container of the Venta image) that reloads its sources."""
    out = copy.deepcopy(pod)
    container = out["containers"][0]
    container["command"] = reload_command(container["command"])
    container["env"] = [{**e, "value": "0"} if e["name"] == "VENTA_SHUTDOWN_DELAY_S" else e for e in container["env"]]
    container["volumeMounts"] += [
        {"name": SOURCES_VOLUME, "mountPath": f"{APP_DIR}/{d}", "subPath": d} for d in SOURCE_DIRS
    ]
    if "livenessProbe" in container:  # every service restarts at once on a save: on a small node that takes a while
        container["livenessProbe"] = {**container["livenessProbe"], "failureThreshold": RELOAD_LIVENESS_FAILURES}
    out["initContainers"] = [copy_sources_container(container)]
    out["volumes"] = [*out["volumes"], {"name": SOURCES_VOLUME, "emptyDir": {"sizeLimit": "256Mi"}}]
    return out

"""Run one container of a pod template the operator builds, with podman, the way a kubelet would.

Why: the store images (tests/cluster/images/) stand in for the official ones the operator defaults to. Running them
from the operator's own manifests (command, args and their $(VAR)s, env from Secrets, user, read-only root,
dropped capabilities, emptyDirs, the claim, ConfigMap files, probes) checks each image against what the operator
really asks of it, without a Kubernetes node. Only the fields the store workloads use are translated; any other
field is refused, so that a builder growing one cannot be silently ignored here.

Networking is slirp4netns: a user-mode network private to the container (no bridge, no iptables rule on the host),
with each container port published on a random 127.0.0.1 port. Clients arrive from a non-loopback address, as
from another pod, so PostgreSQL's password rule for remote hosts applies. Standard library only, like kwok.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.cluster_tools import ClusterError
from tests.cluster.local_images import LocalImages

Manifest = dict[str, Any]

# Fields translated below, and fields that do not change how a container runs here (requests and limits,
# the pull policy: the image is local).
CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "ports",
    "resources",
    "securityContext",
    "volumeMounts",
    "startupProbe",
    "livenessProbe",
    "readinessProbe",
}
POD_FIELDS = {
    "serviceAccountName",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "securityContext",
    "containers",
    "volumes",
    "terminationGracePeriodSeconds",
    "affinity",
}


@dataclass
class PodContainer:
    """A running container: its name, its ports on 127.0.0.1 (by port name) and the manifest it came from."""

    images: LocalImages
    name: str
    ports: dict[str, int]
    container: Manifest

    def probe(self, kind: str) -> bool:
        """One attempt of the container's ``readinessProbe`` (or ``livenessProbe``, ``startupProbe``)."""
        spec = self.container[kind]
        if "exec" in spec:
            return self.images.podman("exec", self.name, *spec["exec"]["command"], check=False).returncode == 0
        if "httpGet" in spec:
            url = f"http://127.0.0.1:{self.ports[spec['httpGet']['port']]}{spec['httpGet']['path']}"
            try:
                with urllib.request.urlopen(url, timeout=spec.get("timeoutSeconds", 1)) as response:
                    status: int = response.status
                    return 200 <= status < 400
            except OSError:
                return False
        try:
            socket.create_connection(("127.0.0.1", self.ports[spec["tcpSocket"]["port"]]), timeout=2).close()
            return True
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.probe("readinessProbe"):
            if time.monotonic() > deadline or not self.running():
                raise ClusterError(f"{self.name} not ready after {timeout}s:\n{self.logs()}")
            time.sleep(0.5)

    def running(self) -> bool:
        state = self.images.podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        done = self.images.podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def terminate(self, grace: int = 30) -> int:
        """SIGTERM, as the kubelet sends it (not the image's STOPSIGNAL), then the exit code."""
        self.images.podman("kill", "--signal", "TERM", self.name)
        done = self.images.podman("wait", self.name, timeout=grace)
        return int(done.stdout.strip())


def _size(limit: str) -> str:
    return limit.replace("Mi", "m").replace("Gi", "g")


def _expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's $(VAR) expansion in command and args (only defined variables; $$ escapes)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


def _volume_args(
    pod: Manifest, container: Manifest, workdir: Path, config_maps: Mapping[str, Mapping[str, str]], gid: int
) -> list[str]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    args: list[str] = []
    for mount in container.get("volumeMounts", []):
        target, volume = mount["mountPath"], volumes.get(mount["name"])
        if volume is None:  # the StatefulSet's claim: a directory handed to the pod's group, like fsGroup
            path = workdir / mount["name"]
            path.mkdir(mode=0o2775, exist_ok=True)
            os.chown(path, 0, gid)
            path.chmod(0o2775)
            args += ["--volume", f"{path}:{target}"]
        elif "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            if target == "/dev/shm":  # podman always mounts one
                args.append(f"--shm-size={_size(size or '64Mi')}")
            else:
                args += ["--tmpfs", f"{target}:mode=0777" + (f",size={_size(size)}" if size else "")]
        elif "configMap" in volume:
            data = config_maps[volume["configMap"]["name"]]
            path = workdir / mount["name"]
            path.mkdir(exist_ok=True)
            for item in volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                (path / item["path"]).write_text(data[item["key"]])
            args += ["--volume", f"{path}:{target}:ro"]
        else:
            raise ClusterError(f"volume {volume} is not translated to podman")
    return args


@contextmanager
def run_pod_container(
    images: LocalImages,
    pod: Manifest,
    *,
    image: str,
    workdir: Path,
    secrets_data: Mapping[str, Mapping[str, str]] | None = None,
    config_maps: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[PodContainer]:
    """Start the pod's only container from ``image``; removed (with its anonymous volumes) on exit."""
    unknown = set(pod) - POD_FIELDS
    [container] = pod["containers"]
    unknown |= set(container) - CONTAINER_FIELDS
    if unknown:
        raise ClusterError(f"not translated to podman: {sorted(unknown)}")
    security, pod_security = container.get("securityContext", {}), pod.get("securityContext", {})
    uid, gid = pod_security["runAsUser"], pod_security.get("runAsGroup", pod_security["runAsUser"])
    assert uid != 0 or not pod_security.get("runAsNonRoot"), "runAsNonRoot with UID 0"
    env: dict[str, str] = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        env[var["name"]] = (secrets_data or {})[ref["name"]][ref["key"]] if ref else var["value"]
    name = f"venta-pod-{secrets.token_hex(4)}"
    args = [
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "slirp4netns",
        "--user",
        f"{uid}:{gid}",
        "--pull=never",
        *(f"--env={k}={v}" for k, v in env.items()),
    ]
    if security.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]  # only the declared volumes are writable
    if "ALL" in security.get("capabilities", {}).get("drop", []):
        args.append("--cap-drop=ALL")
    if security.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    args += [f"--publish=127.0.0.1::{p['containerPort']}" for p in container.get("ports", [])]
    args += _volume_args(pod, container, workdir, config_maps or {}, gid)
    if "command" in container:
        args.append("--entrypoint=" + json.dumps([_expand(c, env) for c in container["command"]]))
    args += [image, *(_expand(a, env) for a in container.get("args", []))]
    images.podman(*args)
    try:
        ports = {}
        for port in container.get("ports", []):
            published = images.podman("port", name, f"{port['containerPort']}/tcp").stdout.strip()
            ports[port["name"]] = int(published.rsplit(":", 1)[1])
        yield PodContainer(images, name, ports, container)
    finally:
        with suppress(ClusterError, subprocess.SubprocessError):
            images.podman("rm", "--force", "--volumes", name)

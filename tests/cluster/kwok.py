"""A throwaway Kubernetes cluster for tests: the real control plane as local processes, with fake nodes.

Why this exists: the operator must be tested against a real kube-apiserver (CEL validation rules, admission,
server-side apply, the real Deployment/Job/StatefulSet controllers), but the machines that run the tests have no
container engine, so kind/k3d/minikube cannot run. ``kwokctl`` with its *binary* runtime starts etcd,
kube-apiserver, kube-controller-manager and kube-scheduler as plain processes, and kwok's controller plays the
kubelet: it makes fake nodes Ready and reports scheduled pods as Running (and Job pods as Succeeded), without running
any container. ``tests/cluster/build.sh`` compiles all of these from Go sources and writes their paths to
``~/.cache/venta/cluster-tools.env``, which this module reads. See docs/test-cluster.md.

Only the standard library is used, so the module works before (and without) the project's own dependencies.

Typical use::

    with KwokCluster(nodes=2) as cluster:
        cluster.kubectl("get", "nodes")
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from tests.cluster.cluster_pki import write_pki
from tests.cluster.cluster_tools import BUILD_SCRIPT, ClusterError, ClusterTools, build_tools, cache_dir, run_command

__all__ = ["BUILD_SCRIPT", "ClusterError", "ClusterTools", "Kubectl", "KwokCluster", "build_tools", "cache_dir"]

#: Name of the StorageClass that :meth:`KwokCluster.setup_storage` marks as the cluster default.
DEFAULT_STORAGE_CLASS = "standard"

# Objects are written as JSON, which kubectl accepts wherever it accepts YAML: no YAML library is needed.
Manifest = Mapping[str, Any]


class Kubectl(Protocol):
    """The type of :meth:`KwokCluster.kubectl`, for code (e.g. pytest fixtures) that hands it around."""

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]: ...


_OWNED_WORKDIR = re.compile(r"^(venta-(\d+)-[0-9a-f]{6})-")


def reap_stale_clusters(tools: ClusterTools | None = None) -> list[str]:
    """Delete clusters left behind by test processes that died without cleaning up (e.g. killed by SIGKILL).

    Only the work directories this module creates with a default name (``venta-<pid>-<hex>-*`` in the temporary
    directory) are considered, and only when process <pid> no longer exists. Returns the names deleted.
    """
    reaped: list[str] = []
    for workdir in Path(tempfile.gettempdir()).glob("venta-*-*-*"):
        match = _OWNED_WORKDIR.match(workdir.name)
        if not match or not workdir.is_dir() or _process_exists(int(match.group(2))):
            continue
        cluster = KwokCluster.adopt(match.group(1), workdir, tools=tools)
        cluster.stop()
        reaped.append(cluster.name)
    return reaped


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class KwokCluster:
    """One kwokctl cluster (binary runtime), usable as a context manager.

    ``start()`` creates the cluster under a private temporary ``KWOK_WORKDIR`` (so that clusters of parallel test
    runs never share state with each other or with a developer's ``~/.kwok``), adds ``nodes`` fake nodes, writes a
    kubeconfig file and prepares storage (see :meth:`setup_storage`). ``stop()`` deletes the cluster and that
    directory. A failure inside ``start()`` stops what was started before raising, and an ``atexit`` hook stops a
    cluster its owner forgot, so no etcd or kube-apiserver process outlives the test run on a normal exit; the
    clusters of a killed test run are deleted by the next ``start()`` (see :func:`reap_stale_clusters`).
    """

    def __init__(
        self,
        name: str | None = None,
        nodes: int = 2,
        *,
        tools: ClusterTools | None = None,
        apiserver_port: int | None = None,
        persistent_volumes: int = 10,
        ready_timeout: float = 180.0,
        workdir: Path | None = None,
        create_args: Sequence[str] = (),
        api_server_names: Sequence[str] = (),
    ) -> None:
        """Describe a cluster; nothing runs before :meth:`start`.

        ``name`` defaults to a unique one. ``apiserver_port`` defaults to a free port chosen by kwokctl (it picks
        random free ports for all components). ``persistent_volumes`` hostPath PVs of 1Gi are created up front
        for StatefulSets' volume claim templates, since nothing provisions volumes here. ``workdir`` (created, and
        deleted by :meth:`stop`) replaces the temporary ``KWOK_WORKDIR``, for an owner that reaps its own clusters
        (real_node.py); ``create_args`` are more ``kwokctl create cluster`` flags; ``api_server_names`` are more
        names or addresses the API server's certificate must be valid for (see cluster_pki.py).
        """
        self.name = name or f"venta-{os.getpid()}-{secrets.token_hex(3)}"
        self.nodes = nodes
        self.apiserver_port = apiserver_port
        self.persistent_volumes = persistent_volumes
        self.ready_timeout = ready_timeout
        self._tools = tools
        self._workdir_wanted = workdir
        self._create_args = list(create_args)
        self._api_server_names = list(api_server_names)
        self._workdir: Path | None = None
        self._kubeconfig: Path | None = None
        self._created = False

    @classmethod
    def adopt(cls, name: str, workdir: Path, *, tools: ClusterTools | None = None) -> KwokCluster:
        """A cluster created earlier (e.g. by a process that died) in ``workdir``, for :meth:`stop` to delete it."""
        cluster = cls(name, tools=tools)
        cluster._workdir, cluster._created = workdir, True
        return cluster

    # ---- paths ---------------------------------------------------------------------------------------------------
    @property
    def tools(self) -> ClusterTools:
        """The binaries in use (read from build.sh's env file on first use)."""
        if self._tools is None:
            self._tools = ClusterTools.from_env_file()
        return self._tools

    @property
    def kubeconfig(self) -> Path:
        """Path of a kubeconfig file whose current context is this cluster's admin."""
        if self._kubeconfig is None:
            raise ClusterError("the cluster is not started")
        return self._kubeconfig

    @property
    def workdir(self) -> Path:
        """The cluster's private ``KWOK_WORKDIR``: kwokctl keeps configs, PKI and component logs there."""
        if self._workdir is None:
            raise ClusterError("the cluster is not started")
        return self._workdir

    @property
    def kubectl_binary(self) -> str:
        """kubectl of the cluster's own version when build.sh made one, else the one on PATH."""
        return str(self.tools.kubectl) if self.tools.kubectl else "kubectl"

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> KwokCluster:
        """Create the cluster and wait until its nodes are Ready; on any failure, clean up and raise."""
        if self._workdir is not None:
            raise ClusterError(f"cluster {self.name} is already started")
        reap_stale_clusters(self.tools)
        if self._workdir_wanted is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        else:
            self._workdir = self._workdir_wanted
            self._workdir.mkdir(mode=0o700, parents=True)
        atexit.register(self.stop)
        try:
            if self._api_server_names:
                write_pki(self._workdir / "clusters" / self.name / "pki", self._api_server_names)
            self._create()
            self._kwokctl("scale", "node", "--replicas", str(self.nodes))
            kubeconfig = self._workdir / "kubeconfig"
            kubeconfig.write_text(self._kwokctl("get", "kubeconfig").stdout)
            kubeconfig.chmod(0o600)
            self._kubeconfig = kubeconfig
            if self.nodes:
                self._wait_for_nodes()
            self.setup_storage(self.persistent_volumes)
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        tools = self.tools
        args = [
            "create",
            "cluster",
            # Forced: kwokctl would otherwise pick docker, whose client is installed here without an engine.
            "--runtime",
            "binary",
            "--kube-apiserver-binary",
            str(tools.kube_apiserver),
            "--kube-controller-manager-binary",
            str(tools.kube_controller_manager),
            "--kube-scheduler-binary",
            str(tools.kube_scheduler),
            "--etcd-binary",
            str(tools.etcd),
            "--kwok-controller-binary",
            str(tools.kwok_controller),
            # RBAC and the default admission plugins, as in a real cluster (kwokctl can turn them off).
            "--kube-authorization=true",
            "--kube-admission=true",
            "--quiet-pull",
            "--wait",
            f"{int(self.ready_timeout)}s",
            *self._create_args,
        ]
        if self.apiserver_port:
            args += ["--kube-apiserver-port", str(self.apiserver_port)]
        self._created = True  # set first: a half-created cluster must be deleted too
        self._kwokctl(*args, timeout=self.ready_timeout + 60)

    def _wait_for_nodes(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            result = self.kubectl("get", "nodes", "-o", "json", check=False)
            if result.returncode == 0:
                items = json.loads(result.stdout)["items"]
                ready = [
                    node
                    for node in items
                    if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))
                ]
                if len(ready) >= self.nodes:
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.nodes} nodes not Ready after {self.ready_timeout}s:\n{result.stdout}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Delete the cluster (stopping its processes) and its work directory. Safe to call more than once."""
        atexit.unregister(self.stop)
        workdir, self._workdir, self._kubeconfig = self._workdir, None, None
        if workdir is None:
            return
        try:
            if self._created:
                self._created = False
                self._kwokctl("delete", "cluster", workdir=workdir, check=False, timeout=120)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> KwokCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- commands ------------------------------------------------------------------------------------------------
    def _kwokctl(
        self, *args: str, workdir: Path | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kwokctl --name <name> ...`` against this cluster's private work directory."""
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(workdir or self.workdir)
        env["KWOK_RUNTIME"] = "binary"
        if self.tools.kube_version:
            # No flag for it: kwokctl reads the version from the binaries, and this only keeps its defaults
            # (e.g. the etcd version it assumes) in line with them.
            env["KWOK_KUBE_VERSION"] = self.tools.kube_version
        return run_command([str(self.tools.kwokctl), "--name", self.name, *args], env=env, check=check, timeout=timeout)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise :class:`ClusterError` (with stderr) on failure if ``check``."""
        return run_command(
            [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            check=check,
            timeout=timeout,
        )

    def apply(self, *manifests: Manifest) -> None:
        """``kubectl apply`` the given objects (server-side, so repeated applies of the same object are fine)."""
        items = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
        self.kubectl("apply", "--server-side", "--field-manager=venta-tests", "-f", "-", input=json.dumps(items))

    def logs(self, component: str) -> str:
        """Log of one control-plane component (e.g. ``kube-apiserver``), for diagnosing a failed test."""
        return self._kwokctl("logs", component, check=False).stdout

    # ---- storage -------------------------------------------------------------------------------------------------
    def setup_storage(self, persistent_volumes: int = 10, *, capacity: str = "1Gi") -> None:
        """Make PersistentVolumeClaims bindable: a default StorageClass and some pre-created PersistentVolumes.

        Nothing provisions volumes in this cluster (no CSI driver, no kubelet), so a StatefulSet's volume claim
        templates would stay Pending forever. This creates the StorageClass ``standard``, marked as the cluster
        default so that claims without ``storageClassName`` get it too, with the ``kubernetes.io/no-provisioner``
        provisioner and ``WaitForFirstConsumer`` binding (as for local volumes: the scheduler picks a PV when it
        places the pod, then kube-controller-manager's PV controller binds claim and volume), plus
        ``persistent_volumes`` hostPath PVs of that class. No pod really mounts them: kwok only simulates pods.
        """
        self.apply(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": DEFAULT_STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/no-provisioner",
                "volumeBindingMode": "WaitForFirstConsumer",
                "reclaimPolicy": "Retain",
            }
        )
        if persistent_volumes:
            self.create_persistent_volumes(persistent_volumes, capacity=capacity)

    def create_persistent_volumes(
        self,
        count: int,
        *,
        capacity: str = "1Gi",
        storage_class: str = DEFAULT_STORAGE_CLASS,
        access_modes: Iterable[str] = ("ReadWriteOnce",),
        prefix: str = "pv",
    ) -> list[str]:
        """Create ``count`` more hostPath PersistentVolumes and return their names.

        A claim binds to a volume of the same class whose capacity is at least the claim's request, and a bound
        volume is never reused (reclaim policy Retain, since no plugin here can wipe a volume), so create enough of
        them for every claim a test session makes, with a capacity at least as large as the largest request.
        The directories are created up front, writable by any user: ``fsGroup`` does not apply to hostPath volumes,
        and a pod running as non-root on a real node (real_node.py) must be able to write to its volume.
        """
        existing = set(self.kubectl("get", "pv", "-o", "name").stdout.split())
        names: list[str] = []
        index = 0
        while len(names) < count:
            name = f"{prefix}-{storage_class}-{index:03d}"
            index += 1
            if f"persistentvolume/{name}" not in existing:
                names.append(name)
        volumes = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"venta.test/storage": storage_class}},
                "spec": {
                    "capacity": {"storage": capacity},
                    "accessModes": list(access_modes),
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": storage_class,
                    "volumeMode": "Filesystem",
                    "hostPath": {"path": str(self.workdir / "volumes" / name), "type": "DirectoryOrCreate"},
                },
            }
            for name in names
        ]
        for name in names:
            path = self.workdir / "volumes" / name
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)  # not through mkdir's mode, which the umask narrows
        self.apply(*volumes)
        return names


if __name__ == "__main__":
    # Manual use: start a cluster, print how to reach it, and delete it on Enter (or Ctrl-C).
    with KwokCluster(nodes=int(sys.argv[1]) if len(sys.argv) > 1 else 2) as _cluster:
        print(f"export KUBECONFIG={_cluster.kubeconfig}")
        try:
            input("cluster running; press Enter to delete it\n")
        except KeyboardInterrupt:
            pass

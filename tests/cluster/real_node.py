"""A single-node Kubernetes cluster whose pods run real containers, for the tests that need workloads to run.

Why this exists beside kwok.py: KWOK's fake nodes run nothing, which is right for testing the operator's decisions
but cannot show that the workloads it creates work (images start, probes pass, Services route, DNS resolves, volumes
are writable). Without Docker or a registry, the node is made of plain processes: the control plane as in kwok.py
(kwokctl, binary runtime, no kwok controller), the host's containerd and runc with private paths, Debian's CNI
plugins on a bridge, and the kubelet, kube-proxy and CoreDNS built by build.sh. See docs/test-cluster.md.

The node changes host-wide things (a bridge, iptables rules, cgroups, sysctls), so there is one per machine at a
time (a lock file), it needs root, and :meth:`RealNode.stop` removes all of it (node_host.py); a node left by a killed
test run is removed by the next start. It must never touch the host's own container or network state: everything it
makes carries the name ``venta-realnode`` or lives in its work directory. Standard library only, like kwok.py.

    with RealNode() as node:
        node.import_images(archive)
        node.kubectl("get", "nodes")
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from services.devkit.servers import free_port
from tests.cluster import node_host
from tests.cluster.cluster_tools import ClusterError, ClusterTools, run_command
from tests.cluster.kwok import KwokCluster, Manifest
from tests.cluster.node_config import (
    CNI_BIN_DIR,
    GATEWAY,
    NODE_NAME,
    SERVICE_SUBNET,
    NodePaths,
    cni_conflist,
    containerd_config,
    corefile,
    kube_proxy_config,
    kubelet_config,
    registry_hosts_toml,
    to_json,
)

#: Host programs the node runs or calls (install-packages.sh installs them).
HOST_PROGRAMS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "ip6tables", "ip", "mount")
#: The daemons' PATH: the kubelet and containerd find runc, iptables, mount, the shim there.
DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def missing_prerequisites(tools: ClusterTools) -> list[str]:
    """What this machine lacks to run a real node (empty when it can)."""
    missing = [] if os.geteuid() == 0 else ["root (the node sets up cgroups, a bridge and iptables rules)"]
    env = dict(os.environ, PATH=DAEMON_PATH)
    missing += [
        f"{p} (tests/cluster/install-packages.sh)" for p in HOST_PROGRAMS if not shutil.which(p, path=env["PATH"])
    ]
    missing += [
        f"{CNI_BIN_DIR}/{p} (tests/cluster/install-packages.sh)"
        for p in ("bridge", "host-local", "portmap")
        if not (CNI_BIN_DIR / p).exists()
    ]
    built = {
        "kubelet": tools.kubelet,
        "kube-proxy": tools.kube_proxy,
        "coredns": tools.coredns,
        "pause image": tools.pause_archive,
    }
    missing += [f"{name} (tests/cluster/build.sh)" for name, path in built.items() if path is None]
    return missing


class RealNode:
    """The control plane plus one real node (``venta-realnode``), usable as a context manager.

    ``start()`` reaps a node left by a killed run, starts everything and waits until the node is Ready and
    ``persistent_volumes`` hostPath PersistentVolumes exist (class ``standard``, the default); ``stop()`` removes
    pods, processes and every trace on the host. ``timings`` holds the seconds each start phase took.
    """

    def __init__(
        self,
        *,
        tools: ClusterTools | None = None,
        paths: NodePaths | None = None,
        persistent_volumes: int = 10,
        ready_timeout: float = 180.0,
        images: Sequence[Path] = (),
    ) -> None:
        """Describe a node; nothing runs before :meth:`start`. ``images`` are archives imported at every start."""
        self.paths = paths or NodePaths()
        self.images: list[Path] = [Path(archive) for archive in images]
        self.persistent_volumes = persistent_volumes
        self.ready_timeout = ready_timeout
        self.timings: dict[str, float] = {}
        self._tools = tools
        self._lock: IO[str] | None = None
        self._host_state: node_host.HostState | None = None
        self._control_plane: KwokCluster | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def tools(self) -> ClusterTools:
        if self._tools is None:
            self._tools = ClusterTools.from_env_file()
        return self._tools

    @property
    def control_plane(self) -> KwokCluster:
        if self._control_plane is None:
            raise ClusterError("the real node is not started")
        return self._control_plane

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    # ---- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> RealNode:
        """Start the control plane and the node; wait until the node is Ready. On failure, clean up and raise."""
        if self._lock is not None:
            raise ClusterError("the real node is already started")
        if missing := missing_prerequisites(self.tools):
            raise ClusterError("cannot run a real node here; missing: " + "; ".join(missing))
        self._lock = node_host.take_lock(self.paths)
        atexit.register(self.stop)
        try:
            if reap_stale_node(self.paths, self.tools):
                print(f"real_node: removed a node left behind in {self.paths.root}", file=sys.stderr)
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        paths, tools = self.paths, self.tools
        began = time.monotonic()
        for directory in (paths.root, paths.config, paths.logs, paths.cni_conf_dir, paths.pod_logs):
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._host_state = node_host.HostState.record()
        self._host_state.save(paths.host_state)
        node_host.create_cgroup_root()
        node_host.create_bridge()
        self._control_plane = KwokCluster(
            NODE_NAME,
            nodes=0,
            tools=tools,
            persistent_volumes=0,
            ready_timeout=self.ready_timeout,
            workdir=paths.control_plane,
            # No kwok controller: the kubelet runs this node. The API server reaches the kubelet (logs, exec) at the
            # node's InternalIP; by default it would try the node's name, which does not resolve. Services get
            # addresses from the usual range (the API server's default is 10.0.0.0/24).
            create_args=[
                "--disable",
                "kwok-controller",
                "--extra-args",
                "kube-apiserver=kubelet-preferred-address-types=InternalIP",
                "--extra-args",
                f"kube-apiserver=service-cluster-ip-range={SERVICE_SUBNET}",
            ],
            # pods reach the API server at the `kubernetes` Service's ClusterIP (the first of the range)
            api_server_names=[str(next(ipaddress.ip_network(SERVICE_SUBNET).hosts())), GATEWAY],
        )
        self._control_plane.start()
        self._phase("control plane", began)

        (paths.config / "containerd.toml").write_text(containerd_config(paths, pause_image=tools.pause_image))
        (paths.cni_conf_dir / "10-venta.conflist").write_text(to_json(cni_conflist(paths)))
        self._spawn("containerd", "containerd", "--config", str(paths.config / "containerd.toml"))
        self._wait("containerd", lambda: self._ctr("version", check=False).returncode == 0)
        self._ctr("images", "import", str(tools.pause_archive), timeout=300)
        self.import_images(*self.images)
        self._phase("containerd", began)

        health, ready, metrics, proxy_health, kubelet_port, kubelet_health = (free_port() for _ in range(6))
        (paths.config / "Corefile").write_text(corefile(self.kubeconfig, health_port=health, ready_port=ready))
        self._spawn("coredns", str(tools.coredns), "-conf", str(paths.config / "Corefile"))
        proxy_config = kube_proxy_config(self.kubeconfig, metrics_port=metrics, healthz_port=proxy_health)
        (paths.config / "kube-proxy.json").write_text(to_json(proxy_config))
        self._spawn("kube-proxy", str(tools.kube_proxy), "--config", str(paths.config / "kube-proxy.json"), "--v=1")
        config = kubelet_config(paths, port=kubelet_port, healthz_port=kubelet_health)
        (paths.config / "kubelet.json").write_text(to_json(config))
        self._spawn(
            "kubelet",
            str(tools.kubelet),
            "--config",
            str(paths.config / "kubelet.json"),
            "--kubeconfig",
            str(self.kubeconfig),
            "--root-dir",
            str(paths.kubelet_root),
            "--hostname-override",
            NODE_NAME,
            # The bridge's address, not the host's: nothing outside this machine can reach the kubelet (whose API
            # lets anyone exec into pods here) or the node's ports.
            f"--node-ip={GATEWAY}",
            "--v=1",
        )
        self._wait("CoreDNS ready", lambda: _http_ok(f"http://127.0.0.1:{ready}/ready"))
        self._wait("kube-proxy healthy", lambda: _http_ok(f"http://127.0.0.1:{proxy_health}/healthz"))
        self._wait("node Ready", self._node_ready)
        self._phase("node Ready", began)
        self.control_plane.setup_storage(self.persistent_volumes)

    def stop(self) -> None:
        """Stop everything and remove every trace on the host (see :func:`teardown`). Safe to call more than once."""
        atexit.unregister(self.stop)
        if self._lock is None:
            return
        began = time.monotonic()
        try:
            errors = teardown(self.paths, self._tools, self._host_state, self._control_plane)
            for name, process in self._processes.items():
                try:
                    process.wait(timeout=10)  # reap: teardown stopped them
                except subprocess.TimeoutExpired:
                    process.kill()
                    errors.append(f"{name} (pid {process.pid}) was still running")
            self._processes.clear()
            self._control_plane = None
            self.timings["teardown"] = round(time.monotonic() - began, 1)
            if errors:
                raise ClusterError("real node teardown: " + "; ".join(errors))
        finally:
            node_host.release_lock(self.paths, self._lock)
            self._lock = None

    def __enter__(self) -> RealNode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- driving it ----------------------------------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """kubectl against the cluster; raises :class:`ClusterError` with stderr on failure if ``check``."""
        return self.control_plane.kubectl(*args, input=input, check=check, timeout=timeout)

    def apply(self, *manifests: Manifest) -> None:
        self.control_plane.apply(*manifests)

    def import_images(self, *archives: Path | str) -> None:
        """Load image archives (``docker save``/OCI format) into the node's containerd, for pods to run them
        (with ``imagePullPolicy: IfNotPresent`` or ``Never``: nothing can be pulled). They are remembered and
        imported again when the node is restarted."""
        for archive in map(Path, archives):
            self._ctr("images", "import", str(archive), timeout=300)
            if archive not in self.images:
                self.images.append(archive)

    def trust_registry(self, host: str) -> None:
        """Let the node pull from a plain-HTTP registry at ``host`` (``localhost:<port>``), from the next pull on."""
        hosts = self.paths.registry_hosts / host
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts.toml").write_text(registry_hosts_toml(host))

    def leftovers(self) -> list[str]:
        """What the node (running or not) has on the host: empty after a clean :meth:`stop`."""
        return node_host.leftovers(self.paths, self._host_state)

    def logs(self, component: str) -> str:
        """The log of a node daemon (containerd, kubelet, kube-proxy, coredns) or of a control-plane component."""
        log = self.paths.logs / f"{component}.log"
        if log.exists():
            return log.read_text(errors="replace")
        return self.control_plane.logs(component)

    # ---- helpers ---------------------------------------------------------------------------------------------------
    def _ctr(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = ["ctr", "--address", str(self.paths.containerd_socket), "--namespace", "k8s.io", *args]
        return run_command(command, env=dict(os.environ, PATH=DAEMON_PATH), check=check, timeout=timeout)

    def _spawn(self, name: str, *argv: str) -> None:
        with open(self.paths.logs / f"{name}.log", "ab") as log:
            self._processes[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PATH=DAEMON_PATH),
                # Its own session: Ctrl-C in a test run reaches the tests, and teardown decides the order of stops.
                start_new_session=True,
            )

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not ready():
            for name, process in self._processes.items():
                if process.poll() is not None:
                    tail = "\n".join(self.logs(name).splitlines()[-30:])
                    raise ClusterError(f"{name} exited with code {process.returncode} before {what}:\n{tail}")
            if time.monotonic() > deadline:
                raise ClusterError(f"no {what} after {self.ready_timeout}s (logs in {self.paths.logs})")
            time.sleep(0.2)

    def _node_ready(self) -> bool:
        result = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _phase(self, name: str, began: float) -> None:
        self.timings[name] = round(time.monotonic() - began, 1)


def teardown(
    paths: NodePaths,
    tools: ClusterTools | None,
    state: node_host.HostState | None,
    control_plane: KwokCluster | None = None,
) -> list[str]:
    """Stop a node (this process's, or a dead run's) in order, then remove all it left; return what failed.

    The kubelet first (so it restarts nothing), then every pod sandbox through the CRI (so that containerd runs the
    CNI DEL of each pod and unmounts its rootfs and shm), then kube-proxy, CoreDNS, containerd and the control plane;
    then :func:`node_host.scrub` kills and removes whatever is left (all of it, when the graceful steps fail).
    """
    node_host.stop_processes(paths, ("kubelet",), timeout=15)
    cri_reset = tools.kubelet.with_name("cri-reset") if tools and tools.kubelet else None
    if cri_reset and cri_reset.exists() and paths.containerd_socket.exists():
        endpoint = f"unix://{paths.containerd_socket}"
        command = [str(cri_reset), "--runtime-endpoint", endpoint, "--timeout", "30s"]
        result = run_command(command, check=False, timeout=180)
        if result.returncode != 0:  # not fatal: scrub() below kills and removes what is left
            print(f"real_node: cri-reset failed: {result.stderr.strip()[-500:]}", file=sys.stderr)
    node_host.stop_processes(paths, ("kube-proxy", "coredns"), timeout=10)
    node_host.stop_processes(paths, ("containerd",), timeout=15)
    if control_plane is None and tools is not None and paths.control_plane.exists():
        control_plane = KwokCluster.adopt(NODE_NAME, paths.control_plane, tools=tools)  # a dead run's
    if control_plane is not None:
        control_plane.stop()
    return node_host.scrub(paths, state)


def reap_stale_node(paths: NodePaths, tools: ClusterTools | None) -> bool:
    """Remove a node whose owner died without stopping it (the caller holds the lock). True if there was one."""
    if not paths.root.exists() and not node_host.leftovers(paths, None):
        return False
    errors = teardown(paths, tools, node_host.HostState.load(paths.host_state))
    if errors:
        raise ClusterError(f"could not remove the real node left in {paths.root}: " + "; ".join(errors))
    return True


#: Local health endpoints are asked directly, never through a proxy the environment may name.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main(argv: Sequence[str]) -> None:
    """Manual use: start a node, import the image archives given, print how to reach it and the start times, and
    stop it on Enter (or Ctrl-C)."""
    with RealNode() as node:
        if argv:
            node.import_images(*argv)
        print(f"export KUBECONFIG={node.kubeconfig}", flush=True)
        print(f"started in {node.timings} (seconds since start, per phase)", flush=True)
        try:
            input("real node running; press Enter to stop it\n")
        except (KeyboardInterrupt, EOFError):
            pass
    print(f"stopped in {node.timings['teardown']}s; leftovers: {node.leftovers() or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:])

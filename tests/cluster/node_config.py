"""Names, paths and configuration files of the real test node (real_node.py): pure builders, no I/O.

Why a module of its own: the configs of containerd, the CNI plugins, the kubelet, kube-proxy and CoreDNS hold the
decisions that make a node run on these machines (cgroup v1, no CAP_SYS_RESOURCE, no registry, nothing shared with
the host's own container state), and they are easier to read and to check without the process juggling around them.

Everything the node writes lives under one work directory (:class:`NodePaths`); what it has to put on the host
(a bridge, iptables rules, cgroups) carries the name ``venta-realnode`` so that teardown and the leftovers check
(node_host.py) find exactly that. Standard library only, like kwok.py.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The node's name, the CNI network's name (which CNI writes into the comments of its iptables rules) and the
#: kubelet's cgroup root: what marks the host objects that belong to the node.
NODE_NAME = "venta-realnode"
BRIDGE = "venta-cni0"
POD_SUBNET = "10.244.0.0/24"
#: Services' ClusterIPs (kube-proxy translates them on this machine only).
SERVICE_SUBNET = "10.96.0.0/16"
#: The bridge's address: the pods' default gateway, the node's IP (kubelet), and where CoreDNS listens (the pods'
#: nameserver). Only this machine reaches it.
GATEWAY = "10.244.0.1"
CLUSTER_DOMAIN = "cluster.local"
#: Debian's containernetworking-plugins put the plugins here (not /opt/cni/bin).
CNI_BIN_DIR = Path("/usr/lib/cni")
#: A fixed place: there is only one real node per machine (the bridge, subnet and rules are host-wide), and a fixed
#: path lets the next start find and reap a node whose test run was killed.
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / NODE_NAME


@dataclass(frozen=True)
class NodePaths:
    """Where the node keeps its state, all under ``root`` (never /var/lib/containerd, /var/lib/kubelet, /etc/cni)."""

    root: Path = DEFAULT_WORKDIR

    @property
    def lock(self) -> Path:
        """Held (fcntl) by the process that owns the node; beside ``root`` so it outlives its removal."""
        return self.root.with_name(self.root.name + ".lock")

    @property
    def host_state(self) -> Path:
        """What the host looked like before the node started (sysctls...), to restore it on teardown."""
        return self.root / "host-state.json"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def control_plane(self) -> Path:
        """kwokctl's KWOK_WORKDIR for etcd and the API server, controller-manager and scheduler."""
        return self.root / "control-plane"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def runc_root(self) -> Path:
        return self.root / "containerd" / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        """host-local's allocations (default /var/lib/cni/networks)."""
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def registry_hosts(self) -> Path:
        """containerd's registry host configurations (``<host:port>/hosts.toml``), read at every pull."""
        return self.root / "containerd" / "certs.d"


def containerd_config(paths: NodePaths, *, pause_image: str) -> str:
    """containerd 1.6's config.toml: private root, state and socket; runc with cgroupfs; CNI; no pulls needed."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = {_toml(paths.containerd_root)}
state = {_toml(paths.containerd_state)}
oom_score = 0
# Unused, and "opt" would create /opt/containerd.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = {_toml(paths.containerd_socket)}

[{cri}]
  # Imported from an archive (no registry is reachable); tests/cluster/go/pause.
  sandbox_image = {_toml(pause_image)}
  # No CAP_SYS_RESOURCE on these machines: a negative oom_score_adj would be refused.
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  # Registries a test runs on this host (hosts.toml per registry, see registry_hosts_toml); none by default.
  [{cri}.registry]
    config_path = {_toml(paths.registry_hosts)}

  [{cri}.cni]
    bin_dir = {_toml(CNI_BIN_DIR)}
    conf_dir = {_toml(paths.cni_conf_dir)}
    max_conf_num = 1

  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [{cri}.containerd.runtimes.runc.options]
        # runc, not crun: crun 1.8 refuses hybrid cgroups.
        BinaryName = "runc"
        Root = {_toml(paths.runc_root)}
        SystemdCgroup = false
"""


def registry_hosts_toml(host: str) -> str:
    """containerd's hosts.toml for a registry on this host, served over plain HTTP (as kind's local registry)."""
    return f"""\
server = "http://{host}"

[host."http://{host}"]
  capabilities = ["pull", "resolve"]
"""


def cni_conflist(paths: NodePaths) -> dict[str, Any]:
    """One bridge network for the pods, masqueraded when leaving the subnet, with hostPort support (portmap)."""
    return {
        "cniVersion": "0.4.0",
        "name": NODE_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(paths: NodePaths, *, port: int, healthz_port: int) -> dict[str, Any]:
    """The kubelet's configuration file (JSON, which the kubelet reads as YAML)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 (hybrid) here: Kubernetes >= 1.35 refuses to start on v1 unless told not to.
        "failCgroupV1": False,
        # containerd 1.6 does not report its cgroup driver (RuntimeConfig is unimplemented): say it here.
        "cgroupDriver": "cgroupfs",
        # Pods' cgroups go under /venta-realnode/kubepods in every hierarchy, not the host-wide /kubepods.
        "cgroupRoot": f"/{NODE_NAME}",
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        # No CAP_SYS_RESOURCE: the default -999 would be refused.
        "oomScoreAdj": 0,
        # Its node IP (real_node.py): reachable from this machine only.
        "address": GATEWAY,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        # The API server is the only client (logs, exec): no client certificates to hand out.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}, "x509": {}},
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [GATEWAY],
        "resolvConf": "/etc/resolv.conf",
        "failSwapOn": False,
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.kubelet_root / "volume-plugins"),
        "serializeImagePulls": False,
        # Images come from archives and cannot be pulled again: never garbage-collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A shared test machine: evict only when really out of resources.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "maxPods": 50,
    }


def kube_proxy_config(kubeconfig: Path, *, metrics_port: int, healthz_port: int) -> dict[str, Any]:
    """kube-proxy in iptables mode, leaving the host's conntrack sysctls and route_localnet alone."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_SUBNET,
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        # NodePorts on the node's address only (the bridge's), never on the host's other addresses; on 127.0.0.1
        # they would need net.ipv4.conf.all.route_localnet=1.
        "nodePortAddresses": [f"{GATEWAY}/32"],
        "iptables": {"localhostNodePorts": False},
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
    }


def corefile(kubeconfig: Path, *, health_port: int, ready_port: int) -> str:
    """CoreDNS on the bridge's address: cluster.local from the API, anything else from the host's resolver."""
    return f"""\
.:53 {{
    bind {GATEWAY}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    forward . /etc/resolv.conf
    cache 5
    loadbalance
}}
"""


def to_json(value: Any) -> str:
    """How the configs are written: JSON, which the kubelet, kube-proxy and CNI all read."""
    return json.dumps(value, indent=1) + "\n"


def _toml(value: object) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these paths and names)."""
    return json.dumps(str(value))

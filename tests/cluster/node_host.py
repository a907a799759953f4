"""The real test node's footprint on the host, outside its work directory: setting it up, removing it, checking it.

Why: a node that runs real containers changes host-wide things that outlive its processes: the kubelet rewrites
sysctls, the CNI bridge and veths, iptables rules (node_iptables.py), cgroups, mounts, a CNI result cache in
/var/lib/cni and containerd shim sockets in /run/containerd/s (containerd 1.6 puts them there whatever its state
directory). Tests run on developers' and CI machines, so teardown must put every one of them back, including after a
test run that was killed (the next start calls :func:`scrub` on what the dead run left), and :func:`leftovers` says
what remains. Everything is recognised by the node's name (node_config.NODE_NAME) or its work directory; this module
must never touch anything else. Standard library only.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from tests.cluster import node_iptables
from tests.cluster.cluster_tools import ClusterError
from tests.cluster.node_config import BRIDGE, GATEWAY, NODE_NAME, POD_SUBNET, NodePaths

#: Sysctls the kubelet (vm.*, kernel.*), the CNI bridge plugin (ip_forward) or kube-proxy may change.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_be_liberal",
)
#: Host directories the node's programs create when missing (libcni's result cache, containerd 1.6's shim sockets):
#: removed again (when empty) if they did not exist before, deepest first.
CNI_CACHE = Path("/var/lib/cni")
SHIM_SOCKETS = Path("/run/containerd/s")
HOST_DIRECTORIES = (CNI_CACHE / "results", CNI_CACHE, SHIM_SOCKETS, SHIM_SOCKETS.parent)
CGROUP_MOUNTS = Path("/sys/fs/cgroup")
#: The programs the node runs (argv[0]'s base name): only these are stopped for naming the work directory, never
#: e.g. a developer's "tail -f <work>/logs/kubelet.log". Containers are found by their cgroups instead.
NODE_PROGRAMS = frozenset(
    {
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
        "kubelet",
        "kube-proxy",
        "coredns",
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    }
)


# ---- the lock: one real node per machine ---------------------------------------------------------------------------
def take_lock(paths: NodePaths) -> IO[str]:
    """Lock the node for this process (released when the returned file is closed, or the process dies)."""
    while True:
        handle = open(paths.lock, "a+")  # noqa: SIM115 (held open for the node's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise ClusterError(
                f"a real node is already running on this machine (process {owner}, {paths.root}); there can be only "
                "one at a time (its bridge, pod subnet and iptables rules are host-wide)"
            ) from None
        if paths.lock.exists() and os.stat(paths.lock).st_ino == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()  # the previous owner removed the file after we opened it: lock the new one
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def release_lock(paths: NodePaths, handle: IO[str]) -> None:
    paths.lock.unlink(missing_ok=True)  # while still locked, so no one else holds a lock on the unlinked file
    handle.close()


# ---- what the host looked like before -----------------------------------------------------------------------------
@dataclass
class HostState:
    """Recorded before the node starts and kept in its work directory, so that a later run can restore it too."""

    sysctls: dict[str, str] = field(default_factory=dict)
    existed: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def record(cls) -> HostState:
        sysctls = {name: value for name in SYSCTLS if (value := _read_sysctl(name)) is not None}
        return cls(sysctls, {str(p): p.exists() for p in HOST_DIRECTORIES})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> HostState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def changed_sysctls(self) -> dict[str, tuple[str, str]]:
        """name -> (recorded, now) for each sysctl that differs."""
        now = {name: _read_sysctl(name) for name in self.sysctls}
        return {name: (value, now[name] or "") for name, value in self.sysctls.items() if now[name] != value}

    def restore_sysctls(self) -> list[str]:
        errors = []
        for name, (value, _) in self.changed_sysctls().items():
            try:
                _sysctl_path(name).write_text(value + "\n")
            except OSError as error:
                errors.append(f"sysctl {name}={value}: {error}")
        return errors


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _read_sysctl(name: str) -> str | None:
    try:
        return _sysctl_path(name).read_text().strip()
    except OSError:
        return None


# ---- setting up ---------------------------------------------------------------------------------------------------
def cgroup_hierarchies() -> list[Path]:
    """The mount points of the cgroup v1 hierarchies and of the v2 one (hybrid: /sys/fs/cgroup/unified)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point, fstype = _unescape(line.split()[4]), line.split(" - ")[1].split()[0]
        if fstype in ("cgroup", "cgroup2") and Path(mount_point).is_relative_to(CGROUP_MOUNTS):
            found.append(Path(mount_point))
    return found


def create_cgroup_root() -> None:
    """Make the kubelet's cgroupRoot (/venta-realnode) in every v1 hierarchy: the kubelet requires that it exists."""
    for hierarchy in cgroup_hierarchies():
        if hierarchy.name == "unified":
            continue
        ours = hierarchy / NODE_NAME
        ours.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # a new cpuset cgroup has none: copy the parent's
            if (hierarchy / knob).exists() and not (ours / knob).read_text().strip():
                (ours / knob).write_text((hierarchy / knob).read_text())


def create_bridge() -> None:
    """Create the pods' bridge with the gateway address now (the CNI plugin would only on the first pod), so that
    CoreDNS can listen on that address before any pod exists. The bridge plugin adopts an existing bridge."""
    prefix = POD_SUBNET.split("/")[1]
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{GATEWAY}/{prefix}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and result.returncode != 0:
        raise ClusterError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


# ---- processes ----------------------------------------------------------------------------------------------------
def node_processes(paths: NodePaths) -> dict[int, list[str]]:
    """pid -> argv of the node's processes: its programs (daemons, shims, control plane) naming its work directory,
    and whatever runs in its cgroups (containers)."""
    root, found = str(paths.root), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            cgroups = (entry / "cgroup").read_text()
        except OSError:
            continue  # exited meanwhile
        if not _alive(int(entry.name)):
            continue
        mentions_root = (
            bool(argv)
            and Path(argv[0]).name in NODE_PROGRAMS
            and any(arg == root or arg.startswith(root + "/") or f"={root}/" in arg for arg in argv)
        )
        if mentions_root or f":/{NODE_NAME}/" in cgroups or cgroups.rstrip().endswith(f":/{NODE_NAME}"):
            found[int(entry.name)] = argv
    return found


def stop_processes(paths: NodePaths, names: tuple[str, ...] = (), timeout: float = 10.0) -> None:
    """SIGTERM the node's processes called ``names`` (all of them when empty), then SIGKILL after ``timeout``."""
    pids = [pid for pid, argv in node_processes(paths).items() if not names or (argv and Path(argv[0]).name in names)]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while (pids := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited; its parent has not reaped it yet


# ---- removing -----------------------------------------------------------------------------------------------------
def node_mounts(paths: NodePaths) -> list[str]:
    """Mount points under the work directory (pod volumes, netns, shm, rootfs, the kubelet's bind), deepest first."""
    root, found = str(paths.root), []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return sorted(found, key=lambda p: (-p.count("/"), p))


def node_links() -> list[str]:
    """The pods' bridge and the veths attached to it."""
    result = _ip("-j", "link", "show", check=False)
    links = json.loads(result.stdout or "[]") if result.returncode == 0 else []
    return [link["ifname"] for link in links if link["ifname"] == BRIDGE or link.get("master") == BRIDGE]


def node_cgroups() -> list[Path]:
    """The node's cgroups in every hierarchy, deepest first."""
    found = []
    for hierarchy in cgroup_hierarchies():
        ours = hierarchy / NODE_NAME
        if ours.is_dir():
            found += [Path(d) for d, _, _ in os.walk(ours)]
    return sorted(found, key=lambda p: -len(p.parts))


def node_files() -> list[Path]:
    """Files of the node outside its work directory: the CNI plugins' cached results of its pods."""
    return sorted((CNI_CACHE / "results").glob(f"{NODE_NAME}-*")) + sorted((CNI_CACHE / "networks").glob(NODE_NAME))


def stale_shim_sockets() -> list[Path]:
    """Sockets in /run/containerd/s that no process listens on (those of the node's shims once they exited)."""
    if not SHIM_SOCKETS.is_dir():
        return []
    bound = {line.split()[-1] for line in Path("/proc/net/unix").read_text().splitlines()[1:] if len(line.split()) > 7}
    return [p for p in SHIM_SOCKETS.iterdir() if p.is_socket() and str(p) not in bound]


def scrub(paths: NodePaths, state: HostState | None) -> list[str]:
    """Remove everything the node left on the host (processes first); return what could not be removed."""
    errors: list[str] = []
    stop_processes(paths, timeout=5.0)
    for _ in range(5):  # a mount can hide another, and propagation can copy them: repeat until none is left
        mounts = node_mounts(paths)
        for point in mounts:
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if not mounts:
            break
    for link in node_links():
        _ip("link", "delete", link, check=False)
    errors += node_iptables.scrub()
    for cgroup in node_cgroups():
        errors += _remove_cgroup(cgroup)
    for path in node_files():
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for socket in stale_shim_sockets():
        socket.unlink(missing_ok=True)
    if state is not None:
        errors += state.restore_sysctls()
        for directory in HOST_DIRECTORIES:
            if not state.existed.get(str(directory), True):
                _remove_empty_tree(directory)
    if mounts := node_mounts(paths):
        errors.append(f"still mounted, so {paths.root} is kept: {', '.join(mounts)}")
    elif paths.root.exists():
        shutil.rmtree(paths.root, ignore_errors=True)
    return errors


def _remove_cgroup(cgroup: Path) -> list[str]:
    for _ in range(50):
        try:
            cgroup.rmdir()
            return []
        except FileNotFoundError:
            return []
        except OSError:
            if (cgroup / "freezer.state").exists():
                (cgroup / "freezer.state").write_text("THAWED")
            for pid in (cgroup / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
    return [f"cgroup {cgroup} could not be removed"]


def _remove_empty_tree(directory: Path) -> None:
    """Remove ``directory`` and the directories under it, as far as they are empty."""
    for current, _, _ in sorted(os.walk(directory), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(current)
        except OSError:
            pass  # not empty: someone else's


def leftovers(paths: NodePaths, state: HostState | None) -> list[str]:
    """Everything of the node still on the host, one line each; empty after a clean teardown."""
    found = [f"process {pid}: {' '.join(argv)}" for pid, argv in node_processes(paths).items()]
    found += [f"mount {point}" for point in node_mounts(paths)]
    found += [f"interface {link}" for link in node_links()]
    found += node_iptables.leftovers()
    found += [f"cgroup {cgroup}" for cgroup in node_cgroups()]
    found += [f"file {path}" for path in node_files()]
    found += [f"stale shim socket {path}" for path in stale_shim_sockets()]
    if paths.root.exists():
        found.append(f"work directory {paths.root}")
    if state is not None:
        found += [f"sysctl {n} = {now} (was {was})" for n, (was, now) in state.changed_sysctls().items()]
        found += [
            f"directory {p} (did not exist before)"
            for p, existed in state.existed.items()
            if not existed and Path(p).exists()
        ]
    return found


def _unescape(field_: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for a space...)."""
    return field_.encode().decode("unicode_escape") if "\\" in field_ else field_

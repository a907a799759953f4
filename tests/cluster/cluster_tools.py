"""The test cluster's tools: where `tests/cluster/build.sh` put them (its env file) and running it when needed.

Split from kwok.py, which starts clusters with these tools; other harnesses (the Prometheus process, the real node)
need only the tools, and :func:`run_command`, which runs a command and turns its failure into a ClusterError.
Standard library only, like kwok.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().with_name("build.sh")


def cache_dir() -> Path:
    """The directory build.sh builds into (``$VENTA_CACHE_DIR``, default ``~/.cache/venta``)."""
    return Path(os.environ.get("VENTA_CACHE_DIR") or Path.home() / ".cache" / "venta")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM a server the tests started, SIGKILL it if it has not exited within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ClusterError(RuntimeError):
    """A cluster could not be built, started or driven; the message carries the failing command's output."""


@dataclass(frozen=True)
class ClusterTools:
    """Absolute paths of the binaries built by build.sh, as listed in its env file."""

    kwokctl: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    etcd: Path
    kwok_controller: Path
    kube_version: str
    helm: Path | None = None
    kubectl: Path | None = None
    kube_score: Path | None = None
    prometheus: Path | None = None
    promtool: Path | None = None
    # The real node (real_node.py): kubelet and kube-proxy (symlinks to the kube binary), CoreDNS, and the image
    # archives of the pause (pod sandbox) and testbox (smoke tests) images with the names they import as.
    kubelet: Path | None = None
    kube_proxy: Path | None = None
    coredns: Path | None = None
    pause_image: str = ""
    pause_archive: Path | None = None
    testbox_image: str = ""
    testbox_archive: Path | None = None
    # The developers' inner loop (tests/e2e/real/test_tilt.py, tests/integration/test_kind_config.py): Tilt, the
    # distribution registry, and kind's config loader with kind's node image's containerd config.
    tilt: Path | None = None
    registry: Path | None = None
    kindcheck: Path | None = None
    kind_containerd_config: Path | None = None
    # The OpenTelemetry Collector with the components of observability/logs/otel-collector.yaml (built by ocb).
    otelcol: Path | None = None
    # CloudNativePG's published CRDs (a directory of YAML files), for the operator's cloudNativePG tests on KWOK.
    cnpg_crds: Path | None = None
    # cert-manager's (Certificate, issuers) and Gateway API's (HTTPRoute, Gateway, GatewayClass) published CRDs.
    edge_crds: Path | None = None

    @classmethod
    def from_env_file(cls, path: Path | None = None) -> ClusterTools:
        """Read ``cluster-tools.env`` (``KEY=value`` lines) written by build.sh.

        Reading the file, rather than recomputing paths here, keeps the versions in exactly one place (build.sh).
        """
        path = path or cache_dir() / "cluster-tools.env"
        if not path.is_file():
            raise ClusterError(f"{path} does not exist: run {BUILD_SCRIPT} first")
        values: dict[str, str] = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()

        def required(key: str) -> Path:
            if key not in values:
                raise ClusterError(f"{path} has no {key}: run {BUILD_SCRIPT} again")
            found = Path(values[key])
            if not os.access(found, os.X_OK):
                raise ClusterError(f"{key}={found} is not an executable: run {BUILD_SCRIPT} again")
            return found

        def optional(key: str) -> Path | None:
            value = values.get(key)
            return Path(value) if value and os.access(value, os.X_OK) else None

        def existing_file(key: str) -> Path | None:
            value = values.get(key)
            return Path(value) if value and os.path.isfile(value) else None

        def existing_dir(key: str) -> Path | None:
            value = values.get(key)
            return Path(value) if value and os.path.isdir(value) else None

        return cls(
            kwokctl=required("KWOKCTL"),
            kube_apiserver=required("KWOK_KUBE_APISERVER_BINARY"),
            kube_controller_manager=required("KWOK_KUBE_CONTROLLER_MANAGER_BINARY"),
            kube_scheduler=required("KWOK_KUBE_SCHEDULER_BINARY"),
            etcd=required("KWOK_ETCD_BINARY"),
            kwok_controller=required("KWOK_KWOK_CONTROLLER_BINARY"),
            kube_version=values.get("KWOK_KUBE_VERSION", ""),
            helm=optional("HELM"),
            kubectl=optional("KUBECTL"),
            kube_score=optional("KUBE_SCORE"),
            prometheus=optional("PROMETHEUS"),
            promtool=optional("PROMTOOL"),
            kubelet=optional("KUBELET"),
            kube_proxy=optional("KUBE_PROXY"),
            coredns=optional("COREDNS"),
            pause_image=values.get("PAUSE_IMAGE", ""),
            pause_archive=existing_file("PAUSE_ARCHIVE"),
            testbox_image=values.get("TESTBOX_IMAGE", ""),
            testbox_archive=existing_file("TESTBOX_ARCHIVE"),
            tilt=optional("TILT"),
            registry=optional("REGISTRY"),
            kindcheck=optional("KINDCHECK"),
            kind_containerd_config=existing_file("KIND_CONTAINERD_CONFIG"),
            otelcol=optional("OTELCOL"),
            cnpg_crds=existing_dir("CNPG_CRDS"),
            edge_crds=existing_dir("EDGE_CRDS"),
        )


def build_tools(*, quiet: bool = False) -> ClusterTools:
    """Run build.sh (a no-op when everything is cached) and return the tools it lists.

    A cold build compiles Kubernetes and takes 10-20 minutes on 2 cores; later calls take a second.
    The script's progress goes to stderr unless ``quiet``; on failure its output is in the exception.
    """
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if quiet else None,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}:\n{result.stderr or ''}")
    return ClusterTools.from_env_file()


def run_command(
    command: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; with ``check``, raise :class:`ClusterError` naming command and stderr."""
    try:
        result = subprocess.run(
            list(command),
            input=input,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ClusterError(f"timed out after {timeout}s: {' '.join(command)}") from error
    if check and result.returncode != 0:
        raise ClusterError(
            f"exit code {result.returncode}: {' '.join(command)}\n{result.stderr.strip() or result.stdout.strip()}"
        )
    return result

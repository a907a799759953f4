"""deploy/kind/cluster.yaml is what `kind create cluster --config` accepts: checked by kind's own code (its config
decoder, defaults, validation and containerd patching, built from kind's module by tests/cluster/build.sh into
`kindcheck`), on machines that have no container engine to run kind itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cluster.cluster_tools import ClusterError, ClusterTools, build_tools

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "kind" / "cluster.yaml"
REGISTRY_CONFIGMAP = ROOT / "deploy" / "kind" / "local-registry-hosting.yaml"

pytestmark = pytest.mark.timeout(900)  # a cold build.sh


@pytest.fixture(scope="module")
def tools() -> ClusterTools:
    try:
        tools = build_tools(quiet=True)
    except ClusterError as error:
        pytest.fail(f"could not build the test cluster's tools:\n{error}", pytrace=False)
    assert tools.kindcheck and tools.kind_containerd_config, "build.sh builds kindcheck"
    return tools


def kindcheck(tools: ClusterTools, config: Path) -> subprocess.CompletedProcess[str]:
    assert tools.kindcheck and tools.kind_containerd_config
    return subprocess.run(
        [str(tools.kindcheck), str(config), str(tools.kind_containerd_config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_committed_config_loads_and_points_containerd_at_the_local_registry(tools: ClusterTools) -> None:
    result = kindcheck(tools, CONFIG)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "name: venta" in out and "node: control-plane" in out
    toml = out.split("---- containerd config.toml\n", 1)[1]
    # kind's own containerd configuration with our patch merged into it (not replacing it).
    assert 'config_path = "/etc/containerd/certs.d"' in toml
    assert 'snapshotter = "overlayfs"' in toml

    # The hosts.toml the node mounts names the registry container of deploy/kind/up.sh, for the host Tilt pushes to.
    mounts = yaml.safe_load(CONFIG.read_text())["nodes"][0]["extraMounts"]
    (mount,) = [m for m in mounts if m["containerPath"] == "/etc/containerd/certs.d"]
    registry = yaml.safe_load(REGISTRY_CONFIGMAP.read_text())["data"]["localRegistryHosting.v1"]
    host = yaml.safe_load(registry)["host"]
    hosts_toml = ROOT / mount["hostPath"] / host / "hosts.toml"
    assert '[host."http://venta-registry:5000"]' in hosts_toml.read_text()
    assert "venta-registry" in (ROOT / "deploy" / "kind" / "up.sh").read_text()


@pytest.mark.parametrize(
    "text, error",
    [
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n    extraMount: []\n",
            "field extraMount not found",
        ),
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n", "unknown apiVersion"),
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: Not_A_Name\n", "not a valid cluster name"),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: worker\n",
            "must have at least one control-plane node",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\ncontainerdConfigPatches:\n  - '[plugins'\n",
            "containerdConfigPatches",
        ),
        ("{{{ not yaml", "could not determine kind / apiVersion"),
    ],
    ids=["unknown-field", "old-api-version", "bad-name", "no-control-plane", "bad-toml-patch", "garbage"],
)
def test_kind_refuses_a_broken_config_with_its_own_message(
    tools: ClusterTools, tmp_path: Path, text: str, error: str
) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(text)
    result = kindcheck(tools, config)
    assert result.returncode == 1
    assert error in result.stderr, result.stderr

"""The pure parts of the real test node (tests/cluster): which iptables rules teardown removes, the image archive
format, the configs. No root, no node: these decide what a teardown deletes on the host, so they are pinned here."""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path

import pytest

from tests.cluster import node_host, node_iptables
from tests.cluster.cluster_tools import ClusterError
from tests.cluster.image_archive import write_image_archive
from tests.cluster.node_config import (
    GATEWAY,
    NodePaths,
    cni_conflist,
    containerd_config,
    kubelet_config,
    registry_hosts_toml,
)

SAVED = r"""*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
:CNI-1a2b - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-podman - [0:0]
:OTHER - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \"venta-realnode\" id: \"abc\"" -j CNI-1a2b
-A POSTROUTING -s 10.88.0.5/32 -m comment --comment "name: \"podman\" id: \"x\"" -j CNI-podman
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -j KUBE-SVC-ABC
-A CNI-1a2b -d 10.244.0.0/24 -m comment --comment "name: \"venta-realnode\" id: \"abc\"" -j ACCEPT
-A CNI-1a2b ! -d 224.0.0.0/4 -m comment --comment "name: \"venta-realnode\" id: \"abc\"" -j MASQUERADE
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"podman\" id: \"x\"" -j CNI-DN-x
-A CNI-podman -d 10.88.0.0/16 -m comment --comment "name: \"podman\" id: \"x\"" -j ACCEPT
-A OTHER -j ACCEPT
COMMIT
"""


def test_teardown_removes_the_nodes_chains_and_rules_and_nothing_else() -> None:
    (table,) = node_iptables.parse_save(SAVED)
    chains, rules = node_iptables.owned(table)
    assert chains == ["CNI-1a2b", "KUBE-SERVICES", "KUBE-SVC-ABC"]  # CNI-HOSTPORT-DNAT still has podman's rule
    assert rules == [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -s 10.244.0.5/32 -m comment --comment "name: \\"venta-realnode\\" id: \\"abc\\"" -j CNI-1a2b',
    ]
    script = node_iptables.restore_script(table).splitlines()
    assert script[0] == "*nat" and script[-1] == "COMMIT"
    assert script.index("-F KUBE-SVC-ABC") < script.index("-X KUBE-SERVICES")  # every chain emptied before deletion


def test_a_shared_cni_chain_goes_once_only_the_nodes_rules_were_in_it() -> None:
    saved = SAVED.replace('"dnat name: \\"podman\\"', '"dnat name: \\"venta-realnode\\"')
    chains, rules = node_iptables.owned(node_iptables.parse_save(saved)[0])
    assert "CNI-HOSTPORT-DNAT" in chains
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in rules


def test_an_image_archive_is_deterministic_and_names_its_image(tmp_path: Path) -> None:
    program = tmp_path / "program"
    program.write_bytes(b"\x7fELF not really")
    first = write_image_archive(tmp_path / "a.tar", "localhost/venta-test/x:1", {"/x": program}, entrypoint=["/x"])
    second = write_image_archive(tmp_path / "b.tar", "localhost/venta-test/x:1", {"/x": program}, entrypoint=["/x"])
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as archive:
        (manifest,) = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(archive.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        with tarfile.open(fileobj=archive.extractfile(manifest["Layers"][0])) as layer:
            assert [(m.name, m.mode) for m in layer.getmembers()] == [("x", 0o755)]
    assert manifest["RepoTags"] == ["localhost/venta-test/x:1"]
    assert config["config"]["Entrypoint"] == ["/x"]


def test_the_node_keeps_its_state_out_of_the_hosts_default_places() -> None:
    paths = NodePaths(Path("/tmp/node-under-test"))
    toml = containerd_config(paths, pause_image="localhost/venta-test/pause:1")
    assert "/var/lib/containerd" not in toml and '"/run/containerd' not in toml
    assert "restrict_oom_score_adj = true" in toml and "netns_mounts_under_state_dir = true" in toml
    assert 'config_path = "/tmp/node-under-test/containerd/certs.d"' in toml  # registries: none unless trusted
    assert cni_conflist(paths)["plugins"][0]["ipam"]["dataDir"].startswith("/tmp/node-under-test/")
    kubelet = kubelet_config(paths, port=1, healthz_port=2)
    assert kubelet["clusterDNS"] == [GATEWAY] and kubelet["oomScoreAdj"] == 0 and kubelet["failCgroupV1"] is False
    assert all(str(v).startswith("/tmp/node-under-test/") for k, v in kubelet.items() if k.endswith(("Dir", "dir")))


def test_a_trusted_registry_is_reached_over_plain_http_for_pulls_only() -> None:
    hosts = tomllib.loads(registry_hosts_toml("localhost:5999"))
    assert hosts == {
        "server": "http://localhost:5999",
        "host": {"http://localhost:5999": {"capabilities": ["pull", "resolve"]}},
    }


def test_a_second_node_on_the_same_machine_fails_fast(tmp_path: Path) -> None:
    paths = NodePaths(tmp_path / "node")
    held = node_host.take_lock(paths)
    try:
        with pytest.raises(ClusterError, match="already running on this machine"):
            node_host.take_lock(paths)
    finally:
        node_host.release_lock(paths, held)
    node_host.release_lock(paths, node_host.take_lock(paths))  # free again

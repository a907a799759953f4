"""The operator's API client (`venta_operator.kube`) against the real API server, with every kind of credentials it
reads: a token (what the chart's ServiceAccount gives: every other operator test), client certificates as files and
as inline data (the cluster's admin kubeconfig, as `kind` and `k3d` write them), and wrong ones, which must end in a
clear `KubeError`, never a hang or a traceback from deep inside aiohttp."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.kwok import Kubectl
from venta_operator.kube import ApiServer, KubeError


@pytest.fixture
def marker(kubectl: Kubectl) -> Iterator[str]:
    """A ConfigMap made with kubectl for the client to find: nothing a controller creates in its own time."""
    name = f"login-{secrets.token_hex(4)}"
    kubectl("create", "configmap", name, "--namespace", "default")
    yield name
    kubectl("delete", "configmap", name, "--namespace", "default")


async def config_maps_of_default(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kube = await ApiServer.connect()
    try:
        return [c["metadata"]["name"] for c in await kube.list("ConfigMap", "default", "")]
    finally:
        await kube.close()


def flattened(kubectl: Kubectl, path: Path) -> Path:
    """The admin kubeconfig with the CA, certificate and key inline (`*-data`), as most tools write it."""
    path.write_text(kubectl("config", "view", "--raw", "--flatten", "--minify").stdout)
    assert "client-certificate-data" in path.read_text()
    return path


def test_client_certificates_as_files(
    kubectl: Kubectl, marker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(flattened(kubectl, tmp_path / "admin").read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    for section, field, name in (
        (cluster, "certificate-authority", "ca.crt"),
        (user, "client-certificate", "admin.crt"),
        (user, "client-key", "admin.key"),
    ):
        (tmp_path / name).write_bytes(base64.b64decode(section.pop(f"{field}-data")))
        section[field] = str(tmp_path / name)
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    assert marker in asyncio.run(config_maps_of_default(tmp_path / "kubeconfig", monkeypatch))


def test_client_certificates_inline(
    kubectl: Kubectl, marker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = flattened(kubectl, tmp_path / "kubeconfig")
    assert marker in asyncio.run(config_maps_of_default(config, monkeypatch))


def test_a_wrong_token_is_a_401_not_a_retry_loop(
    kubectl: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(flattened(kubectl, tmp_path / "admin").read_text())
    config["users"][0]["user"] = {"token": "not-a-token"}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    with pytest.raises(KubeError) as raised:
        asyncio.run(config_maps_of_default(tmp_path / "kubeconfig", monkeypatch))
    assert raised.value.status == 401


def test_an_unknown_certificate_authority_is_refused(
    kubectl: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(flattened(kubectl, tmp_path / "admin").read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster["certificate-authority-data"] = config["users"][0]["user"]["client-certificate-data"]  # not the CA
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    with pytest.raises(KubeError, match="unreachable") as raised:
        asyncio.run(config_maps_of_default(tmp_path / "kubeconfig", monkeypatch))
    assert raised.value.status == 0

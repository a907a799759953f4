"""Where the operator finds the API server and its credentials (`kube.login`), in a pod and from a kubeconfig; the
requests themselves are tested against the real API server (tests/e2e/operator/test_operator_api_client.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from venta_operator import kube
from venta_operator.kube import KubeError, login


@pytest.fixture
def in_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("the-token\n")
    (account / "ca.crt").write_text("PEM")
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT", account)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    return account


@pytest.mark.parametrize(
    ("host", "server"), [("10.96.0.1", "https://10.96.0.1:6443"), ("fd00::1", "https://[fd00::1]:6443")]
)
def test_in_a_pod_the_service_account_at_the_environments_address(
    in_a_pod: Path, host: str, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    info = login()
    assert (info.server, info.token, info.ca_path) == (server, "the-token", str(in_a_pod / "ca.crt"))
    assert kube._headers(info) == {"Authorization": "Bearer the-token"}


def test_in_a_pod_without_a_token_says_so(in_a_pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    (in_a_pod / "token").unlink()
    with pytest.raises(KubeError, match="no service account token"):
        login()


def test_a_kubeconfig_wins_over_the_pod(in_a_pod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    (tmp_path / "config").write_text(
        "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1234'}}]\n"
        "users: [{name: u, user: {username: alice, password: secret}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    info = login()
    assert info.server == "https://127.0.0.1:1234"
    assert kube._headers(info) == {"Authorization": "Basic YWxpY2U6c2VjcmV0"}


def test_nowhere_to_log_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeError, match="no credentials"):
        login()


@pytest.mark.parametrize(
    "text",
    ["", "not: [yaml", "apiVersion: v1\nkind: Config\n", "current-context: nowhere\ncontexts: []\n"],
)
def test_a_garbage_kubeconfig_fails_at_login(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kubeconfig").write_text(text)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeError, match="kubeconfig") as raised:
        login()
    assert raised.value.status == 0

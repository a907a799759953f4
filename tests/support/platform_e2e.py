"""Helpers of the platform-on-a-real-node tests: the README's install commands, the platform's public addresses,
and a request loop that counts what the platform acknowledged.

The install commands are read from the README's "Run it on Kubernetes" block, so what the tests run is what an SRE
types; only the image is pointed at the one built here (nothing can be pulled on these machines).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shlex
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.real_node import RealNode
from tests.support.operator_e2e import wait_for

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE = ROOT / "docs" / "examples" / "minimal.yaml"
# Requests small enough for a whole platform on two cores.
SMALL = {"requests": {"cpu": "20m", "memory": "96Mi"}}
IDENTITY_PORT = 5010
BLOCK = re.compile(r"<!-- e2e: run-on-kubernetes -->\s*```sh\n(.*?)```", re.S)


def readme_commands() -> list[list[str]]:
    """The commands of the README's install block (comments dropped, continuation lines joined), as argv lists."""
    match = BLOCK.search(README.read_text())
    assert match, f"{README} has no `<!-- e2e: run-on-kubernetes -->` block"
    text = match.group(1).replace("\\\n", " ")
    lines = [line.split(" #")[0].strip() for line in text.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def example_for(images: Any, path: Path, *, ingress: dict[str, Any] | None = None) -> dict[str, Any]:
    """The documented example, with what only this machine needs: images that exist here (nothing can be
    pulled), requests small enough for two cores, two vendor-service replicas (to see calls spread), three NATS
    servers (a pod of them is lost under load), and a rate limit
    that one test client hammering from one address stays under."""
    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    manifest["spec"].update(
        {
            "version": images.tag,
            "image": {"repository": images.repository, "pullPolicy": "Never"},
            # three servers: a JetStream cluster, as the production example runs it
            "nats": {"managed": {"image": images.nats, "replicas": 3, "resources": SMALL}},
            "postgres": {"managed": {"image": images.postgres, "resources": SMALL}},
            "redis": {"managed": {"image": images.redis, "resources": SMALL}},
            "services": {
                key: {"resources": SMALL}
                for key in ("users", "location", "gateway", "websocket", "searchSync", "notifications")
            }
            | {"vendors": {"replicas": 2, "resources": SMALL}},
            "resilience": {"rateLimit": "100000/60seconds"},
        }
    )
    if ingress is not None:  # the public door: the host and the Secret holding its certificate
        manifest["spec"]["ingress"] = ingress
    path.write_text(yaml.safe_dump(manifest))
    return manifest


def chart_values_for(images: Any) -> list[str]:
    """`helm install` values that point the operator at the image built here (the chart's default cannot be pulled)."""
    return [
        "--set",
        f"image.repository={images.repository}",
        "--set",
        f"image.tag={images.tag}",
        "--set",
        "image.pullPolicy=Never",
    ]


@dataclass
class Installer:
    """Runs the README's commands against the real node, with the image of this run and the test's example."""

    node: RealNode
    helm_extra: Sequence[str]  # --set image.repository=... (the README's chart default cannot be pulled here)
    example: Path  # the README's example with images that exist on this node
    timings: dict[str, float] = field(default_factory=dict)
    # Run right after the README creates the platform's namespace: what a cluster's admin would have there before
    # the platform comes (the certificate Secret its spec.ingress names).
    on_namespace: Callable[[], None] | None = None

    def run(self) -> None:
        for argv in readme_commands():
            tool, *args = argv
            began = time.monotonic()
            if tool == "helm":
                self.helm(*args, *self.helm_extra)
            elif tool == "kubectl":
                self.node.kubectl(
                    *[str(self.example) if a.startswith("docs/examples/") else a for a in args], timeout=1000
                )
                if args[:2] == ["create", "namespace"] and self.on_namespace is not None:
                    self.on_namespace()
            else:
                raise AssertionError(f"the README's install block runs {tool}, which the e2e does not know")
            self.timings[" ".join(argv[:3])] = round(time.monotonic() - began, 1)

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.node.tools.helm is not None, "helm was not built: run tests/cluster/build.sh"
        result = subprocess.run(
            [str(self.node.tools.helm), "--kubeconfig", str(self.node.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}{result.stdout}"
        return result


@dataclass
class Platform:
    """One VentaPlatform on the node, seen through kubectl and through its Services' ClusterIPs."""

    node: RealNode
    namespace: str
    name: str = "venta"

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.node.kubectl("-n", self.namespace, *args, check=check, input=input, timeout=timeout)

    def kubectl_command(self) -> list[str]:
        """The command line of `kubectl` in the namespace, for a process that runs beside the test (a watch)."""
        binary = self.node.control_plane.kubectl_binary
        return [binary, "--kubeconfig", str(self.node.kubeconfig), "-n", self.namespace]

    def get(self, *what: str) -> Any:
        return json.loads(self.kubectl("get", *what, "-o", "json").stdout)

    def resource(self) -> dict[str, Any]:
        return self.get("vp", self.name)  # type: ignore[no-any-return]

    def condition(self, kind: str = "Ready") -> dict[str, Any]:
        status = self.resource().get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == kind), {})

    def ready(self) -> bool:
        vp = self.resource()
        status = vp.get("status") or {}
        return (
            status.get("observedGeneration") == vp["metadata"]["generation"]
            and self.condition().get("status") == "True"
        )

    def wait_ready(self, timeout: float = 600) -> None:
        def report() -> str:
            return f"{self.name} Ready; status: {self.resource().get('status', {})}\n{self.pods_report()}"

        wait_for(self.ready, timeout=timeout, interval=2, what=report)

    def pods(self, component: str | None = None) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name}"
        if component:
            selector += f",app.kubernetes.io/component={component}"
        return self.get("pods", "-l", selector)["items"]  # type: ignore[no-any-return]

    def all_pods_ready(self) -> bool:
        """Every pod of the platform Ready, but for those of finished Jobs: a Job's pod that failed (its Job made
        another attempt, and the Job's own status says how that went) is finished too."""
        return all(pod_ready(p) for p in self.pods() if p["status"].get("phase") not in ("Succeeded", "Failed"))

    def pods_report(self) -> str:
        out = self.kubectl("get", "pods,jobs", "-o", "wide", check=False).stdout
        events = self.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False).stdout
        return f"{out}\nrecent events:\n{events[-3000:]}"

    def save_logs(self, directory: Path) -> Path:
        """Every container's log (and the previous one of a restarted container), events and objects, for a post
        mortem: written at the end of the module whatever happened."""
        directory.mkdir(parents=True, exist_ok=True)
        for pod in self.get("pods")["items"]:
            name = pod["metadata"]["name"]
            for previous in ("", "--previous"):
                log = self.kubectl("logs", name, "--all-containers", *([previous] if previous else []), check=False)
                if log.stdout:
                    (directory / f"{name}{previous.replace('--', '.')}.log").write_text(log.stdout)
        (directory / "objects.txt").write_text(self.pods_report())
        (directory / "platform.json").write_text(
            json.dumps(self.resource(), indent=1)
            if self.kubectl("get", "vp", self.name, check=False).returncode == 0
            else "deleted"
        )
        return directory

    def cluster_ip(self, component: str) -> str:
        service = self.get("service", f"{self.name}-{component}")
        return str(service["spec"]["clusterIP"])

    def url(self, component: str, port: int) -> str:
        return f"http://{self.cluster_ip(component)}:{port}"

    def identity_admin_token(self) -> str:
        """The local identity issuer's admin token, from the Secret the operator generated (what an SRE reads)."""
        secret = f"{self.name}-identity-admin"
        encoded = self.kubectl("get", "secret", secret, "-o", "jsonpath={.data.token}").stdout
        return base64.b64decode(encoded).decode()

    async def mint(self, user: str, *, ttl_s: int | None = None) -> str:
        """A bearer token for `user` from the platform's local identity issuer, with its admin token."""
        body: dict[str, Any] = {"user": user} | ({"ttlSeconds": ttl_s} if ttl_s else {})
        headers = {"Authorization": f"Bearer {self.identity_admin_token()}"}
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(f"{self.url('identity', IDENTITY_PORT)}/v1/tokens", json=body, headers=headers)
        assert answer.status_code == 200, f"minting a token for {user}: {answer.status_code} {answer.text[:500]}"
        return str(answer.json()["token"])


FOLLOWED = "*.followed.log"


class PodLogs:
    """Follows the log of every container of every pod in the namespace while it runs (`kubectl logs -f`), the pods
    a rollout or a fault deletes included: their logs are gone from the API once they are, and a request that failed
    on a replica that was going away is explained only there. Each container's log since the start (`--since-time`)
    goes to `<directory>/<pod>.<container>.followed.log` (FOLLOWED).
    """

    def __init__(self, platform: Platform, directory: Path) -> None:
        self.platform = platform
        self.directory = directory
        self._followers: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self._watch: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PodLogs:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        columns = "custom-columns=NAME:.metadata.name,CONTAINERS:.spec.containers[*].name,PHASE:.status.phase"
        self._watch = subprocess.Popen(
            [*self.platform.kubectl_command(), "get", "pods", "--watch", "--no-headers", "-o", columns],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._follow_all, args=(self._watch,), daemon=True)
        self._thread.start()
        return self

    def _follow_all(self, watch: subprocess.Popen[str]) -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            fields = line.split()
            if len(fields) != 3 or fields[2] != "Running":
                continue
            pod, containers = fields[0], fields[1].split(",")
            for container in containers:
                follower = self._followers.get((pod, container))
                log = self.directory / f"{pod}.{container}.followed.log"
                # a follower that ended having written nothing met a container not started yet: try again
                if follower is not None and (follower.poll() is None or log.stat().st_size > 0):
                    continue
                with log.open("wb") as out:
                    follow = ["logs", "-f", f"--since-time={self._since}", pod, "-c", container]
                    self._followers[(pod, container)] = subprocess.Popen(
                        [*self.platform.kubectl_command(), *follow],
                        stdout=out,
                        stderr=subprocess.DEVNULL,
                    )

    def __exit__(self, *_: object) -> None:
        assert self._watch is not None and self._thread is not None
        self._watch.terminate()
        self._thread.join(timeout=10)
        followers = list(self._followers.values())  # a copy: the watch thread may still be adding one
        for follower in followers:
            follower.terminate()
        for follower in followers:
            follower.wait(timeout=10)


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


@dataclass
class Outcomes:
    """What a request loop saw: acknowledged writes by id, and every failure by kind."""

    acknowledged: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # id -> name, to find each one in search
    reads: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, of every answered request
    failures: Counter[str] = field(default_factory=Counter)
    failure_samples: list[str] = field(default_factory=list)

    def failed(self, kind: str, detail: str) -> None:
        self.failures[kind] += 1
        if len(self.failure_samples) < 20:
            self.failure_samples.append(f"{time.strftime('%H:%M:%S')} {kind}: {detail[:300]}")

    @property
    def failed_total(self) -> int:
        return sum(self.failures.values())


class RequestLoop:
    """Creates and reads vendors through the gateway until stopped, as a mobile client would (with its token)."""

    def __init__(self, gateway: str, token: str, *, prefix: str = "loop", pause_s: float = 0.05) -> None:
        self.gateway, self.token, self.prefix, self.pause_s = gateway, token, prefix, pause_s
        self.outcomes = Outcomes()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RequestLoop:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def acknowledge(self, count: int, *, within_s: float, what: str) -> None:
        """Wait until `count` more writes are acknowledged (the platform serves again)."""
        target = len(self.outcomes.acknowledged) + count
        deadline = time.monotonic() + within_s
        while len(self.outcomes.acknowledged) < target:
            assert time.monotonic() < deadline, f"timed out after {within_s:.0f}s waiting for {what}: {self.outcomes}"
            await asyncio.sleep(0.5)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=self.gateway, headers=headers, timeout=10) as api:
            n = 0
            while not self._stop.is_set():
                n += 1
                await self._write(api, n)
                if self.outcomes.acknowledged:
                    await self._read(api, self.outcomes.acknowledged[-1])
                await asyncio.sleep(self.pause_s)

    async def _write(self, api: httpx.AsyncClient, n: int) -> None:
        name = f"{self.prefix} {n} {uuid.uuid4().hex[:6]}"
        began = time.monotonic()
        try:
            answer = await api.post("/v1/vendors", json={"name": name, "description": "e2e"})
        except httpx.HTTPError as error:
            self.outcomes.failed("write-transport", repr(error))
            return
        self.outcomes.latencies.append(time.monotonic() - began)
        if answer.status_code in (200, 201):
            vendor_id = answer.json()["id"]
            self.outcomes.acknowledged.append(vendor_id)
            self.outcomes.names[vendor_id] = name
        else:
            self.outcomes.failed(f"write-{answer.status_code}", answer.text)

    async def _read(self, api: httpx.AsyncClient, vendor_id: str) -> None:
        began = time.monotonic()
        try:
            answer = await api.get(f"/v1/vendors/{vendor_id}")
        except httpx.HTTPError as error:
            self.outcomes.failed("read-transport", repr(error))
            return
        self.outcomes.latencies.append(time.monotonic() - began)
        if answer.status_code == 200:
            self.outcomes.reads += 1
        else:
            self.outcomes.failed(f"read-{answer.status_code}", answer.text)


# Each test's reports by phase ("setup", "call", "teardown"), kept by tests/e2e/real/conftest.py's hook: what a
# fixture reads after its yield to save pods' logs while they still exist (a module's own save at its end comes
# after its last test deleted the platform).
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test of `request` failed (in its setup or its call), asked by a fixture after its yield."""
    return any(r.failed for r in request.node.stash.get(PHASE_REPORTS, {}).values())


def error_lines(logs: Path, pattern: str = "*.log") -> list[str]:
    """The lines of the saved logs (`Platform.save_logs`, `PodLogs`) that name an error or a traceback, prefixed by
    their file."""
    return [
        f"{log.name}: {line}"
        for log in sorted(logs.glob(pattern))
        for line in log.read_text(errors="replace").splitlines()
        if "error" in line.lower() or "traceback" in line.lower()
    ]

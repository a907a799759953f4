"""The import contracts of pyproject.toml can fail: one forbidden import added to a copy of the tree breaks each.

`test_code_quality.py` proves the tree keeps every contract; a contract that cannot fail (a misspelt module, a layer
that matches nothing) would pass that test too. Each case here adds one line to one file of a copy of the packages
and expects `lint-imports`, run on the copy, to name the contract that line breaks. To cover a new contract, add a
`Case`: the file (created if it does not exist), the line, the contract's name as written in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
SOURCES = ["services", "operator/venta_operator"]  # the root packages of [tool.importlinter]
IMPORT_ROOTS = [".", "operator"]  # where those packages are imported from (as in [tool.ruff] src)

LAYERS = "Operator layers: handlers > reconcile pass > API client > plumbing > decisions > builders > spec > schema"
PURE = "Pure operator modules import no cluster or HTTP client, Kopf, metrics, settings, clock or randomness"
KIT = "The kit never imports a service, the CLI, the operator, vendor search, the event catalogue or the dev kit"
KIT_LAYERS = "Kit layers: HTTP host > auth > gRPC and events > db, probes, lifecycle, redis > telemetry > leaves"
DEVKIT = "Only the CLI, the tests and the benchmarks import the dev kit (a deployed service never does)"
INDEPENDENT = "Services never import each other"


@dataclass(frozen=True)
class Case:
    file: str  # relative to the repository root
    line: str
    breaks: str  # the name of the contract the line breaks

    def __str__(self) -> str:
        return f"{self.file}: {self.line}"


CASES = [
    Case("operator/venta_operator/builders/pods.py", "import venta_operator.kube", LAYERS),
    Case("operator/venta_operator/spec.py", "import venta_operator.handlers", LAYERS),
    Case("operator/venta_operator/status.py", "from venta_operator.plan import Plan", LAYERS),  # siblings
    Case("operator/venta_operator/unplaced.py", "import venta_operator.naming", LAYERS),  # a module with no layer
    Case("operator/venta_operator/render.py", "from venta_operator.kube import KINDS", PURE),
    Case("operator/venta_operator/plan.py", "import kopf", PURE),
    Case("operator/venta_operator/builders/secret.py", "import secrets", PURE),
    Case("services/kit/__init__.py", "import venta_operator.spec", KIT),
    Case("services/kit/events/consumer.py", "import services.event_catalog", KIT),  # the bus is given a catalogue
    Case("services/kit/metrics.py", "import services.kit.grpc.client", KIT_LAYERS),
    Case("services/kit/grpc/client.py", "import services.kit.http.envelope", KIT_LAYERS),
    Case("services/kit/grpc/server.py", "import services.kit.events.outbox", KIT_LAYERS),  # siblings
    Case("services/kit/unplaced.py", "import services.kit.errors", KIT_LAYERS),  # a module with no layer
    Case("services/vendors/app.py", "import services.devkit.servers", DEVKIT),
    Case("services/gateway/app.py", "import services.vendors.repository", INDEPENDENT),
]


def _contract_names(tree: Path) -> list[str]:
    config = tomllib.loads((tree / "pyproject.toml").read_text())
    return [c["name"] for c in config["tool"]["importlinter"]["contracts"]]


def _only_sources(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages' sources and of pyproject.toml, shared by the cases (each restores what it changed)."""
    root = tmp_path_factory.mktemp("tree")
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, root / folder, ignore=_only_sources)
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


def lint_imports(tree: Path) -> tuple[int, str]:
    """Exit code and output of lint-imports on the copy, which comes first on the path, before the editable install.

    The cases that must break prove it: on the repository's own tree they would pass.
    """
    path = os.pathsep.join(str(tree / folder) for folder in IMPORT_ROOTS)
    done = subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache", "--no-logo"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())  # long contract names wrap


@pytest.fixture
def inject(tree: Path) -> Iterator[Callable[[Case], None]]:
    """Adds the case's line to its file for one test, then puts the file back as it was."""
    changed: list[tuple[Path, str | None]] = []  # each file with its text before (None: it did not exist)

    def add(case: Case) -> None:
        target = tree / case.file
        before = target.read_text() if target.exists() else None
        changed.append((target, before))
        target.write_text(f"{before or ''}\n{case.line}  # added by test_import_contracts\n")

    yield add
    for target, before in changed:
        if before is None:
            target.unlink()
        else:
            target.write_text(before)


def test_the_unmodified_copy_keeps_every_contract(tree: Path) -> None:
    code, out = lint_imports(tree)
    assert code == 0, out
    for name in _contract_names(tree):
        assert f"{name} KEPT" in out, out


@pytest.mark.parametrize("case", CASES, ids=str)
def test_one_forbidden_import_breaks_its_contract(tree: Path, inject: Callable[[Case], None], case: Case) -> None:
    assert case.breaks in _contract_names(tree), f"no contract named {case.breaks!r} in pyproject.toml"
    inject(case)
    code, out = lint_imports(tree)
    assert code != 0, out
    assert f"{case.breaks} BROKEN" in out, out

"""The project's own rules, enforced by the tools that hold them: ruff, mypy, import-linter, fresh stubs."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    done = _run(str(BIN / "ruff"), "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_formatted() -> None:
    done = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert done.returncode == 0, f"run ./venta fmt:\n{done.stdout}{done.stderr}"


def test_pre_commit_config_is_valid() -> None:
    done = _run(str(BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    done = _run(str(BIN / "mypy"))  # the files are listed in pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_contracts() -> None:
    done = _run(str(BIN / "lint-imports"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    done = _run(sys.executable, "protos/generate.py", "--out", str(tmp_path / "contracts"))
    assert done.returncode == 0, done.stderr
    committed = ROOT / "services" / "contracts"

    def differences(cmp: filecmp.dircmp[str]) -> list[str]:
        out = [*cmp.left_only, *cmp.right_only, *cmp.diff_files]
        for sub in cmp.subdirs.values():
            out += differences(sub)
        return [name for name in out if name != "__pycache__"]

    stale = differences(filecmp.dircmp(tmp_path / "contracts", committed, ignore=["__pycache__"]))
    assert not stale, f"stubs are stale, run `python protos/generate.py`: {stale}"

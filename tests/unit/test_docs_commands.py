"""The install commands shown to an SRE are the ones the end-to-end tests run (tests/support/platform_e2e.py reads
the README's block), and docs/operator.md shows the same block, so neither page can drift from what is tested."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- e2e: run-on-kubernetes -->\s*```sh\n(.*?)```", re.S)


def block(path: Path) -> str:
    found = BLOCK.findall(path.read_text())
    assert len(found) == 1, f"{path}: expected one run-on-kubernetes block, found {len(found)}"
    return str(found[0])


def test_operator_docs_show_the_tested_install_commands() -> None:
    assert block(ROOT / "docs" / "operator.md") == block(ROOT / "README.md")


def test_the_install_block_uses_only_what_the_e2e_can_run() -> None:
    tools = {
        line.split()[0]
        for line in block(ROOT / "README.md").replace("\\\n", " ").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert tools <= {"helm", "kubectl"}
    assert "docs/examples/minimal.yaml" in block(ROOT / "README.md")

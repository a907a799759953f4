"""Generate the Python stubs for every .proto under protos/ into the package `services.contracts`.

This is the only way the generated code is made: it is never edited by hand. `tests/unit/test_contracts_fresh.py`
runs this script into a temporary folder and fails when the committed stubs differ (stale or edited).

protoc writes absolute imports named after the proto package (`from venta.vendor.v1 import ...`); they are
rewritten to live under `services.contracts` so that the generated package needs nothing on sys.path but the project.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
DEFAULT_OUT = PROTOS.parent / "services" / "contracts"
PACKAGE = "services.contracts"
_IMPORT = re.compile(r"^(from|import) venta\.", re.MULTILINE)


def _plugin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{name} not found beside {sys.executable}: install the dev extra (mypy-protobuf)")
    return str(path)


def generate(out: Path) -> None:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        well_known = resources.files("grpc_tools") / "_proto"
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / "__init__.py").write_text('"""Generated protobuf/gRPC stubs (protos/generate.py). Never edit."""\n')
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_dir():
                continue
            target = out / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT.sub(lambda m: f"{m.group(1)} {PACKAGE}.venta.", path.read_text())
            target.write_text(text)
        for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()

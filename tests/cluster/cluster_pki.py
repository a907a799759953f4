"""The control plane's certificates, made before kwokctl would make its own, so that they name every address the
API server is reached at.

Why: kwokctl signs one certificate for every component (serving and client) naming `kubernetes.default.svc`, the
loopback addresses and the host's addresses, but not the ClusterIP of the `kubernetes` Service. On KWOK nothing
dials that address; on the real node every pod that talks to the API server does (in-cluster configuration uses
`KUBERNETES_SERVICE_HOST`, the ClusterIP), and its TLS check fails. kwokctl keeps a `pki/` directory that already
exists, so this writes the same four files it would (`ca.crt`, `ca.key`, `admin.crt`, `admin.key`: the same
subject, `system:masters`, server and client use) with the extra names. Standard library and the openssl CLI.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.cluster.cluster_tools import ClusterError

# kwokctl's own names (pkg/kwokctl/pki), then ours
DEFAULT_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
    "127.0.0.1",
    "::1",
)
VALID_DAYS = 3650


def _alt_name(name: str) -> str:
    is_ip = name.replace(".", "").isdigit() or ":" in name
    return f"IP:{name}" if is_ip else f"DNS:{name}"


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)}: {result.stderr.strip()}")


def write_pki(directory: Path, extra_names: Sequence[str]) -> None:
    """A CA and one certificate for everything (kwokctl's layout) valid for kwokctl's names plus ``extra_names``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, crt = directory / "admin.key", directory / "admin.crt"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
        "-days",
        str(VALID_DAYS),
        "-subj",
        "/CN=kwok-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
    )
    names = ",".join(_alt_name(n) for n in dict.fromkeys([*DEFAULT_NAMES, *extra_names]))
    with tempfile.TemporaryDirectory() as scratch:
        csr, extensions = Path(scratch) / "admin.csr", Path(scratch) / "extensions.cnf"
        extensions.write_text(
            f"subjectAltName={names}\nextendedKeyUsage=serverAuth,clientAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n"
        )
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            "/O=system:masters/CN=kwok-admin",
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_crt),
            "-CAkey",
            str(ca_key),
            "-set_serial",
            "0x" + Path("/proc/sys/kernel/random/uuid").read_text().strip().replace("-", "")[:30],
            "-days",
            str(VALID_DAYS),
            "-extfile",
            str(extensions),
            "-out",
            str(crt),
        )
    for path in (ca_key, key):
        path.chmod(0o600)

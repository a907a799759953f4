"""Print the children a VentaPlatform manifest would get, as YAML: `python -m venta_operator.render platform.yaml`.

For reviews and linters (kube-linter runs on this output in the tests): it shows every object of the final stage,
as if PostgreSQL, the migration and the services were already ready, with placeholder credentials. It reads files
only; it never contacts a cluster.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from venta_operator.builders.cloudnativepg import CNPG_KINDS
from venta_operator.builders.ingress import OPTIONAL_KINDS as EDGE_KINDS
from venta_operator.builders.monitoring import OPTIONAL_KINDS
from venta_operator.builders.secret import generated_secret_names, secret_keys
from venta_operator.plan import Facts, desired, generated_secret
from venta_operator.spec import platform_from


def render(body: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    body.setdefault("metadata", {}).setdefault("namespace", namespace)
    p = platform_from(body)
    uid = "00000000-0000-0000-0000-000000000000"
    plan = desired(
        p,
        Facts(
            uid=uid,
            available_kinds=OPTIONAL_KINDS | CNPG_KINDS | EDGE_KINDS,
            postgres_ready=True,
            migration_complete=True,
            services_ready=True,
        ),
    )
    secrets = [
        generated_secret(p, name, {k: "<generated>" for k in secret_keys(name, p.name)}, uid)
        for name in generated_secret_names(p)
    ]
    return [*secrets, *plan.apply]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("manifest", help="a VentaPlatform YAML file ('-' for stdin)")
    parser.add_argument("--namespace", default="default")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.manifest == "-" else open(args.manifest).read()  # noqa: SIM115
    sys.stdout.write(yaml.safe_dump_all(render(yaml.safe_load(text), args.namespace), sort_keys=False, width=120))


if __name__ == "__main__":
    main()

"""The dev kit's PostgreSQL, started as root (as CI runs), runs as `nobody` with no supplementary group: the
privileges are dropped by `setpriv` after its exec, so the process that starts it (with gRPC's threads, in a test
session) spawns it with vfork and never runs fork handlers in a half-copied child."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from services.devkit.servers import Postgres, as_user


def _credentials(pid: int) -> dict[str, list[int]]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"Uid", "Gid", "Groups"}:
            fields[name] = [int(part) for part in value.split()]
    return fields


def test_a_command_runs_as_us_or_through_setpriv() -> None:
    assert as_user(["initdb", "-D", "x"], None) == ["initdb", "-D", "x"]
    nobody = pwd.getpwnam("nobody")
    assert as_user(["initdb"], nobody) == [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
        "--",
        "initdb",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as the caller when that is not root")
def test_postgres_started_by_root_runs_as_nobody_without_groups(postgres: Postgres) -> None:
    assert postgres.proc is not None
    nobody = pwd.getpwnam("nobody")
    seen = _credentials(postgres.proc.pid)  # the postmaster itself: setpriv exec'd it in place
    assert seen["Uid"] == [nobody.pw_uid] * 4 and seen["Gid"] == [nobody.pw_gid] * 4
    assert seen["Groups"] == []
    assert Path(f"/proc/{postgres.proc.pid}/exe").resolve().name == "postgres"

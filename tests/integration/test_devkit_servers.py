"""The dev kit's PostgreSQL, started as root (as CI runs), runs as `nobody` with no supplementary group: the
privileges are dropped by `setpriv` after its exec, so the process that starts it (with gRPC's threads, in a test
session) spawns it with vfork and never runs fork handlers in a half-copied child."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

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


def test_postgres_runs_as_nobody_without_groups_when_started_by_root(postgres: Postgres) -> None:
    """As root (CI) the postmaster is nobody with no supplementary group; as anyone else it is the caller."""
    assert postgres.proc is not None
    seen = _credentials(postgres.proc.pid)  # the postmaster itself: setpriv exec'd it in place
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid, groups = nobody.pw_uid, nobody.pw_gid, []
    else:
        uid, gid, groups = os.geteuid(), os.getegid(), sorted(os.getgroups())
    assert seen["Uid"] == [uid] * 4 and seen["Gid"] == [gid] * 4
    assert sorted(seen["Groups"]) == groups
    assert Path(f"/proc/{postgres.proc.pid}/exe").resolve().name == "postgres"

"""`venta migrate --all` as the operator's migration Job runs it: the server's address and credentials in the
environment, no database name, and each service's tables land in that service's own database.

A real cluster found the Job once set VENTA_DB_NAME (to the first service's database), which every service's
settings then read: all migrations went into one database, and the users service failed on its first query.
"""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from services.devkit.servers import Postgres
from services.location.config import LocationSettings
from services.users.config import UserSettings
from services.vendors.config import VendorSettings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def migrate(postgres: Postgres, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENTA_")}
    env |= {"VENTA_DB_HOST": "127.0.0.1", "VENTA_DB_PORT": str(postgres.port), "VENTA_DB_USER": "postgres", **extra}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate", "--all"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def tables(postgres: Postgres, database: str) -> set[str]:
    conn = await asyncpg.connect(postgres.url_for(database))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_each_service_is_migrated_into_its_own_database(fresh_postgres: Postgres) -> None:
    done = migrate(fresh_postgres)
    assert done.returncode == 0, done.stderr
    users, vendors, location = (
        cls.model_fields["db_name"].default for cls in (UserSettings, VendorSettings, LocationSettings)
    )
    assert {"user", "event_outbox"} <= await tables(fresh_postgres, users)
    assert {"vendor", "event_outbox"} <= await tables(fresh_postgres, vendors)
    assert "user" not in await tables(fresh_postgres, vendors)
    assert "vendor" not in await tables(fresh_postgres, location) and await tables(fresh_postgres, location)
    again = migrate(fresh_postgres)  # a second Job of the same version changes nothing
    assert again.returncode == 0, again.stderr


async def test_one_database_name_for_every_service_is_refused(fresh_postgres: Postgres) -> None:
    for variable, value in (
        ("VENTA_DB_NAME", "venta_users"),
        ("VENTA_DATABASE_URL", fresh_postgres.url_for("venta_users")),
    ):
        done = migrate(fresh_postgres, **{variable: value})
        assert done.returncode == 2, done.stderr
        assert f"{variable} name one database" in done.stderr and "Traceback" not in done.stderr
    conn = await asyncpg.connect(fresh_postgres.url)
    try:
        databases = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()
    assert not {d for d in databases if d.startswith("venta_")}, databases  # nothing was touched

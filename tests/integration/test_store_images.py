"""The local store images run as the operator runs the official ones, from the operator's own manifests.

No registry can be reached here, so the real-node tests use NATS, PostgreSQL and Redis images built by
tests/cluster/images/build.sh from Debian packages and a PyPI wheel. These tests hold them to the official images'
contract as the operator relies on it: each is started with podman from the StatefulSet or Deployment the
operator builds (user, read-only root, volumes, Secrets, the PostgreSQL init script), must pass that manifest's
probes and serve real clients, and must refuse garbage the way the official image does.

Slow: the first run builds the images (about 2 minutes; seconds when cached). Needs root (rootful podman).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis

from tests.cluster.cluster_tools import ClusterError
from tests.cluster.local_images import LocalImages, build_images
from tests.cluster.podman_pods import run_pod_container
from venta_operator.builders.configmap import postgres_init_configmap, postgres_init_name
from venta_operator.builders.deployment import redis_deployment
from venta_operator.builders.secret import (
    POSTGRES_ADMIN_PASSWORD_KEY,
    POSTGRES_PASSWORD_KEY,
    POSTGRES_USER_KEY,
    REDIS_PASSWORD_KEY,
    postgres_secret_name,
    redis_secret_name,
)
from venta_operator.builders.statefulset import nats_statefulset, postgres_statefulset
from venta_operator.spec import Platform, platform_from

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # a cold build of the base and the stores takes minutes
]

PLATFORM: Platform = platform_from({"metadata": {"name": "images", "namespace": "t"}, "spec": {"version": "1"}})
ADMIN_PASSWORD, APP_USER, APP_PASSWORD, REDIS_PASSWORD = "admin-Pw1", "venta", "app-Pw2", "redis-Pw3"


@pytest.fixture(scope="module")
def images() -> LocalImages:
    try:
        return build_images("stores", quiet=True)
    except ClusterError as error:
        pytest.fail(f"could not build the store images:\n{error}", pytrace=False)


def _pod(workload: dict | None) -> dict:
    assert workload is not None
    return workload["spec"]["template"]["spec"]


async def test_postgres_initialises_serves_and_stops_fast(images: LocalImages, tmp_path: Path) -> None:
    secret = {
        POSTGRES_ADMIN_PASSWORD_KEY: ADMIN_PASSWORD,
        POSTGRES_USER_KEY: APP_USER,
        POSTGRES_PASSWORD_KEY: APP_PASSWORD,
    }
    init = {postgres_init_name(PLATFORM.name): postgres_init_configmap(PLATFORM)["data"]}
    pod = _pod(postgres_statefulset(PLATFORM))
    run = {
        "image": images.name("POSTGRES"),
        "workdir": tmp_path,
        "config_maps": init,
        "secrets_data": {postgres_secret_name(PLATFORM.name): secret},
    }
    with run_pod_container(images, pod, **run) as pg:
        pg.wait_ready(90)
        port = pg.ports["postgres"]
        admin = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", password=ADMIN_PASSWORD)
        assert await admin.fetchval("SHOW listen_addresses") == "*"
        # The operator's init script (sourced from the ConfigMap) made the application role and databases.
        app = await asyncpg.connect(
            host="127.0.0.1", port=port, user=APP_USER, password=APP_PASSWORD, database="venta_users"
        )
        assert await app.fetchval("SELECT current_user") == APP_USER
        with pytest.raises(asyncpg.InvalidPasswordError):  # not loopback: scram-sha-256, as upstream
            await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", password="wrong")
        # SIGTERM with clients connected: a fast shutdown (a smart one would wait for them to leave).
        assert pg.terminate(grace=15) == 0
        assert "fast shutdown request" in pg.logs()
        admin.terminate()
        app.terminate()
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").read_text().strip() == "15"
    # Started again on the same claim: no second initialisation, the databases are still there.
    with run_pod_container(images, pod, **run) as pg:
        pg.wait_ready(60)
        assert "Skipping initialization" in pg.logs()
        app = await asyncpg.connect(
            host="127.0.0.1", port=pg.ports["postgres"], user=APP_USER, password=APP_PASSWORD, database="venta_search"
        )
        await app.close()


async def test_postgres_takes_user_database_and_sql_scripts(images: LocalImages, tmp_path: Path) -> None:
    pod = _pod(postgres_statefulset(PLATFORM))
    [container] = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    env["POSTGRES_USER"] = {"name": "POSTGRES_USER", "value": "owner"}
    env["POSTGRES_DB"] = {"name": "POSTGRES_DB", "value": "shop"}
    container["env"] = [e for name, e in env.items() if not name.startswith("VENTA_")]
    init = next(v for v in pod["volumes"] if v["name"] == "init")["configMap"]
    init["items"] = [{"key": "a.sql", "path": "20-a.sql"}, {"key": "b.sql.gz", "path": "30-b.txt"}]
    scripts = {
        "a.sql": "CREATE TABLE marker AS SELECT current_database() AS db, current_user AS who;",
        "b.sql.gz": "not run: only *.sh, *.sql, *.sql.gz and *.sql.xz are",
    }
    with run_pod_container(
        images,
        pod,
        image=images.name("POSTGRES"),
        workdir=tmp_path,
        config_maps={init["name"]: scripts},
        secrets_data={postgres_secret_name(PLATFORM.name): {POSTGRES_ADMIN_PASSWORD_KEY: ADMIN_PASSWORD}},
    ) as pg:
        # The manifest's own probe says `-U postgres`; pg_isready only checks that the server answers.
        pg.wait_ready(90)
        conn = await asyncpg.connect(
            host="127.0.0.1", port=pg.ports["postgres"], user="owner", password=ADMIN_PASSWORD, database="shop"
        )
        assert tuple(await conn.fetchrow("SELECT db, who FROM marker")) == ("shop", "owner")
        await conn.close()
        assert "ignoring /docker-entrypoint-initdb.d/30-b.txt" in pg.logs()


def test_postgres_refuses_to_initialise_without_a_password(images: LocalImages) -> None:
    done = images.podman(
        "run",
        "--rm",
        "--network=none",
        "--user=999:999",
        "--tmpfs=/var/lib/postgresql/data",
        images.name("POSTGRES"),
        check=False,
    )
    assert done.returncode == 1
    assert "superuser password is not specified" in done.stderr


def test_postgres_runs_other_commands_as_given(images: LocalImages) -> None:
    done = images.podman("run", "--rm", "--network=none", images.name("POSTGRES"), "pg_isready", "--version")
    assert "15." in done.stdout


async def test_nats_runs_jetstream_from_the_operator_manifest(images: LocalImages, tmp_path: Path) -> None:
    with run_pod_container(
        images, _pod(nats_statefulset(PLATFORM)), image=images.name("NATS"), workdir=tmp_path
    ) as server:
        server.wait_ready(30)  # the manifest's probe: /healthz?js-enabled-only=true
        client = await nats.connect(f"nats://127.0.0.1:{server.ports['client']}")
        js = client.jetstream()
        await js.add_stream(name="probe", subjects=["probe.>"])
        assert (await js.publish("probe.one", b"x")).seq == 1
        assert (await js.account_info()).streams == 1
        await client.close()
    assert any((tmp_path / "data").rglob("*.blk")), "JetStream wrote nothing to the claim"


def test_nats_refuses_to_start_without_its_store(images: LocalImages) -> None:
    done = images.podman(
        "run",
        "--rm",
        "--network=none",
        "--user=10001:10001",
        "--read-only",
        "--read-only-tmpfs=false",
        images.name("NATS"),
        "--jetstream",
        "--store_dir",
        "/data",
        check=False,
        timeout=30,
    )
    assert done.returncode != 0
    assert "Can't start JetStream" in done.stderr


async def test_redis_answers_with_the_password_only(images: LocalImages, tmp_path: Path) -> None:
    with run_pod_container(
        images,
        _pod(redis_deployment(PLATFORM)),
        image=images.name("REDIS"),
        workdir=tmp_path,
        secrets_data={redis_secret_name(PLATFORM.name): {REDIS_PASSWORD_KEY: REDIS_PASSWORD}},
    ) as server:
        server.wait_ready(30)  # the manifest's probe: sh -c 'redis-cli -a "$REDIS_PASSWORD" ... ping'
        port = server.ports["redis"]
        async with aioredis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD) as client:
            assert await client.ping()
        async with aioredis.Redis(host="127.0.0.1", port=port) as client:
            with pytest.raises(aioredis.AuthenticationError):
                await client.ping()


def test_redis_refuses_unknown_options(images: LocalImages) -> None:
    done = images.podman(
        "run",
        "--rm",
        "--network=none",
        "--user=10001:10001",
        images.name("REDIS"),
        "--no-such-option",
        "1",
        check=False,
        timeout=30,
    )
    assert done.returncode == 1
    assert "Bad directive" in done.stderr

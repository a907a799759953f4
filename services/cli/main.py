"""`venta serve NAME`, `migrate`, `up`, `reindex`, `deadletters`: the entry points of what the platform runs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import uvloop

from services.cli import deadletters, live_map_client
from services.cli.registry import SERVICES
from services.kit.config import ConfigError, load_settings
from services.kit.db.migrations import upgrade
from services.kit.lifecycle import serve, tune_gc
from services.kit.logging import configure_logging
from services.kit.telemetry import instrument_process, shutdown_tracing


def _serve(name: str) -> None:
    entry = SERVICES[name]
    settings = load_settings(entry.settings)
    configure_logging(name, settings.log_level)
    instrument_process(name, metrics_enabled=settings.metrics_enabled)
    tune_gc(settings.gc_threshold)

    async def main() -> None:
        # built inside the loop: grpc.aio binds to the running loop
        await serve(entry.build(settings), freeze=settings.gc_freeze)

    run = uvloop.run if settings.event_loop == "uvloop" else asyncio.run
    try:
        run(main())
    finally:
        shutdown_tracing()


ONE_DATABASE = ("VENTA_DB_NAME", "VENTA_DATABASE_URL")


async def _migrate(names: list[str]) -> None:
    names = [name for name in names if SERVICES[name].migrations is not None]
    named = [variable for variable in ONE_DATABASE if os.environ.get(variable)]
    if len(names) > 1 and named:
        # Each service has a database of its own; one name for all would put every service's tables in it.
        raise ConfigError(
            f"{' and '.join(named)} name one database, but {', '.join(names)} each have their own: "
            "migrate one service at a time with it, or unset it (host, port, user and password "
            "come from VENTA_DB_HOST/PORT/USER/PASSWORD)"
        )
    for name in names:
        entry = SERVICES[name]
        assert entry.migrations is not None
        settings = load_settings(entry.settings)
        await upgrade(entry.migrations, settings.dsn)  # type: ignore[attr-defined]
        print(f"migrated {name}")


def _reindex(vendors_addr: str | None) -> None:
    import os

    from services.cli.reindex import reindex
    from services.kit.config import GrpcTlsSettings
    from services.kit.grpc.tls import GrpcTls
    from services.search_sync.config import SearchSyncSettings

    settings = load_settings(SearchSyncSettings)
    tls = GrpcTls.from_settings(load_settings(GrpcTlsSettings))
    configure_logging("reindex", settings.log_level)
    address = vendors_addr or os.environ.get("VENTA_VENDORS_ADDR", "127.0.0.1:5005")
    result = asyncio.run(reindex(settings, vendors_addr=address, tls=tls))
    print(
        f"reindexed {result['indexed']} vendors into {settings.search_provider}/{settings.search_index}, "
        f"replayed {result['replayed']} events, in {result['seconds']}s"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="venta", description="The Venta platform.")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one service until SIGTERM")
    serve.add_argument("service", choices=sorted(SERVICES))
    migrate = commands.add_parser("migrate", help="apply database migrations (creates databases as needed)")
    migrate.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(sorted(SERVICES))}")
    migrate.add_argument("--all", action="store_true", help="every service with a database")
    up = commands.add_parser("up", help="run the whole platform locally, with embedded servers unless URLs given")
    up.add_argument("--data-dir", type=Path, default=Path(".venta"), help="where data and logs live (kept)")
    up.add_argument("--postgres-url", help="use this PostgreSQL server (postgresql://user:pass@host:port)")
    up.add_argument("--nats-url", help="use this NATS server (JetStream enabled)")
    up.add_argument("--redis-url", help="use this Redis server")
    up.add_argument("--only", nargs="*", choices=sorted(SERVICES), help="start only these services")
    up.add_argument("--port-offset", type=int, default=0, help="add this to every port (two platforms side by side)")
    smoke = commands.add_parser("smoke", help="create/read/update/refuse/delete a vendor on a running platform")
    smoke.add_argument("--vendors-addr", default="127.0.0.1:5005", help="the vendor service's gRPC address")
    reindex = commands.add_parser("reindex", help="rebuild the search index from the vendor service, swap it in")
    reindex.add_argument("--vendors-addr", help="the vendor service's gRPC address (default $VENTA_VENDORS_ADDR)")
    dead = commands.add_parser(
        "deadletters",
        help="list, show, replay or purge dead-lettered events",
        description="The DEADLETTER stream (VENTA_NATS_URL); replay and purge show what they would do until --yes.",
    )
    deadletters.add_commands(dead)
    token = commands.add_parser("token", help="mint a bearer token for a user from the local identity provider")
    token.add_argument("--user", required=True, help="the Clerk-style user id (the token's subject); created if new")
    token.add_argument("--identity-url", help="the identity provider (default $VENTA_IDENTITY_URL or :5010)")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default: the provider's, 1 h)")
    watch = commands.add_parser("watch", help="watch the live map: a viewport's vendors, as they move")
    watch.add_argument("--token", required=True, help="a bearer token (./venta token --user <id>)")
    watch.add_argument(
        "--viewport",
        required=True,
        metavar="S,W,N,E",
        type=live_map_client.parse_box,
        help="south,west,north,east in degrees",
    )
    watch.add_argument("--url", default="http://127.0.0.1:5004", help="the Socket.IO gateway")
    watch.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    move = commands.add_parser("move", help="move a vendor you own on the live map (one step every 2 s)")
    move.add_argument("--token", required=True, help="a bearer token of the vendor's owner")
    move.add_argument("--vendor", required=True, help="the vendor id")
    move.add_argument(
        "--at", required=True, metavar="LAT,LONG", type=live_map_client.parse_point, help="where it starts"
    )
    move.add_argument("--steps", type=int, default=10, help="how many updates (each 0.0005 degrees north)")
    move.add_argument("--url", default="http://127.0.0.1:5004", help="the Socket.IO gateway")
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args.service)
        elif args.command == "migrate":
            names = sorted(SERVICES) if args.all or not args.services else args.services
            unknown = sorted(set(names) - set(SERVICES))
            if unknown:
                raise SystemExit(f"venta migrate: unknown service(s) {', '.join(unknown)}")
            asyncio.run(_migrate(names))
        elif args.command == "smoke":
            from services.cli.smoke import run_smoke

            asyncio.run(run_smoke(args.vendors_addr))
        elif args.command == "reindex":
            _reindex(args.vendors_addr)
        elif args.command == "deadletters":
            code = deadletters.run(args)
            if code:
                raise SystemExit(code)
        elif args.command == "token":
            from services.cli.token import run_token

            run_token(args.user, identity_url=args.identity_url, ttl_s=args.ttl)
        elif args.command in ("watch", "move"):
            if args.command == "watch":
                asyncio.run(live_map_client.watch(args.url, args.token, args.viewport, seconds=args.seconds))
            else:
                asyncio.run(live_map_client.move(args.url, args.token, args.vendor, args.at, steps=args.steps))
        elif args.command == "up":
            from services.cli.up import LocalPlatform

            LocalPlatform(
                data_dir=args.data_dir,
                postgres_url=args.postgres_url,
                nats_url=args.nats_url,
                redis_url=args.redis_url,
                only=args.only,
                port_offset=args.port_offset,
            ).run()
    except ConfigError as exc:
        print(f"venta: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None

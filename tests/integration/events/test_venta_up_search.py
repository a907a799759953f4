"""`venta up` runs search sync: a vendor created a moment before is found by a search, and `venta reindex` works
against the running platform."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc

from services.cli.registry import SERVICES
from services.cli.up import DEFAULT_PORTS
from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.search.postgres import PostgresSearch
from services.search.provider import SearchQuery
from tests.support import venta_up
from tests.support.search_pipeline import ROOT


async def test_venta_up_search_finds_a_vendor_created_a_moment_before(tmp_path: Path) -> None:
    offset = venta_up.free_port_offset(["vendors", "search-sync"])
    proc = await asyncio.to_thread(venta_up.start, tmp_path / "data", offset, "--only", "vendors", "search-sync")
    try:
        table = await asyncio.to_thread(venta_up.wait_up, proc)
        assert "search-sync" in table
        address = f"127.0.0.1:{SERVICES['vendors'].grpc_port + offset}"  # type: ignore[operator]
        async with grpc.aio.insecure_channel(address) as channel:
            stub = vendor_pb2_grpc.VendorServiceStub(channel)
            vid = (await stub.CreateVendor(pb.VendorCreateData(name="Huaraches Chonita", user_id=str(uuid.uuid4())))).id
        search_url = f"postgresql://postgres@127.0.0.1:{DEFAULT_PORTS['postgres'] + offset}/venta_search"
        search = PostgresSearch(search_url)
        deadline = time.monotonic() + 5
        hits: list[str] = []
        while time.monotonic() < deadline and not hits:
            hits = [h["objectID"] for h in (await search.search(SearchQuery(text="huaraches"))).hits]
            await asyncio.sleep(0.05)
        assert hits == [vid]
        await search.close()
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli", "reindex", "--vendors-addr", address],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "PATH": "/usr/bin:/bin",
                "VENTA_NATS_URL": f"nats://127.0.0.1:{DEFAULT_PORTS['nats'] + offset}",
                "VENTA_DATABASE_URL": search_url,
            },
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "reindexed 1 vendors" in done.stdout
    finally:
        proc.send_signal(2)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, out

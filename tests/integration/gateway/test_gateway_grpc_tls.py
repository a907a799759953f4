"""The platform as a cluster with `spec.network.grpcTLS` and the operator's admin token runs it: every gRPC hop over
mutual TLS (gateway -> vendors/users/location, identity -> users, users -> vendors), and the identity provider
minting only for its admin token. Real servers on random ports, certificates made in the test.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from services.cli.token import mint
from services.location import app as location_app
from services.location.config import LocationSettings
from services.users import app as users_app
from services.users.config import UserSettings
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from tests.support.certificates import issue
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import Hosts, new_clerk_id


async def test_the_gateway_reaches_the_services_over_mutual_tls(hosts: Hosts, tmp_path: Path) -> None:
    tls = issue(tmp_path / "pki").settings()
    admin = secrets.token_urlsafe(24)
    vendors = await hosts.start_grpc(vendors_app.build, VendorSettings, vendors_app.MIGRATIONS, **tls)
    location = await hosts.start_grpc(location_app.build, LocationSettings, location_app.MIGRATIONS, **tls)
    users = await hosts.start_grpc(
        users_app.build, UserSettings, users_app.MIGRATIONS, vendors_addr=f"127.0.0.1:{vendors.grpc_port}", **tls
    )
    assert vendors.tls is not None and users.tls is not None and location.tls is not None
    identity = await hosts.start_identity(users, identity_admin_token=admin, identity_require_admin_token=True, **tls)
    settings = hosts.gateway_settings(
        vendors=vendors, users=users, location=location, identity=identity, upload_dir=tmp_path / "uploads", **tls
    )
    gateway = await hosts.start_gateway(settings)
    user = new_clerk_id()
    async with httpx.AsyncClient(timeout=10) as client:
        anyone = await client.post(f"{identity.url}/v1/tokens", json={"user": user})
        assert_envelope(anyone, 401, "AUTHENTICATION", "ADMIN_TOKEN_INVALID")
        wrong = await client.post(
            f"{identity.url}/v1/tokens", json={"user": user}, headers={"Authorization": f"Bearer {admin}x"}
        )
        assert_envelope(wrong, 401, "AUTHENTICATION", "ADMIN_TOKEN_INVALID")
        rotate = await client.post(f"{identity.url}/v1/keys/rotate")
        assert_envelope(rotate, 401, "AUTHENTICATION", "ADMIN_TOKEN_INVALID")
        # `venta token` without the token says where to find it
        with pytest.raises(SystemExit, match=r"set VENTA_IDENTITY_ADMIN_TOKEN .*identity-admin"):
            await asyncio.to_thread(mint, user, identity_url=identity.url)
        assert await asyncio.to_thread(mint, user, identity_url=identity.url, admin_token=admin)
        # with the admin token: identity -> users over TLS creates the user
        minted = await client.post(
            f"{identity.url}/v1/tokens", json={"user": user}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert minted.status_code == 200, minted.text
        auth = {"Authorization": f"Bearer {minted.json()['token']}"}
        ready = await client.get(f"{gateway.url}/health/ready")  # its peers' gRPC health checks, over TLS
        assert ready.status_code == 200, ready.text
        created = await client.post(f"{gateway.url}/v1/vendors", json={"name": "Tacos over TLS"}, headers=auth)
        assert created.status_code == 201, created.text
        read = await client.get(f"{gateway.url}/v1/vendors/{created.json()['id']}", headers=auth)
        assert read.status_code == 200 and read.json()["name"] == "Tacos over TLS", read.text

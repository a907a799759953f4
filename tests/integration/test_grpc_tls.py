"""Mutual TLS of internal gRPC through the kit's real server and client, with certificates made in the test.

A vendor service started as production starts it (`build(settings)`) with the TLS settings answers the kit's TLS
client; a plaintext client, a client presenting no certificate and one presenting a certificate of another CA are
refused at the handshake (UNAVAILABLE); a certificate issued for one name is accepted through the server-name
setting; the HTTP side port (probes, metrics) stays plaintext.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Postgres
from services.kit.grpc.client import PeerClient, PeerUnavailable, RemoteError, make_breaker
from services.kit.grpc.server import GrpcServiceHost
from services.kit.grpc.tls import GrpcTls
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from tests.support.certificates import TlsFiles, issue

ONE_NAME = "vendors.venta.test"


def tls_of(files: TlsFiles, server_name: str | None = None) -> GrpcTls:
    return GrpcTls(files.cert.read_bytes(), files.key.read_bytes(), files.ca.read_bytes(), server_name)


def client(host: GrpcServiceHost, tls: GrpcTls | None) -> PeerClient[vendor_pb2_grpc.VendorServiceStub]:
    return PeerClient(
        target_name="vendors",
        address=f"127.0.0.1:{host.grpc_port}",
        stub=vendor_pb2_grpc.VendorServiceStub,
        timeout_s=5.0,
        breaker=make_breaker(f"tls-test-{uuid.uuid4().hex[:6]}", fail_max=100, reset_timeout_s=1.0),
        tls=tls,
    )


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return issue(tmp_path_factory.mktemp("pki") / "ours")


@pytest.fixture(scope="module")
def theirs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return issue(tmp_path_factory.mktemp("pki") / "theirs", ca_name="another-ca")


@pytest.fixture
async def vendors_tls(start_service: ServiceFactory, postgres: Postgres, ours: TlsFiles) -> GrpcServiceHost:
    return await start_service(
        vendors_app.build, VendorSettings, migrations=vendors_app.MIGRATIONS, postgres=postgres, **ours.settings()
    )


async def test_a_tls_client_gets_answers_and_http_stays_plaintext(vendors_tls: GrpcServiceHost, ours: TlsFiles) -> None:
    vendors = client(vendors_tls, tls_of(ours))
    try:
        owner = str(uuid.uuid4())
        created = await vendors.unary(vendors.stub.CreateVendor, pb.VendorCreateData(name="Tacos TLS", user_id=owner))
        found = await vendors.unary(vendors.stub.GetVendorById, pb.VendorLookupByIdData(id=created.id))
        assert found.vendor.name == "Tacos TLS"
    finally:
        await vendors.close()
    async with httpx.AsyncClient(timeout=5) as http:  # the kubelet's probes need no certificate
        assert (await http.get(f"http://127.0.0.1:{vendors_tls.http_port}/health")).status_code == 200


async def _refused(host: GrpcServiceHost, channel: grpc.aio.Channel) -> grpc.StatusCode:
    async with channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetVendorById(pb.VendorLookupByIdData(id=str(uuid.uuid4())), timeout=5)
    return refused.value.code()


async def test_a_plaintext_client_is_refused(vendors_tls: GrpcServiceHost) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{vendors_tls.grpc_port}")
    assert await _refused(vendors_tls, channel) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_without_a_certificate_is_refused(vendors_tls: GrpcServiceHost, ours: TlsFiles) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=ours.ca.read_bytes())  # trusts the server, shows none
    channel = grpc.aio.secure_channel(f"127.0.0.1:{vendors_tls.grpc_port}", credentials)
    assert await _refused(vendors_tls, channel) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_certificate_of_another_ca_is_refused(
    vendors_tls: GrpcServiceHost, ours: TlsFiles, theirs: TlsFiles
) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ours.ca.read_bytes(),  # the client trusts the server: the server is the one refusing
        private_key=theirs.key.read_bytes(),
        certificate_chain=theirs.cert.read_bytes(),
    )
    channel = grpc.aio.secure_channel(f"127.0.0.1:{vendors_tls.grpc_port}", credentials)
    assert await _refused(vendors_tls, channel) == grpc.StatusCode.UNAVAILABLE
    # and the kit's client refuses a server whose certificate another CA signed
    stranger = client(vendors_tls, tls_of(theirs))
    try:
        with pytest.raises(PeerUnavailable) as failed:
            await stranger.unary(stranger.stub.GetVendorById, pb.VendorLookupByIdData(id=str(uuid.uuid4())))
        assert failed.value.peer_code == grpc.StatusCode.UNAVAILABLE
    finally:
        await stranger.close()


async def test_a_certificate_issued_for_one_name_is_checked_against_the_server_name_setting(
    start_service: ServiceFactory, postgres: Postgres, tmp_path: Path
) -> None:
    one_name = issue(tmp_path / "one-name", dns_names=(ONE_NAME,), ip=False)
    host = await start_service(
        vendors_app.build,
        VendorSettings,
        migrations=vendors_app.MIGRATIONS,
        postgres=postgres,
        **one_name.settings(server_name=ONE_NAME),
    )
    assert host.tls is not None and host.tls.server_name == ONE_NAME
    named, unnamed = client(host, tls_of(one_name, ONE_NAME)), client(host, tls_of(one_name))
    try:
        with pytest.raises(RemoteError) as missing:  # NOT_FOUND: an answer, so the TLS handshake passed
            await named.unary(named.stub.GetVendorById, pb.VendorLookupByIdData(id=str(uuid.uuid4())))
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(PeerUnavailable):  # 127.0.0.1 is not a name of the certificate
            await unnamed.unary(unnamed.stub.GetVendorById, pb.VendorLookupByIdData(id=str(uuid.uuid4())))
    finally:
        await named.close()
        await unnamed.close()

"""`venta smoke`: walk a running platform through a vendor's life over gRPC, printing each step.

It is what a developer runs after `venta up` to see the platform answer, and what the local-runtime test runs:
reflection lists the services, then a vendor is created, read, updated by its owner, refused to a stranger
(PERMISSION_DENIED) and deleted.
"""

from __future__ import annotations

import uuid

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc


async def _reflected_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: list[str] = []
    async for response in stub.ServerReflectionInfo(iter([request])):
        names += [service.name for service in response.list_services_response.service]
    return sorted(names)


async def run_smoke(address: str) -> None:
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    async with grpc.aio.insecure_channel(address) as channel:
        print(f"services at {address} (reflection): {', '.join(await _reflected_services(channel))}")
        vendors = vendor_pb2_grpc.VendorServiceStub(channel)
        vid = (await vendors.CreateVendor(pb.VendorCreateData(name="Smoke Tacos", user_id=owner), timeout=5)).id
        print(f"created vendor {vid} owned by {owner}")
        got = (await vendors.GetVendorById(pb.VendorLookupByIdData(id=vid), timeout=5)).vendor
        print(f"read it back: name={got.name!r} open={got.open}")
        await vendors.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name="Smoke Tacos II"), timeout=5)
        print("updated as owner: ok")
        try:
            await vendors.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=stranger, name="stolen"), timeout=5)
            raise SystemExit("a stranger updated the vendor: ownership is broken")
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            print(f"updated as stranger: {exc.code().name} ({exc.details()})")
        await vendors.DeleteVendor(pb.VendorDeleteData(id=vid, user_id=owner), timeout=5)
        print("deleted as owner: ok")

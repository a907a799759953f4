"""Image uploads: authenticated, typed by content, size-limited; on local disk or through Cloudinary's SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.cloudinary_standin import CloudinaryStandIn
from tests.support.envelopes import assert_envelope
from tests.support.images import png
from tests.support.platform_hosts import Hosts, Platform


@pytest.mark.parametrize("path", ["/v1/uploads/image", "/upload/image"])
async def test_local_upload_is_stored_and_served_back(api: httpx.AsyncClient, platform: Platform, path: str) -> None:
    image = png()
    answer = await api.post(path, files={"file": ("shop.png", image, "image/png")}, headers=await platform.auth())
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["format"] == "png" and body["bytes"] == len(image)
    assert (platform.settings.upload_dir / body["publicId"]).read_bytes() == image
    served = await api.get(body["url"].removeprefix(platform.settings.public_url))
    assert served.status_code == 200 and served.content == image
    assert served.headers["content-type"] == "image/png"


async def test_type_comes_from_the_bytes_not_the_header(api: httpx.AsyncClient, platform: Platform) -> None:
    auth = await platform.auth()
    script = b"#!/bin/sh\nrm -rf /\n" * 4
    answer = await api.post("/v1/uploads/image", files={"file": ("cat.png", script, "image/png")}, headers=auth)
    assert_envelope(answer, 415, "VALIDATION", "UNSUPPORTED_MEDIA_TYPE")
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64
    answer = await api.post("/v1/uploads/image", files={"file": ("x.txt", jpeg, "text/plain")}, headers=auth)
    assert answer.status_code == 201 and answer.json()["format"] == "jpg"


async def test_size_and_shape_limits(api: httpx.AsyncClient, platform: Platform) -> None:
    auth = await platform.auth()
    limit = platform.settings.upload_max_bytes
    too_big = png() + b"\x00" * limit
    answer = await api.post("/v1/uploads/image", files={"file": ("big.png", too_big, "image/png")}, headers=auth)
    assert_envelope(answer, 413, "VALIDATION", "PAYLOAD_TOO_LARGE")
    assert_envelope(await api.post("/v1/uploads/image", headers=auth), 400, "VALIDATION")
    missing_file = await api.post("/v1/uploads/image", files={"other": ("a.png", png())}, headers=auth)
    assert assert_envelope(missing_file, 400, "VALIDATION")["details"][0]["field"] == "file"
    not_multipart = await api.post("/v1/uploads/image", content=png(), headers={**auth, "content-type": "image/png"})
    assert_envelope(not_multipart, 400, "VALIDATION")
    assert_envelope(await api.get("/v1/uploads/files/" + "0" * 32 + ".png"), 404, "NOT_FOUND")
    assert_envelope(await api.get("/v1/uploads/files/..%2F..%2Fetc%2Fpasswd"), 404, "NOT_FOUND")


@pytest.fixture
async def cloudinary() -> AsyncIterator[CloudinaryStandIn]:
    standin = CloudinaryStandIn()
    await standin.start()
    yield standin
    await standin.stop()


async def test_cloudinary_upload_through_the_official_sdk(
    hosts: Hosts, platform: Platform, cloudinary: CloudinaryStandIn, tmp_path: Path
) -> None:
    settings = hosts.gateway_settings_over(
        platform,
        tmp_path,
        cloudinary_url=cloudinary.cloudinary_url,
        cloudinary_upload_prefix=cloudinary.url,
        breaker_fail_max=2,
        breaker_reset_timeout_s=60,
    )
    gateway = await hosts.start_gateway(settings)
    auth = await platform.auth()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        answer = await client.post("/v1/uploads/image", files={"file": ("a.png", png(), "image/png")}, headers=auth)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["url"].startswith("https://res.cloudinary.com/venta-test/image/upload/")
        assert body["publicId"].startswith("venta/") and len(cloudinary.uploads) == 1
        assert cloudinary.uploads[0]["params"]["folder"] == "venta"
        assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - nothing written locally

        cloudinary.fail_with = 500  # Cloudinary is failing: 502, then the breaker opens
        for _ in range(2):
            failing = await client.post("/v1/uploads/image", files={"file": ("a.png", png())}, headers=auth)
            assert_envelope(failing, 502, "EXTERNAL_SERVICE")
        cloudinary.fail_with = None
        still_open = await client.post("/v1/uploads/image", files={"file": ("a.png", png())}, headers=auth)
        assert "circuit open" in assert_envelope(still_open, 502, "EXTERNAL_SERVICE")["message"]
        assert len(cloudinary.uploads) == 1

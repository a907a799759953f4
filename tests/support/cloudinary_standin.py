"""HTTP stand-ins for SaaS that cannot be reached from here, speaking their real wire protocol on a random port.

The official client under test is pointed at the stand-in (Cloudinary's SDK via `upload_prefix`); nothing in the
code under test knows it is not talking to the real service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cloudinary.utils import api_sign_request  # type: ignore[import-untyped]

UNSIGNED = {"file", "api_key", "signature", "resource_type", "cloud_name"}


@dataclass
class CloudinaryStandIn:
    """Cloudinary's Upload API (`POST /v1_1/<cloud>/image/upload`, signed multipart), storing uploads in memory."""

    cloud: str = "venta-test"
    api_key: str = "123456789012345"
    api_secret: str = "stand-in-secret"
    uploads: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cloudinary_url(self) -> str:
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud}"

    async def _upload(self, request: web.Request) -> web.Response:
        if request.match_info["cloud"] != self.cloud:
            return web.json_response({"error": {"message": "Invalid cloud_name"}}, status=401)
        if self.fail_with is not None:
            return web.json_response({"error": {"message": "stand-in told to fail"}}, status=self.fail_with)
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            if key.endswith("[]"):
                params.setdefault(key[:-2], []).append(value)
            elif key not in UNSIGNED:
                params[key] = value
        if form.get("api_key") != self.api_key or form.get("signature") != api_sign_request(params, self.api_secret):
            return web.json_response({"error": {"message": "Invalid Signature"}}, status=401)
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        data = upload.file.read()
        if len(data) < 16:
            return web.json_response({"error": {"message": "Invalid image file"}}, status=400)
        public_id = f"{params.get('folder', '')}/{hashlib.sha1(data).hexdigest()[:20]}".lstrip("/")
        self.uploads.append({"public_id": public_id, "bytes": len(data), "params": params})
        secure_url = f"https://res.cloudinary.com/{self.cloud}/image/upload/v1/{public_id}"
        return web.json_response(
            {
                "public_id": public_id,
                "version": 1,
                "format": "png",
                "resource_type": "image",
                "bytes": len(data),
                "url": secure_url.replace("https", "http", 1),
                "secure_url": secure_url,
            }
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1_1/{cloud}/image/upload", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

"""Where uploaded images go: Cloudinary (through its official SDK) when configured, local disk otherwise.

The type of an upload is decided by its first bytes (magic numbers), never by the client's Content-Type or file
name: a script renamed `.png` is refused. The Cloudinary SDK is synchronous, so its call runs in a worker thread,
with a timeout and behind a circuit breaker like any other downstream.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import cloudinary.exceptions  # type: ignore[import-untyped]
import cloudinary.uploader  # type: ignore[import-untyped]
import pybreaker

from services.kit.errors import InvalidArgument, Unavailable

ImageFormat = Literal["jpg", "png", "gif", "webp"]
MEDIA_TYPES: dict[str, str] = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
LOCAL_NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png|gif|webp)$")


def sniff(head: bytes) -> ImageFormat | None:
    """The image format its leading bytes prove, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class StoredImage:
    url: str
    public_id: str
    format: ImageFormat
    bytes: int


class ImageStore(Protocol):
    async def save(self, data: bytes, image_format: ImageFormat, *, owner_id: str) -> StoredImage: ...


class LocalImageStore:
    """Local mode: files under `directory`, served back by the gateway at `/v1/uploads/files/<name>`."""

    def __init__(self, directory: Path, *, public_url: str) -> None:
        self.directory = directory
        self.public_url = public_url.rstrip("/")

    def path_of(self, name: str) -> Path | None:
        return self.directory / name if LOCAL_NAME.match(name) else None

    async def save(self, data: bytes, image_format: ImageFormat, *, owner_id: str) -> StoredImage:
        name = f"{uuid.uuid4().hex}.{image_format}"

        def write() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / name).write_bytes(data)

        await asyncio.to_thread(write)
        return StoredImage(f"{self.public_url}/v1/uploads/files/{name}", name, image_format, len(data))


class CloudinaryImageStore:
    """Production: `cloudinary://<api_key>:<api_secret>@<cloud_name>`; `upload_prefix` points the SDK elsewhere."""

    def __init__(
        self, url: str, *, folder: str, timeout_s: float, breaker: pybreaker.CircuitBreaker, upload_prefix: str | None
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "cloudinary" or not (parsed.username and parsed.password and parsed.hostname):
            raise ValueError("VENTA_CLOUDINARY_URL must look like cloudinary://<key>:<secret>@<cloud>")
        self.options: dict[str, Any] = {
            "cloud_name": parsed.hostname,
            "api_key": parsed.username,
            "api_secret": parsed.password,
            "folder": folder,
            "resource_type": "image",
            "timeout": timeout_s,
        }
        if upload_prefix:
            self.options["upload_prefix"] = upload_prefix.rstrip("/")
        self.breaker = breaker

    def _upload(self, data: bytes, image_format: ImageFormat, owner_id: str) -> dict[str, Any] | str:
        """Cloudinary's result, or the reason it refused this image (a 400 is an answer, not an outage)."""
        try:
            result: dict[str, Any] = cloudinary.uploader.upload(
                io.BytesIO(data), filename=f"upload.{image_format}", tags=[f"owner:{owner_id}"], **self.options
            )
        except cloudinary.exceptions.BadRequest as exc:
            return str(exc)
        return result

    async def save(self, data: bytes, image_format: ImageFormat, *, owner_id: str) -> StoredImage:
        try:
            with self.breaker.calling():
                result = await asyncio.to_thread(self._upload, data, image_format, owner_id)
            if isinstance(result, str):
                raise InvalidArgument("file", f"refused by the image store: {result}")
        except pybreaker.CircuitBreakerError:
            raise Unavailable("image storage is unavailable (circuit open)") from None
        except cloudinary.exceptions.Error as exc:
            raise Unavailable(f"image storage is unavailable ({type(exc).__name__})") from None
        return StoredImage(
            url=str(result.get("secure_url") or result["url"]),
            public_id=str(result["public_id"]),
            format=image_format,
            bytes=int(result.get("bytes", len(data))),
        )

"""Image uploads: authenticated, size-limited, type decided by the file's own bytes; stored by the image store.

Local mode stores files on disk and serves them back at `/v1/uploads/files/<name>` (public, like a CDN URL: image
views in the app carry no token). With Cloudinary configured the URL returned is Cloudinary's.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from services.gateway.deps import CurrentUser, ImageStoreDep, SettingsDep
from services.gateway.images import MEDIA_TYPES, LocalImageStore, sniff
from services.gateway.models import UploadedImage
from services.gateway.routes import errors, route
from services.kit.errors import NotFound
from services.kit.http.envelope import ApiError, ErrorType

router = APIRouter(tags=["uploads"])


@route(
    router,
    "POST",
    "/v1/uploads/image",
    alias="/upload/image",
    status_code=201,
    response_model=UploadedImage,
    responses=errors(413, 415),
    summary="Upload an image (JPEG, PNG, GIF or WebP)",
)
async def upload_image(
    file: Annotated[UploadFile, File(description="The image; its type is read from its content")],
    caller: CurrentUser,
    images: ImageStoreDep,
    settings: SettingsDep,
) -> UploadedImage:
    data = await file.read(settings.upload_max_bytes + 1)
    if len(data) > settings.upload_max_bytes:
        raise ApiError(
            ErrorType.VALIDATION,
            "PAYLOAD_TOO_LARGE",
            f"file: larger than {settings.upload_max_bytes} bytes",
            status=413,
        )
    image_format = sniff(data[:16])
    if image_format is None:
        raise ApiError(
            ErrorType.VALIDATION, "UNSUPPORTED_MEDIA_TYPE", "file: not a JPEG, PNG, GIF or WebP image", status=415
        )
    stored = await images.save(data, image_format, owner_id=caller.user_id)
    return UploadedImage(url=stored.url, public_id=stored.public_id, format=stored.format, bytes=stored.bytes)


@route(
    router,
    "GET",
    "/v1/uploads/files/{name}",
    response_class=FileResponse,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}, **errors(404)},
    summary="An image uploaded in local mode",
)
async def uploaded_file(
    name: Annotated[str, PathParam(max_length=64, pattern=r"^[0-9a-f]{32}\.(jpg|png|gif|webp)$")],
    images: ImageStoreDep,
) -> FileResponse:
    path = images.path_of(name) if isinstance(images, LocalImageStore) else None
    if path is None or not await asyncio.to_thread(path.is_file):
        raise NotFound(f"no uploaded file {name}")
    media_type = MEDIA_TYPES[name.rsplit(".", 1)[1]]
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400, immutable"})

"""Serve the local storage transport's signed URLs (GET /storage/v1/object/sign/<bucket>/<path>).

On hosted Supabase the Storage API serves signed URLs. On the embedded default
the edge service (`backline ai serve`, started by `backline up`) serves them
from <data dir>/storage, so an export's download link works locally too. The
token is checked exactly as the local transport signed it: HS256 with the
project JWT secret, the object path bound in, expiry enforced.
"""

from __future__ import annotations

from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from workers.platform.local_storage import SIGN_PATH, verify_signed_url
from workers.platform.storage import StorageError
from workers.settings import Settings

CHUNK = 64 * 1024


def signed_download_routes(settings: Settings) -> list[BaseRoute]:
    """The route, bound to this configuration's storage directory and secret."""
    root = (settings.data_dir / "storage").resolve()

    async def download(request: Request) -> Response:
        try:
            bucket, name = verify_signed_url(str(request.url), settings.jwt_secret)
        except StorageError as exc:
            return _error(exc)
        path = (root / bucket / name).resolve()
        if root not in path.parents or not path.is_file():
            return _error(StorageError(404, "not_found", "Object not found"))
        filename = name.rsplit("/", 1)[-1].replace('"', "")
        return StreamingResponse(
            _chunks(path.open("rb")),
            media_type="application/octet-stream",
            headers={
                "content-disposition": f'attachment; filename="{filename}"',
                "content-length": str(path.stat().st_size),
            },
        )

    return [Route(SIGN_PATH + "{target:path}", download, methods=["GET"])]


def _chunks(handle: object) -> Iterator[bytes]:
    with handle as fh:  # type: ignore[attr-defined]
        while chunk := fh.read(CHUNK):
            yield chunk


def _error(exc: StorageError) -> JSONResponse:
    # The Storage API's error shape: HTTP 400 with the real status in the body.
    return JSONResponse(
        {"statusCode": str(exc.status), "error": exc.code, "message": exc.message}, status_code=400
    )

"""`GET /public/log/<path>`: the published C2SP tile log, for anyone (no login).

The folder `reserve publish` writes is served as it is, path for path: `checkpoint`,
`tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`. A path that is not exactly one of
the spec's is 404 before the disk is touched, so nothing outside the folder can be named.
Tiles never change once written (a partial tile's path carries its width), so they are
cached for a year; the checkpoint changes with every publication and is never cached. The
checkpoint carries the witnesses' cosignatures recorded for its size, including those
recorded after it was published. Not in the API schema: these are files, not JSON.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from reserve.errors import ReserveError
from reserve.transparency import tiles
from reserve.transparency.publish import published_note

router = APIRouter(prefix="/public/log", tags=["public log"], include_in_schema=False)
PATH_BYTES_MAX = 64
IMMUTABLE = "public, max-age=31536000, immutable"


def _not_found() -> Response:
    return Response("not found\n", status_code=404, media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _folder(request: Request) -> Path | None:
    folder = getattr(request.app.state, "public_log_dir", None)
    return folder if isinstance(folder, Path) else None


def _read(folder: Path, relative: str) -> bytes | None:
    path = folder / relative
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes()
    except OSError:
        return None


@router.get("/{path:path}")
def public_log_file(path: str, request: Request) -> Response:
    folder = _folder(request)
    if folder is None or len(path) > PATH_BYTES_MAX:
        return _not_found()
    if path == tiles.CHECKPOINT_PATH:
        data = _read(folder, path)
        if data is None:
            return _not_found()
        text = data.decode("utf-8", "replace")
        try:
            text = published_note(request.app.state.service.ledger, text)
        except ReserveError:
            pass  # serve the file as published; a reader's own checks will judge it
        return Response(text, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
    tile = tiles.parse_path(path)
    if tile is None or tile.path() != path:
        return _not_found()
    data = _read(folder, path)
    if data is None:
        return _not_found()
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": IMMUTABLE})

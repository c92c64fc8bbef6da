"""`reserve serve` runs its workers on httptools (C HTTP parsing) and uvloop (libuv loop)."""

from __future__ import annotations

import uvloop
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reserve.cli.serve import uvicorn_config


def test_the_served_config_parses_http_with_httptools_on_uvloop() -> None:
    config = uvicorn_config("127.0.0.1", 8123, 2, "warning")
    assert (config.http, config.loop, config.workers) == ("httptools", "uvloop", 2)
    assert config.app == "reserve.cli.serve:worker_app" and config.factory
    # What a worker resolves them to: both packages are installed, not silently skipped.
    assert import_from_string(HTTP_PROTOCOLS[config.http]) is HttpToolsProtocol
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()

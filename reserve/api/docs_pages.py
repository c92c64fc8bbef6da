"""`/docs` (Swagger UI) and `/redoc` served from this machine, under a strict CSP.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so offline (or behind a firewall
that keeps the service off the internet) they are blank. Here the same pages
(`get_swagger_ui_html`, `get_redoc_html`) point at copies of `swagger-ui-dist` and `redoc`
that `scripts/setup.sh` takes from npm (package.json) into `static/vendor/` (git-ignored),
served by the app's `/static` mount.

Each page carries its own Content-Security-Policy: the dashboard's (everything from 'self'),
plus, for Swagger UI, the SHA-256 of the one inline script FastAPI writes to start it (so no
'unsafe-inline' for scripts), and for ReDoc inline styles and a blob: worker (ReDoc's
styled-components write <style> elements, its search index runs in a worker made from a
blob). Nothing on either page is fetched from another origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

STATIC = Path(__file__).resolve().parent / "static"
VENDOR_URL = "/static/vendor"
# path under static/ -> where setup.sh copies it from (under node_modules/)
ASSETS = {
    "vendor/swagger-ui/swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "vendor/swagger-ui/swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "vendor/redoc/redoc.standalone.js": "redoc/bundles/redoc.standalone.js",
}
SWAGGER_JS = f"{VENDOR_URL}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{VENDOR_URL}/swagger-ui/swagger-ui.css"
REDOC_JS = f"{VENDOR_URL}/redoc/redoc.standalone.js"
FAVICON = "/static/favicon.svg"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_BASE = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; "
         "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def missing_assets(static: Path = STATIC) -> list[str]:
    """The vendored files not in `static` (empty when setup.sh has run)."""
    return [name for name in ASSETS if not (static / name).is_file()]


def script_hashes(html: str) -> list[str]:
    """CSP sources ('sha256-…') for every inline <script> of `html`, as a browser hashes them."""
    return ["'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
            for body in _INLINE_SCRIPT.findall(html)]


def swagger_page(openapi_url: str, title: str) -> tuple[str, str]:
    """(HTML, CSP) of the Swagger UI page on the local assets."""
    html = bytes(get_swagger_ui_html(openapi_url=openapi_url, title=title,
                                     swagger_js_url=SWAGGER_JS, swagger_css_url=SWAGGER_CSS,
                                     swagger_favicon_url=FAVICON).body).decode()
    policy = f"{_BASE}; script-src 'self' {' '.join(script_hashes(html))}; style-src 'self'"
    return html, policy


def redoc_page(openapi_url: str, title: str) -> tuple[str, str]:
    """(HTML, CSP) of the ReDoc page on the local assets (no web fonts fetched)."""
    html = bytes(get_redoc_html(openapi_url=openapi_url, title=title, redoc_js_url=REDOC_JS,
                                redoc_favicon_url=FAVICON, with_google_fonts=False).body).decode()
    if _INLINE_SCRIPT.search(html):
        raise RuntimeError("FastAPI's ReDoc page now has an inline script: hash it as /docs does")
    policy = (f"{_BASE}; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              "worker-src 'self' blob:")
    return html, policy


def _page(html: str, policy: str) -> Response:
    missing = missing_assets()
    if missing:
        return PlainTextResponse(
            "The API documentation's scripts are not installed here (missing "
            + ", ".join(missing) + "): run scripts/setup.sh. The schema itself is at "
            "/openapi.json.", status_code=503)
    return HTMLResponse(html, headers={"Content-Security-Policy": policy,
                                       "Cache-Control": "no-cache"})


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve /docs and /redoc from the vendored assets. Requires FastAPI(docs_url=None,
    redoc_url=None), so FastAPI's CDN pages are not registered first."""
    swagger = swagger_page(openapi_url, f"{app.title}: API (Swagger UI)")
    redoc = redoc_page(openapi_url, f"{app.title}: API (ReDoc)")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return _page(*swagger)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_docs() -> Response:
        return _page(*redoc)

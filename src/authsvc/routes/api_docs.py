"""`/docs`: the interactive API documentation (Swagger UI), served entirely by authsvc.

FastAPI's own `/docs` loads Swagger UI from a CDN, so it was a blank page without internet
access or under a strict Content-Security-Policy. Here the page, its script and its styles
all come from this process: Swagger UI's files from the `fastapi-offline` package (which
vendors the `swagger-ui-dist` release, see pyproject.toml), the few lines that start it
from below. The page runs no inline script, so its policy allows scripts from 'self' only.
ReDoc (FastAPI's `/redoc`) is not offered: one documentation page is enough, and ReDoc
needs inline styles and blob: workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)

SWAGGER_UI: Final = Path(fastapi_offline.__file__).resolve().parent / "static"
# Relative URLs, so the page works under a proxy's path prefix (FastAPI's root_path) too:
# from /docs, `docs/assets/…` is /docs/assets/… and `openapi.json` is /openapi.json.
_PAGE: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authsvc API</title>
<link rel="icon" type="image/png" href="docs/assets/favicon.png">
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head><body>
<div id="swagger-ui" data-openapi-url="openapi.json"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/start.js"></script>
</body></html>
"""
# FastAPI's Swagger UI settings, started from a file instead of an inline script.
_START: Final = """\
"use strict";
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: new URL(root.dataset.openapiUrl, document.baseURI).href,
  domNode: root,
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""
# Swagger UI's icons are data: SVGs; "Try it out" calls this origin (connect-src).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# The asset names carry no version: a day, then revalidated (FileResponse sends an ETag).
_ASSET_CACHE: Final = "public, max-age=86400"


@router.get("/docs")
async def docs_page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={**_HEADERS, "Cache-Control": "no-cache"})


@router.get("/docs/assets/start.js")
async def docs_start_script() -> Response:
    return Response(
        _START,
        media_type="text/javascript; charset=utf-8",
        headers={**_HEADERS, "Cache-Control": _ASSET_CACHE},
    )


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:  # only these three files: no path ever reaches the disk
        raise HTTPException(404, "Not Found")
    return FileResponse(
        SWAGGER_UI / name,
        media_type=media_type,
        headers={**_HEADERS, "Cache-Control": _ASSET_CACHE},
    )

"""The admin console (``console/``'s Vite build) served at ``/``, with an SPA fallback.

- ``/`` and any path that is not an asset (``/agents``, ``/services/abc``) answer the build's
  ``index.html``: the console's router reads the URL in the browser.
- A path that names a file (it has an extension, or lies under ``/assets/``) answers that file,
  or 404 ``STATIC_NOT_FOUND`` when it does not exist — a stale tab asking for an old hashed
  bundle gets a clear error, not an HTML page parsed as JavaScript.
- ``/api/*`` is never shadowed: the console is the router's fallback (it runs only when no
  route matched) and refuses ``api/`` paths, so an unknown API route answers JSON ``NOT_FOUND``.
- Without a build (the wheel built without Node, a source checkout before ``make console``)
  every console path answers 404 ``STATIC_NOT_FOUND``, as the reference server does.

The build lives in the package (``opstage/console/dist``, put there by ``make console``);
``OPSTAGE_STATIC_DIR`` (``Settings.static_dir``, the reference's setting of the same name)
points elsewhere.

``/docs`` (and FastAPI's ``/api/docs``) is Swagger UI with its assets served from here, so it
works offline: the console build copies ``swagger-ui-dist`` into ``dist/swagger-ui/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from opstage.api.envelope import json_response
from opstage.api.errors import error_body

PACKAGED_DIST = Path(__file__).resolve().parent.parent / "console" / "dist"
SWAGGER_DIR = "swagger-ui"
# Hashed bundles never change under their name; index.html must be revalidated so a new
# release's bundle names reach the browser.
IMMUTABLE = "public, max-age=31536000, immutable"


def static_not_found() -> Response:
    return json_response(error_body("STATIC_NOT_FOUND", "Static UI build not found."), 404)


def resolve(root: Path, url_path: str) -> Path | None:
    """The file under ``root`` for ``url_path``, or None; never a path outside ``root``."""
    root = root.resolve()
    candidate = (root / url_path.lstrip("/")).resolve()
    if candidate != root and root not in candidate.parents:
        return None
    return candidate if candidate.is_file() else None


def looks_like_asset(url_path: str) -> bool:
    last = url_path.rstrip("/").rsplit("/", 1)[-1]
    return url_path.startswith("assets/") or "." in last


def install(app: FastAPI, static_dir: Path | None) -> None:
    """The docs pages, and the console as the router's fallback.

    A fallback, not a catch-all route: a catch-all ``GET /{path}`` would make ``POST
    /api/unknown`` a 405 (the path matched, the method not); the router's ``default`` runs only
    when no route matched at all.
    """
    root = static_dir or PACKAGED_DIST

    async def docs() -> Response:
        if resolve(root, f"{SWAGGER_DIR}/swagger-ui-bundle.js") is None:
            return static_not_found()
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/api/openapi.json",
            title="Opstage API",
            swagger_js_url=f"/{SWAGGER_DIR}/swagger-ui-bundle.js",
            swagger_css_url=f"/{SWAGGER_DIR}/swagger-ui.css",
            swagger_favicon_url="/favicon.svg",
        )

    for path in ("/docs", "/api/docs"):
        app.add_api_route(path, docs, methods=["GET"], include_in_schema=False)

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=404)
        response = serve(root, scope["path"].lstrip("/"))
        await response(scope, receive, send)

    app.router.default = fallback


def serve(root: Path, url_path: str) -> Response:
    if url_path == "api" or url_path.startswith("api/"):
        raise HTTPException(status_code=404)
    if url_path and looks_like_asset(url_path):
        found = resolve(root, url_path)
        if found is None:
            return static_not_found()
        headers = {"Cache-Control": IMMUTABLE} if url_path.startswith("assets/") else None
        return FileResponse(found, headers=headers)
    index = resolve(root, "index.html")
    if index is None:
        return static_not_found()
    return FileResponse(index, headers={"Cache-Control": "no-cache"})

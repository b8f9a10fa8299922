"""The API description pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served
without a network: their JavaScript, CSS and favicon come from the pinned
``fastapi-offline`` package (requirements.txt), under :data:`STATIC_URL`, instead of
FastAPI's default CDN links (which leave the pages blank offline).

FastAPI's own page builders write the pages (``fastapi.openapi.docs``, as in FastAPI's
"Custom Docs UI Static Assets" guide); only the asset URLs differ. Without the package
(an environment not reinstalled from requirements.txt) the server still starts: a
warning is logged and the pages use FastAPI's CDN links, as before.
"""

from __future__ import annotations

import importlib.resources
import logging
import os

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger("seqtasks.serving.app")  # the server's log name

STATIC_URL = "/docs/static"
"""Where the Swagger UI and ReDoc assets are served (``swagger-ui-bundle.js``,
``swagger-ui.css``, ``redoc.standalone.js``, ``favicon.png``)."""

ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def static_dir() -> str | None:
    """The folder of the Swagger UI / ReDoc assets in the installed ``fastapi-offline``
    package, or ``None`` when the package (or one of :data:`ASSETS`) is missing."""
    try:
        folder = os.fspath(importlib.resources.files("fastapi_offline") / "static")
    except (ImportError, TypeError):  # not installed, or not a plain folder (a zip)
        return None
    if not all(os.path.isfile(os.path.join(folder, name)) for name in ASSETS):
        return None
    return folder


def add_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add ``docs_url`` (Swagger UI), its OAuth2 redirect page and ``redoc_url`` (ReDoc)
    to ``app``, which must be made with ``docs_url=None, redoc_url=None``.

    The pages load only URLs of this server (under :data:`STATIC_URL`, and
    ``app.openapi_url``) when ``fastapi-offline`` is installed; otherwise a warning is
    logged and they use FastAPI's default CDN URLs. The request's ``root_path`` (a server
    behind a proxy prefix) is put before every URL, as FastAPI does. Raises nothing.
    """
    folder = static_dir()
    if folder is None:
        log.warning(
            "/docs and /redoc load Swagger UI and ReDoc from a CDN (blank offline): the "
            "fastapi-offline package is missing (pip install -r requirements.txt)"
        )
        local: dict = {}
    else:
        app.mount(STATIC_URL, StaticFiles(directory=folder), name="docs-static")
    redirect_url = app.swagger_ui_oauth2_redirect_url  # FastAPI's, /docs/oauth2-redirect

    def assets(root: str, **names: str) -> dict:
        if folder is None:
            return local
        return {key: f"{root}{STATIC_URL}/{name}" for key, name in names.items()}

    # as FastAPI.setup() adds its own pages (add_route: GET and HEAD), asset URLs aside
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
            **assets(
                root,
                swagger_js_url="swagger-ui-bundle.js",
                swagger_css_url="swagger-ui.css",
                swagger_favicon_url="favicon.png",
            ),
        )

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - ReDoc",
            with_google_fonts=folder is None,  # the fonts are a CDN too; the page works without
            **assets(root, redoc_js_url="redoc.standalone.js", redoc_favicon_url="favicon.png"),
        )

    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, swagger_ui_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)

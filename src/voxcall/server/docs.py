"""Swagger UI at /api/docs, served from the `swagger-ui-bundle` package so it works offline.

FastAPI's default page loads Swagger UI from a CDN, which leaves it blank on a machine without internet.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["DOCS_PATH", "add_docs"]

DOCS_PATH = "/api/docs"
_ASSETS = f"{DOCS_PATH}/assets"


def add_docs(app: FastAPI, *, openapi_url: str) -> None:
    """Serve the interactive API docs and their assets from this server."""
    app.mount(_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png",
        )

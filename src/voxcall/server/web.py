"""The browser side: the console page at `/` (its modules under `/static/`) and the browser SDK under `/sdk/`.

Only the files listed here are served (no directory listing, no path handling), each with its
content type: ES modules and AudioWorklet modules must come as JavaScript to load at all.
The SDK files carry `Access-Control-Allow-Origin: *` so a web app on another origin can
import the SDK straight from the server; they are public code and carry no secrets.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

__all__ = ["PAGE_FILES", "SDK_FILES", "STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
JS = "text/javascript; charset=utf-8"

SDK_FILES = {
    "ultravox.js": JS,
    "ultravox-core.js": JS,
    "ultravox-capture-worklet.js": JS,
    "ultravox-playback-worklet.js": JS,
    "ultravox.d.ts": "application/typescript; charset=utf-8",
}
PAGE_MODULES = (
    "app.js", "api.js", "errors.js", "dom.js", "forms.js", "format.js", "demotools.js", "playground.js", "history.js",
    "callpage.js", "charts.js", "waveform.js", "agents.js", "tools.js", "webhooks.js",
)
PAGE_FILES = {**dict.fromkeys(PAGE_MODULES, JS), "app.css": "text/css; charset=utf-8"}

# The page talks to its own origin's /api and to the join URL's WebSocket (which may sit on
# the configured public URL); recordings play from blob: URLs. No inline script or style.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
COMMON = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str, extra: dict[str, str] | None = None) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers={**COMMON, **(extra or {})})


@router.get("/")
async def playground() -> FileResponse:
    """The console page."""
    return _file("index.html", "text/html; charset=utf-8", {"Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "no-referrer"})


@router.get("/static/{name}")
async def page_asset(name: str) -> FileResponse:
    """The console's script modules and style sheet."""
    media_type = PAGE_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return _file(name, media_type)


@router.get("/sdk/{name}")
async def sdk_file(name: str) -> FileResponse:
    """The browser SDK module, its pure core, its AudioWorklet processors and its types."""
    media_type = SDK_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return _file(name, media_type, {"Access-Control-Allow-Origin": "*"})


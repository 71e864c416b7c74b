"""Where the built link chart lives (`fraudnet/viz/static/`) and how the API app serves it at `/` and `/ui`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from fraudnet.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["STATIC_DIR", "UI_PREFIX", "static_dir", "assets_built", "index_html", "mount_ui"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
UI_PREFIX = "/ui"
_BUILD_HINT = "build it with `bash scripts/build-frontend.sh` (npm ci && npm run build in frontend/)"


def static_dir() -> Path:
    """The folder with the built front-end (index.html and assets/ with hashed js/css)."""
    return STATIC_DIR


def assets_built(folder: Path | None = None) -> bool:
    """True when index.html and at least one script bundle are present."""
    folder = folder or STATIC_DIR
    return (folder / "index.html").is_file() and any((folder / "assets").glob("*.js"))


def index_html(folder: Path | None = None) -> str:
    """The single-page app's index.html (its assets are referenced under `/ui/assets/`)."""
    folder = folder or STATIC_DIR
    path = folder / "index.html"
    if not path.is_file():
        raise ConfigError(f"link chart not built: {path} is missing; {_BUILD_HINT}")
    return path.read_text(encoding="utf-8")


def mount_ui(app: FastAPI, folder: Path | None = None) -> bool:
    """Serve the link chart: `GET /` answers index.html and `/ui/...` the static assets.

    Returns False (and logs a warning) when the assets are not built, leaving the API usable.
    """
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    folder = folder or STATIC_DIR
    if not assets_built(folder):
        log.warning("link chart assets not found in %s; %s", folder, _BUILD_HINT)
        return False
    app.mount(UI_PREFIX, StaticFiles(directory=folder, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def ui_index() -> HTMLResponse:
        # Read on each request: a rebuild while serving is picked up; never cached (asset names are hashed).
        return HTMLResponse(index_html(folder), headers={"Cache-Control": "no-cache"})

    return True

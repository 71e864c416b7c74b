"""The built link chart is shipped in the package and served by the API app at `/` and `/ui` (no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fraudnet.errors import ConfigError
from fraudnet.viz.assets import STATIC_DIR, assets_built, index_html, mount_ui, static_dir


def test_built_assets_are_in_the_package() -> None:
    assert static_dir() == STATIC_DIR
    assert STATIC_DIR.parent.name == "viz" and assets_built()
    html = index_html()
    refs = re.findall(r'(?:src|href)="/ui/(assets/[^"]+)"', html)
    assert any(r.endswith(".js") for r in refs) and any(r.endswith(".css") for r in refs)
    for ref in refs:
        assert (STATIC_DIR / ref).is_file(), ref
        assert re.search(r"-[A-Za-z0-9_-]{8}\.(js|css)$", ref), f"{ref} is not content-hashed"


def test_mount_ui_serves_index_and_assets() -> None:
    app = FastAPI()
    assert mount_ui(app)
    client = TestClient(app)
    root = client.get("/")
    assert root.status_code == 200 and root.headers["cache-control"] == "no-cache"
    assert '<div id="app">' in root.text
    js = re.search(r'/ui/assets/[^"]+\.js', root.text).group(0)
    asset = client.get(js)
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    # The bundle carries the i18n table and the test hook the browser tests use.
    assert "__fraudnet" in asset.text and "线索队列" in asset.text and "Lead queue" in asset.text
    assert client.get("/ui/assets/nope.js").status_code == 404


def test_missing_build_is_reported_not_fatal(tmp_path: Path) -> None:
    app = FastAPI()
    assert not assets_built(tmp_path)
    assert mount_ui(app, tmp_path) is False
    assert TestClient(app).get("/").status_code == 404
    with pytest.raises(ConfigError, match=r"index.html is missing.*build-frontend.sh"):
        index_html(tmp_path)

"""The pages' wiring, without a browser: integrity values match the files served, ``/static``
serves browser files only, and without ``make assets`` GraphiQL falls back to the CDN with a
note (and the dashboard says what to run)."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from static import pages

ASSET = re.compile(r'(?:src|href)="(static/[^"]+)"\s+integrity="([^"]+)"')


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


@pytest.mark.parametrize("path", ["/graphql", "/dashboard"])
async def test_every_file_a_page_loads_is_local_and_carries_its_integrity(
    http: Any, path: str
) -> None:
    page = await http.get(path, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "shms-assets-missing" not in page.text, "run `make assets` (npm ci) first"
    assets = ASSET.findall(page.text)
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == len([url for url in loaded if not url.startswith("data:")]) >= 2
    for url, integrity in assets:
        served = await http.get(f"/{url}")
        assert served.status_code == 200, url
        assert integrity == sri(served.content), url


@pytest.mark.parametrize(
    "path", ["/static/pages.py", "/static/__init__.py", "/static/graphiql.html", "/static/nope.js"]
)
async def test_static_serves_browser_files_only(http: Any, path: str) -> None:
    assert (await http.get(path)).status_code == 404


async def test_static_serves_the_pages_scripts(http: Any) -> None:
    response = await http.get("/static/dashboard.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]


def test_without_local_files_graphiql_uses_the_cdn_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for template in ("graphiql.html", "graphiql.js", "dashboard.html", "dashboard.js"):
        shutil.copy(pages.STATIC_DIR / template, tmp_path / template)  # no vendor/
    monkeypatch.setattr(pages, "STATIC_DIR", tmp_path)
    cdn_page = "<html><body class='x'><div id='graphiql'>Loading...</div></body></html>"
    page = pages.graphiql(cdn_page)
    assert page.startswith("<html><body class='x'><p id=\"shms-assets-missing\"")
    assert "make assets" in page and page.endswith("Loading...</div></body></html>")
    assert "make assets" in pages.dashboard()
    assert "<script" not in pages.dashboard()

"""GraphiQL and the operations dashboard, served from SHMS's own files rather than a CDN.

Hospital networks often block public CDNs, and a page whose scripts never arrive stays at
"Loading...". So the pages load third-party files from ``static/vendor/`` (``make assets``: npm ci
from the committed ``package-lock.json``, then a copy of the few files the pages load). Every
``{{sri:<path>}}`` in a page template becomes the ``sha384`` integrity of that file as served,
computed here (again whenever the file changes), so the browser runs exactly the bytes that were
hashed. Without the files, GraphiQL falls back to strawberry's CDN page with a visible note.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path, PurePosixPath

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent
"""Mounted at ``/static``: the pages' own scripts and styles, and ``vendor/``."""

_SRI = re.compile(r"\{\{sri:([^}]+)\}\}")
_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)

_NOTE_STYLE = (
    "position:fixed;left:0;right:0;bottom:0;z-index:2147483647;margin:0;padding:10px 16px;"
    "background:#fff3cd;color:#4d3800;border-top:2px solid #d9a400;"
    "font:14px/1.5 system-ui,sans-serif"
)
GRAPHIQL_NOTE = (
    f'<p id="shms-assets-missing" role="alert" style="{_NOTE_STYLE}">'
    "<strong>GraphiQL's files are not installed on this server</strong>, so this page loads them "
    "from a public CDN (unpkg.com), which many hospital networks block: if it stays at "
    '"Loading...", that is why. Install them where SHMS runs with <code>make assets</code> '
    "(npm ci from package-lock.json into static/vendor/), then reload.</p>"
)
"""Shown on the CDN fallback page, so nobody mistakes a blocked CDN for a broken server."""

DASHBOARD_MISSING = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    "<title>SHMS dashboard: files missing</title></head><body>"
    f'<p id="shms-assets-missing" role="alert" style="{_NOTE_STYLE}">'
    "<strong>The dashboard's files are not installed on this server.</strong> Install them where "
    "SHMS runs with <code>make assets</code> (npm ci from package-lock.json into static/vendor/), "
    "then reload.</p></body></html>"
)
"""The dashboard has no CDN fallback: unlike strawberry's GraphiQL page, it would have no pinned
integrity to load a CDN's copy with, so it names the fix instead."""


@functools.lru_cache(maxsize=64)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    """Keyed by modification time and size too: a re-installed file gets its new hash."""
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def integrity(relative: str) -> str:
    """The Subresource Integrity value of ``static/<relative>``; FileNotFoundError if absent."""
    path = STATIC_DIR / relative
    stat = path.stat()
    return _digest(path, stat.st_mtime_ns, stat.st_size)


def render(template: str) -> str | None:
    """``static/<template>`` with every ``{{sri:<path>}}`` filled in; None when a file it names
    is not installed (the page could not work)."""
    text = (STATIC_DIR / template).read_text(encoding="utf-8")
    try:
        return _SRI.sub(lambda match: integrity(match.group(1)), text)
    except FileNotFoundError:
        return None


def with_note(page: str, note: str) -> str:
    """``page`` with ``note`` first in its body."""
    found = _BODY.search(page)
    at = found.end() if found else 0
    return page[:at] + note + page[at:]


def graphiql(cdn_page: str) -> str:
    """GraphiQL over the local files; else ``cdn_page`` (strawberry's) with the note."""
    page = render("graphiql.html")
    return page if page is not None else with_note(cdn_page, GRAPHIQL_NOTE)


def dashboard() -> str:
    """The operations dashboard; a page saying how to install its files when they are absent."""
    page = render("dashboard.html")
    return page if page is not None else DASHBOARD_MISSING


class PublicFiles(StaticFiles):
    """``/static``: scripts, styles and licences only; not the templates or this package's
    Python, which live in the same directory."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        name = PurePosixPath(path).name
        if not (name.endswith((".js", ".css")) or name.startswith("LICENSE")):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)

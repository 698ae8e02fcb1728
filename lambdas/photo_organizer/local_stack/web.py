"""The web app on the local gateway: the built single-page app (web/ → build/web, `make web-build`) at `/`, its
hashed assets with long cache lifetimes, and index.html for every other page a browser navigates to (SPA routing).
Without a build, a short page says how to make one. The app signs in through /auth/token and keeps the token in
sessionStorage; nothing here accepts a token from the URL."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

# The first path segments the API answers (handlers/api.py routes, plus the analysis progress another part adds).
API_SEGMENTS = frozenset(
    {"photos", "people", "faces", "feedback", "uploads", "settings", "review", "search", "analysis", "openapi.json"}
)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Photo Organizer</title></head><body>
<h1>Photo Organizer</h1>
<p>The web app has not been built. From the repository, run <code>make web-build</code>
(or <code>npm ci --prefix web &amp;&amp; npm run build --prefix web</code>), then reload this page.</p>
<p>The API is up: see <a href="/openapi.json">/openapi.json</a>.</p>
</body></html>
"""


def default_web_dir() -> Path:
    """build/web of the checkout this package runs from; PO_WEB_DIR points elsewhere."""
    configured = os.environ.get("PO_WEB_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "build" / "web"


class WebApp:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_web_dir()).resolve()

    @property
    def built(self) -> bool:
        return (self.root / "index.html").is_file()

    def index(self) -> Response:
        if not self.built:
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": REVALIDATE})
        return FileResponse(self.root / "index.html", media_type="text/html", headers={"Cache-Control": REVALIDATE})

    def asset(self, path: str) -> Response | None:
        """A file of the build (hashed names under assets/ are cached for a year), or None."""
        if not self.built or not path or path.startswith("/"):
            return None
        candidate = (self.root / path).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file() or candidate.name == "index.html":
            return None
        cache = IMMUTABLE if path.startswith("assets/") else REVALIDATE
        return FileResponse(candidate, headers={"Cache-Control": cache})

    def wants_page(self, request: Request, path: str) -> bool:
        """A GET the app should answer with index.html: a browser navigating (not an API call with a token) to a
        page of the app. Pages that share a name with the API (/search, /people, /review, /settings) are told apart
        by the navigation itself: browsers send Sec-Fetch-Mode: navigate and Accept: text/html, API clients do not."""
        if request.method != "GET" or request.headers.get("authorization"):
            return False
        first = path.strip("/").split("/", 1)[0]
        if first not in API_SEGMENTS:
            return True
        navigating = request.headers.get("sec-fetch-mode") == "navigate"
        return navigating or ("text/html" in request.headers.get("accept", "") and first != "openapi.json")

"""The local gateway serves the built app: index.html at / and for every page a browser navigates to (SPA routing,
also for pages named like an API route), hashed assets cached for a year, API calls untouched, no file outside the
build reachable, and a how-to-build page when there is no build."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from photo_organizer.errors import UnauthorizedError
from photo_organizer.local_stack.gateway import create_gateway
from photo_organizer.local_stack.web import WebApp

NAVIGATE = {"accept": "text/html,application/xhtml+xml", "sec-fetch-mode": "navigate"}


class RefusingIdentity:
    def verify(self, token: str) -> dict:
        raise UnauthorizedError("test")

    def jwks(self) -> dict:
        return {"keys": []}


def client_for(web_dir) -> TestClient:
    web = WebApp(web_dir)
    stack = SimpleNamespace(web=web, web_page=web.index, identity=RefusingIdentity(), api_handler=None, port=80,
                            settings=SimpleNamespace(public_base_url="http://testserver", max_upload_bytes=1 << 20))
    return TestClient(create_gateway(stack))


@pytest.fixture
def built(tmp_path):
    root = tmp_path / "web"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><title>Photo Organizer</title><script type="module" src="/assets/index-abc123.js"></script>')
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def test_index_is_served_at_root_and_revalidated(built):
    page = client_for(built).get("/")
    assert page.status_code == 200 and "/assets/index-abc123.js" in page.text
    assert page.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_cached_for_a_year(built):
    asset = client_for(built).get("/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.text == "console.log('app')"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["content-type"]


@pytest.mark.parametrize("path", ["/photo/p-123", "/upload", "/signin?next=/people"])
def test_app_pages_fall_back_to_index(built, path):
    page = client_for(built).get(path)
    assert page.status_code == 200 and "Photo Organizer" in page.text


@pytest.mark.parametrize("path", ["/search?q=cat", "/people", "/review", "/settings"])
def test_pages_named_like_api_routes_are_the_app_when_a_browser_navigates(built, path):
    client = client_for(built)
    assert "Photo Organizer" in client.get(path, headers=NAVIGATE).text
    api = client.get(path)  # the same path as an API call without a token: API Gateway's 401
    assert api.status_code == 401 and api.json() == {"message": "Unauthorized"}


def test_api_calls_with_a_token_never_get_the_page(built):
    response = client_for(built).get("/photos", headers={**NAVIGATE, "authorization": "Bearer nope"})
    assert response.status_code == 401 and isinstance(response.json(), dict)


@pytest.mark.parametrize("path", ["/assets/../../secret.txt", "/..%2Fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"])
def test_no_file_outside_the_build_is_served(built, path):
    response = client_for(built).get(path)
    assert "outside the build" not in response.text


def test_without_a_build_a_page_says_how_to_build(tmp_path):
    page = client_for(tmp_path / "missing").get("/")
    assert page.status_code == 200 and "make web-build" in page.text
    assert "<script" not in page.text  # nothing the strict CSP would block


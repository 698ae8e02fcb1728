"""The web app in a real headless Chromium against the local stack: it signs in with the token, lists the
library through the API and shows signed thumbnails. Skipped (saying so) where Chromium is not installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from photo_organizer.local_stack.client import PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_dom(url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=8000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90, check=False,
        )
    return completed.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium) — browser test skipped")
def test_web_app_lists_the_library_with_thumbnails_in_a_real_browser(stack):
    user, _ = stack.identity.add_user("webby", "webby's long password")
    token = stack.identity.issue_token(user)
    with PhotoApiClient(stack.url, token) as client:
        for name in ("chelsea.png", "rocket.jpg"):
            client.wait_until_processed(client.upload(SAMPLES / name))
    dom = rendered_dom(f"{stack.url}/#token={token}")
    assert "chelsea.png" in dom and "rocket.jpg" in dom
    assert "2 photos" in dom
    assert dom.count("/_blobs/derivatives/thumbnails/") == 2, "thumbnails come from signed blob URLs"

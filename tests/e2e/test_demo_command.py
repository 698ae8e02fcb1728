"""`photo-organizer demo` (what `make demo` runs), on a one-photo folder: it uploads through the real flow, waits
for the server's own analysis, and prints a one-time sign-in link for the app that names the demo user."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from photo_organizer.cli import app

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_demo_uploads_analyses_and_prints_a_sign_in_link_for_the_demo_user(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLES / "chelsea.png", photos)
    monkeypatch.setenv("PO_DEMO_PASSWORD", "the demo's long password")
    monkeypatch.setenv("CI", "1")  # never start a browser from a test
    result = CliRunner().invoke(app, [
        "demo", "--data-dir", str(tmp_path / "demo"), "--port", "0", "--samples", str(photos), "--no-serve", "--no-retrain",
    ])
    assert result.exit_code == 0, result.output
    assert "READY" in result.output
    link = re.search(r"sign in:\s+(http://127\.0\.0\.1:\d+/signin#code=[\w-]+)", result.output)
    assert link, result.output
    assert "token=" not in link.group(1)
    # The server has stopped with the command (--no-serve); the code is in the library's identity store.
    from photo_organizer.local_stack.identity import LocalIdentityProvider

    identity = LocalIdentityProvider(tmp_path / "demo", issuer="http://127.0.0.1/auth")
    assert identity.sign_in_code_user(link.group(1).split("#code=")[1]).username == "demo"
    with pytest.raises(httpx.TransportError):
        httpx.get(link.group(1).split("#")[0], timeout=5)

"""The web app in a real headless Chromium against the local stack: it signs in through its sign-in form, lists the
library through the API and shows signed thumbnails. Skipped (saying so) where Chromium is not installed.

The page takes no token from its URL (issue 13: a link must not sign anyone into another library), so the test
types into the form, through Chromium's DevTools protocol over --remote-debugging-pipe (stdlib only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from photo_organizer.local_stack.client import PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


SIGN_IN_AND_WAIT = """(async () => {
  const until = async (test) => { for (let i = 0; i < 300; i++) { if (test()) return; await new Promise(r => setTimeout(r, 50)); } };
  const form = document.getElementById('login');
  document.getElementById('u').value = %(username)s;
  document.getElementById('p').value = %(password)s;
  form.requestSubmit();
  await until(() => / photos$/.test(document.getElementById('status').textContent));
  return document.documentElement.outerHTML;
})()"""


class DevToolsPipe:
    """Chromium's DevTools protocol on fds 3 (to the browser) and 4 (from it): NUL-terminated JSON messages."""

    def __init__(self, profile: str) -> None:
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()
        self._process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4, to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: (os.dup2(to_browser_r, 3), os.dup2(from_browser_w, 4)),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._next_id = b"", 0

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params} | ({"sessionId": session} if session else {})
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(answer["error"])
                return answer["result"]

    def close(self) -> None:
        try:
            os.write(self._out, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self._process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait(timeout=30)
        os.close(self._out)
        os.close(self._in)


def signed_in_dom(url: str, username: str, password: str) -> str:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = DevToolsPipe(profile)
        try:
            target = browser.call("Target.createTarget", url=url)["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for _ in range(300):
                ready = browser.call(
                    "Runtime.evaluate", session,
                    expression=f"location.href.startsWith({json.dumps(url)}) && document.readyState === 'complete'",
                )
                if ready["result"].get("value"):
                    break
                time.sleep(0.05)
            script = SIGN_IN_AND_WAIT % {"username": json.dumps(username), "password": json.dumps(password)}
            result = browser.call("Runtime.evaluate", session, expression=script, awaitPromise=True)
            return result["result"].get("value", "")
        finally:
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium) — browser test skipped")
def test_web_app_lists_the_library_with_thumbnails_in_a_real_browser(stack):
    user, _ = stack.identity.add_user("webby", "webby's long password")
    token = stack.identity.issue_token(user)
    with PhotoApiClient(stack.url, token) as client:
        for name in ("chelsea.png", "rocket.jpg"):
            client.wait_until_processed(client.upload(SAMPLES / name))
    dom = signed_in_dom(f"{stack.url}/", "webby", "webby's long password")
    assert "chelsea.png" in dom and "rocket.jpg" in dom
    assert "2 photos" in dom
    assert dom.count("/_blobs/derivatives/thumbnails/") == 2, "thumbnails come from signed blob URLs"

"""The web app (build/web) in Debian's headless Chromium, driven by Playwright, against one local stack: sign in on
the sign-in page (a token in the URL is ignored), upload three sample photos and watch their bars finish, find
them in the timeline (keyboard too), search by a place and by a tag, reject the tag and see it gone from the photo and from
search, undo it, name a person, delete with undo; hostile strings in a file name, in OCR text and in a person's
name stay text. Every page runs under the gateway's strict Content-Security-Policy (added here to each page too, so
the app is held to it even where the gateway does not send it yet) and must cause no violation. Screenshots of
every screen go to build/screenshots/. Skipped, saying why, without Chromium, the Playwright package or a build."""

from __future__ import annotations

import re
import time
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from photo_organizer.local_stack.analysis_runner import LABEL_MODEL
from photo_organizer.local_stack.client import PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BUILT = (ROOT / "build" / "web" / "index.html").is_file()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "frame-ancestors 'none'")
XSS = '<img src=x onerror="window.__xss=1">'
XSS_FILE = f"{XSS}.png"
XSS_OCR = "<script>window.__xss=1</script>" + XSS
XSS_NAME = f"Barack {XSS}"
UPLOADED = ["obama.jpg", "obama2.jpg", "obama3.jpg"]

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

pytestmark.append(pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium): browser tests skipped"))
pytestmark.append(pytest.mark.skipif(sync_playwright is None, reason="the Python playwright package is not installed: browser tests skipped"))
pytestmark.append(pytest.mark.skipif(not BUILT, reason="build/web is missing: run `make web-build` (make test does)"))


@pytest.fixture(scope="module")
def stack(serving_stack):
    """The server as `photo-organizer serve` runs it: uploads are analysed in the background while it serves."""
    return serving_stack


@pytest.fixture(scope="module")
def browser_context():
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def family(stack):
    """A user with two photos uploaded through the API (one with a hostile file name) before the browser starts."""
    user, password = stack.identity.add_user("wendy", "wendy's long password")
    token = stack.identity.issue_token(user)
    with PhotoApiClient(stack.url, token) as client:
        seeded = {name: client.upload(SAMPLES / name) for name in ("chelsea.png", "coffee_exif_gps.jpg")}
        with tempfile.TemporaryDirectory() as tmp:
            hostile = Path(tmp) / XSS_FILE
            hostile.write_bytes((SAMPLES / "text.png").read_bytes())
            seeded[XSS_FILE] = client.upload(hostile)
        for photo_id in seeded.values():
            client.wait_until_processed(photo_id)
    return user, password, token, seeded


def strict_page(context, violations: list[str]) -> Page:
    page = context.new_page()

    def with_csp(route):
        if route.request.resource_type != "document":
            return route.continue_()
        response = route.fetch()
        return route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

    page.route("**/*", with_csp)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
    return page


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def analyse(stack, user_token: str) -> None:
    """The server's background analysis (no restart, no second command), watched through GET /analysis/progress."""
    deadline = time.monotonic() + 300  # generous: shared, loaded machines
    headers = {"Authorization": f"Bearer {user_token}"}
    while time.monotonic() < deadline:
        counts = httpx.get(f"{stack.url}/analysis/progress", headers=headers, timeout=60).json()
        if counts["waiting"] == 0 and counts["analysing"] == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"background analysis did not finish: {counts}")


def plant_ocr_text(stack, user, photo_id: str, text: str) -> None:
    """Hostile OCR text, as a newer analysis version of the photo (OCR of a picture of this string would do the same)."""
    from photo_organizer.analysis.models import TextLine

    store = stack.services.analysis
    current = store.get(user.sub, photo_id)
    result = current.result.model_copy(update={
        "analysis_version": current.result.analysis_version + 1,
        "text_lines": (TextLine(text=text, confidence=99.0),),
    })
    assert store.save(current.model_copy(update={"result": result}))


def test_a_family_day_in_the_app(stack, browser_context, family):
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    user, _, token, seeded = family
    violations: list[str] = []
    page = strict_page(browser_context, violations)

    # A token in the URL signs nobody in.
    page.goto(f"{stack.url}/#token={token}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('po.token')") is None
    shot(page, "01-sign-in")
    page.get_by_label("Username").fill("wendy")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill("wendy's long password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    assert "token" not in page.url

    # Upload three photos: each bar fills and each settles as ready.
    page.get_by_role("link", name="Upload").click()
    page.locator("[data-testid=pick-files]").set_input_files([str(SAMPLES / n) for n in UPLOADED])
    expect(page.locator("li.upload[data-state=ready]")).to_have_count(3, timeout=30_000)
    assert page.locator("li.upload progress").evaluate_all("bars => bars.map(b => b.value)") == [1, 1, 1]
    expect(page.get_by_role("status").filter(has_text="3 of 3 done")).to_be_visible()
    shot(page, "02-upload")

    started = time.monotonic()
    analyse(stack, token)
    print(f"analysis took {time.monotonic() - started:.1f} s")
    plant_ocr_text(stack, user, seeded[XSS_FILE], XSS_OCR)

    # The timeline: all six, grouped under day headings, navigable with the keyboard.
    page.get_by_role("link", name="Timeline").click()
    thumbs = page.locator("a.thumb")
    expect(page.get_by_test_id("photo-count")).to_have_text("6 photos")
    scrubber = page.get_by_role("navigation", name="Jump to a month").get_by_role("button")  # whole library, counted
    expect(scrubber.last).to_have_attribute("aria-label", "Sep 2009, 1 photo")
    expect(page.locator(".row.day h4").first).to_be_visible()
    assert page.locator("a.thumb img").first.get_attribute("loading") == "lazy"
    labels = set(thumbs.evaluate_all("ts => ts.map(t => t.getAttribute('aria-label'))"))
    page.get_by_test_id("timeline-scroller").evaluate("s => { s.scrollTop = s.scrollHeight; }")  # windowed: scroll
    page.wait_for_timeout(200)
    labels |= set(thumbs.evaluate_all("ts => ts.map(t => t.getAttribute('aria-label'))"))
    page.get_by_test_id("timeline-scroller").evaluate("s => { s.scrollTop = 0; }")
    page.wait_for_timeout(200)
    everyone = UPLOADED + ["chelsea.png", "coffee_exif_gps.jpg", XSS_FILE]
    assert {n for n in everyone if any(label.startswith(n) for label in labels)} == set(everyone)
    thumbs.first.focus()
    page.keyboard.press("ArrowRight")
    # Focus moves after the app re-renders (an effect), not within the key press: wait for it, don't sample it.
    expect(page.locator("a.thumb[data-index='1']")).to_be_focused()
    shot(page, "03-timeline")

    # The hostile file name and OCR text are shown as text.
    page.goto(f"{stack.url}/photo/{seeded[XSS_FILE]}")
    expect(page.get_by_test_id("filename")).to_have_text(XSS_FILE)
    expect(page.get_by_test_id("ocr")).to_contain_text(XSS_OCR)

    # Search by a place: the GPS photo's town is understood (a chip) and finds it.
    page.goto(f"{stack.url}/search?q=Madison")
    expect(page.locator(f"li.hit[data-photo-id='{seeded['coffee_exif_gps.jpg']}']")).to_be_visible()
    expect(page.get_by_test_id("chip").filter(has_text="Madison")).to_be_visible()

    # Search by a tag, reject it on the photo, see it gone there and from search, undo it.
    page.goto(f"{stack.url}/search?q=cat")
    hit = page.locator(f"li.hit[data-photo-id='{seeded['chelsea.png']}']")
    expect(hit).to_be_visible()
    expect(hit.locator(".why")).to_contain_text("Matched because")
    expect(page.get_by_test_id("chip").first).to_be_visible()
    shot(page, "04-search")
    hit.locator("a.thumb").click()
    tags = page.get_by_test_id("tags")
    expect(tags).to_contain_text("Cat")
    shot(page, "05-photo")
    page.get_by_role("button", name="Reject tag Cat").click()
    expect(page.get_by_test_id("feedback-message")).to_have_text("Removed “Cat”")
    expect(tags.locator("li.tag span", has_text=re.compile("^Cat$"))).to_have_count(0)
    page.goto(f"{stack.url}/search?tag=Cat")  # by the tag itself: a word search may still find it by meaning
    expect(page.get_by_test_id("search-total")).to_be_visible()
    expect(page.locator(".chip.filter")).to_contain_text("tag: Cat")
    expect(page.locator(f"li.hit[data-photo-id='{seeded['chelsea.png']}']")).to_have_count(0)
    page.goto(f"{stack.url}/photo/{seeded['chelsea.png']}")
    page.get_by_role("button", name="Undo: Removed “Cat”").click()
    expect(tags.locator("li.tag span", has_text=re.compile("^Cat$"))).to_have_count(1)
    page.goto(f"{stack.url}/search?tag=Cat")
    expect(page.locator(f"li.hit[data-photo-id='{seeded['chelsea.png']}']")).to_be_visible()

    # Delete, then take it back inside the undo window.
    page.goto(f"{stack.url}/photo/{seeded['chelsea.png']}")
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Undo delete").click()
    page.wait_for_timeout(1500)
    assert httpx.get(f"{stack.url}/photos/{seeded['chelsea.png']}", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # Name the person the three uploads show, with a hostile name: it stays text.
    page.get_by_role("link", name="People").click()
    expect(page.locator("li.person").first).to_be_visible()
    person_id = page.locator("li.person").first.get_attribute("data-person-id")
    person = page.locator(f"li.person[data-person-id='{person_id}']")
    person.get_by_role("button", name=re.compile("^(Name|Rename) ")).click()
    person.get_by_role("textbox", name="Name").fill(XSS_NAME)
    person.get_by_role("button", name="Save").click()
    expect(person.locator(".person-name")).to_have_text(XSS_NAME, timeout=20_000)  # the server reclusters first
    expect(page.get_by_role("status").filter(has_text="Named")).to_contain_text(XSS_NAME)
    shot(page, "06-people")
    # The person's photos, then one of them: its face drawn as a box labelled with the (inert) name.
    person.get_by_role("button", name=re.compile("^Show photos of")).click()
    page.locator("section[aria-labelledby=person-photos] a.thumb").first.click()
    expect(page.get_by_test_id("face-box").filter(has_text=XSS_NAME).first).to_be_visible()
    expect(page.get_by_role("button", name="Not this person").first).to_be_visible()
    shot(page, "06b-photo-faces")

    page.get_by_role("link", name="Review").click()
    expect(page.get_by_role("heading", name="Review")).to_be_visible()
    shot(page, "07-review")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("button", name="Delete my account")).to_be_enabled()
    shot(page, "08-settings")

    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Timeline").click()
    expect(thumbs.first).to_be_visible()
    shot(page, "09-timeline-phone")

    assert page.evaluate("window.__xss") is None, "a hostile string ran as code"
    assert page.locator("img[src='x']").count() == 0
    # Last: the account deleted from Settings (DELETE /account) leaves an empty library and no sign-in: the app
    # says so (an alert) and signs out, as in the cloud.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="Settings").click()
    alerts: list[str] = []

    def answer(dialog) -> None:
        if dialog.type == "alert":
            alerts.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_label("Username")).to_be_visible(timeout=60_000)
    assert len(alerts) == 1 and "Your library and your sign-in are deleted" in alerts[0], alerts
    assert stack.identity.get_user(user.username) is None
    assert stack.services.metadata.photo_ids(user.sub) == []
    assert violations == [], violations
    page.close()


def test_a_sign_in_link_names_its_account_signs_in_on_confirmation_and_works_once(stack, browser_context):
    """`make demo` opens the app through such a link: signed in with one click, never by a token in the URL."""
    from photo_organizer.cli import sign_in_link

    user, _ = stack.identity.add_user("lena", "lena's long password")
    link = sign_in_link(stack.url, stack.identity.issue_sign_in_code(user))
    violations: list[str] = []
    page = strict_page(browser_context, violations)
    page.goto(link)
    expect(page.get_by_test_id("link-user")).to_have_text("lena")
    assert "code" not in page.url, "the code stays out of the address bar and history"
    assert page.evaluate("sessionStorage.getItem('po.token')") is None, "nobody is signed in before confirming"
    page.get_by_role("button", name="Continue as lena").click()
    expect(page.get_by_test_id("photo-count")).to_have_text("0 photos")
    assert stack.identity.verify(page.evaluate("sessionStorage.getItem('po.token')"))["sub"] == user.sub

    again = strict_page(browser_context, violations)
    again.goto(link)
    expect(again.get_by_role("alert")).to_contain_text("unknown, used or expired")
    expect(again.get_by_label("Username")).to_be_visible()
    assert again.evaluate("sessionStorage.getItem('po.token')") is None
    assert violations == [], violations
    page.close()
    again.close()

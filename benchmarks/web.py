"""The web app, measured in Debian's headless Chromium against a local stack:

1. bundle size: JS + CSS of build/web, gzipped (target <= 200 KB);
2. first contentful paint of the signed-in timeline (median of a few loads);
3. a 10k-photo library (records written straight through the services, no image work): the most thumbnails ever
   in the DOM while scrolling the whole timeline top to bottom (target <= 60), and how many pages were fetched;
4. time from the end of an upload to the photo showing tags in the app (median and p95 over --photos uploads):
   needs the server's background analysis (GET /analysis/progress); without it this part says so and is skipped.

    .venv/bin/python benchmarks/web.py [--library 10000] [--photos 20]

Prints numbers and ratios; asserts nothing about time (the tests hold the behaviour).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.local_stack.client import PhotoApiClient  # noqa: E402
from photo_organizer.local_stack.stack import LocalStack  # noqa: E402
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus  # noqa: E402

WEB = ROOT / "build" / "web"
SAMPLES = ROOT / "samples"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PASSWORD = "benchmark's long password"


def bundle_size() -> tuple[int, int]:
    files = [p for p in (WEB / "assets").iterdir() if p.suffix in (".js", ".css")]
    raw = sum(p.stat().st_size for p in files)
    gz = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in files)
    return raw, gz


def fake_library(stack: LocalStack, owner: str, n: int) -> None:
    """n READY photo records, 25 a day going back in time: the timeline's data without any image work."""
    metadata = stack.services.metadata
    start = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    for i in range(n):
        taken = start - timedelta(days=i // 25, minutes=i % 25)
        digest = hashlib.sha256(f"{owner}{i}".encode()).hexdigest()
        metadata.create_photo(Photo(
            owner=owner, photo_id=f"bench{i:06d}", status=PhotoStatus.READY, filename=f"IMG_{i:05d}.jpg",
            declared_content_type="image/jpeg", declared_size=1000, created_at=taken, updated_at=taken,
            metadata=ImageMetadata(format=ImageFormat.JPEG, width=4000, height=3000, byte_size=1000, sha256=digest,
                                   phash=digest[:16], taken_at=taken),
        ), pending_ttl=timedelta(hours=1))


def sign_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Timeline").wait_for()


def first_contentful_paint(page, url: str, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        page.goto(f"{url}/")
        page.get_by_role("heading", name="Timeline").wait_for()
        samples.append(page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"))
    return statistics.median(samples)


def scroll_whole_timeline(page, expected: int) -> tuple[int, int, int, float]:
    """Scrolls to the bottom, loading pages as it goes; returns (max thumbs in DOM, photos loaded, steps, seconds)."""
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/")
    scroller = page.get_by_test_id("timeline-scroller")
    scroller.wait_for()
    page.locator("a.thumb").first.wait_for()
    worst, steps, started = 0, 0, time.perf_counter()
    while True:
        state = page.evaluate("""() => {
            const s = document.querySelector('[data-testid=timeline-scroller]');
            s.scrollTop += s.clientHeight * 0.9;
            return { top: s.scrollTop, height: s.scrollHeight, view: s.clientHeight };
        }""")
        page.wait_for_timeout(30)
        worst = max(worst, page.locator("a.thumb").count())
        steps += 1
        text = page.get_by_test_id("photo-count").inner_text()
        loaded = int(text.split(" ")[0].rstrip("+"))
        at_bottom = state["top"] + state["view"] >= state["height"] - 2
        if at_bottom and "+" not in text and "loading" not in text:
            return worst, loaded, steps, time.perf_counter() - started
        if steps > 20 * expected:
            raise RuntimeError("the timeline never reached its end")


def upload_to_tags(stack: LocalStack, page, client: PhotoApiClient, token: str, photos: int,
                   untagged: list[str]) -> list[float] | None:
    probe = httpx.get(f"{stack.url}/analysis/progress", headers={"Authorization": f"Bearer {token}"})
    if probe.status_code == 404:
        return None
    names = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(photos):
            source = names[i % len(names)]
            copy = Path(tmp) / f"{i:02d}-{source.name}"
            # A distinct file each time (a byte appended after the image data) so no upload is a duplicate.
            copy.write_bytes(source.read_bytes() + i.to_bytes(2, "big"))
            photo_id = client.upload(copy)
            ended = time.perf_counter()
            page.goto(f"{stack.url}/photo/{photo_id}")
            deadline = ended + 120
            while time.perf_counter() < deadline:
                if page.locator("[data-testid=tags] li.tag").count() > 0:
                    times.append(time.perf_counter() - ended)
                    break
                analysis = client.photo(photo_id).get("analysis")
                if analysis is not None and not analysis.get("tags"):
                    untagged.append(source.name)  # analysed, nothing to tag (e.g. a page of text): not a wait
                    break
                page.wait_for_timeout(200)
                page.reload()
            else:
                times.append(time.perf_counter() - ended)  # never shown: counts as the whole deadline
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--library", type=int, default=10_000)
    parser.add_argument("--photos", type=int, default=20)
    args = parser.parse_args()
    if not (WEB / "index.html").is_file():
        sys.exit("build/web is missing: run `make web-build`")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    raw, gz = bundle_size()
    print(f"bundle: JS+CSS {raw / 1024:.1f} KB raw, {gz / 1024:.1f} KB gzipped (target <= 200 KB: {gz / 1024 / 200:.0%} of it)")

    # The 10k library is records only (no image bytes): its server runs without background analysis, which would
    # otherwise spend the run failing to analyse them. Upload -> tags is measured on a second, serving stack.
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True, args=ARGS,
                                                        viewport={"width": 1280, "height": 800})
        page = context.new_page()
        with tempfile.TemporaryDirectory() as data, LocalStack(Path(data), analyse=False) as stack:
            user, _ = stack.identity.add_user("bench", PASSWORD)
            started = time.perf_counter()
            fake_library(stack, user.sub, args.library)
            print(f"library: {args.library} photo records written in {time.perf_counter() - started:.1f} s")
            sign_in(page, stack.url, "bench")
            fcp = first_contentful_paint(page, stack.url)
            print(f"first contentful paint (signed-in timeline, median of 5): {fcp:.0f} ms")
            for width, height in ((1280, 800), (390, 844), (2560, 1440)):
                page.set_viewport_size({"width": width, "height": height})
                worst, loaded, steps, seconds = scroll_whole_timeline(page, args.library)
                print(f"timeline {width}x{height}: scrolled {loaded} photos in {steps} steps ({seconds:.1f} s); "
                      f"at most {worst} thumbnails in the DOM (target <= 60)")
            page.set_viewport_size({"width": 1280, "height": 800})
        with tempfile.TemporaryDirectory() as data, LocalStack(Path(data)) as stack:
            user, _ = stack.identity.add_user("bench", PASSWORD)
            sign_in(page, stack.url, "bench")
            token = stack.identity.issue_token(user)
            with PhotoApiClient(stack.url, token) as client:
                untagged: list[str] = []
                times = upload_to_tags(stack, page, client, token, args.photos, untagged)
        if not times:
            print("upload -> tags: not measured: this server has no background analysis (GET /analysis/progress is 404)")
        else:
            ordered = sorted(times)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            print(f"upload -> tags in the app over {len(times)} photos: median {statistics.median(times):.2f} s, p95 {p95:.2f} s"
                  f" ({len(untagged)} more analysed with no tags to show: {', '.join(sorted(set(untagged))) or 'none'})")
        context.close()


if __name__ == "__main__":
    main()

"""Analysis while serving: time from the end of an upload (the presigned POST answered) to the photo analysed,
grouped into people and found by search, through the running local server over real HTTP (no analyze step).

Each sample photo is uploaded alone, then GET /analysis/progress is polled (every 50 ms) until nothing waits or is
being analysed, then GET /search for one of its tags must find it. The server loads the models in the background
when it starts; the first photo may still wait for that: it is reported apart. Prints the median and max of the
rest, and a batch of all photos uploaded at once.

    .venv/bin/python benchmarks/serving_analysis.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.local_stack.client import PhotoApiClient  # noqa: E402
from photo_organizer.local_stack.stack import LocalStack  # noqa: E402

SAMPLES = ROOT / "samples"
SUFFIXES = {".jpg", ".jpeg", ".png", ".heic"}


def wait_analysed(client: PhotoApiClient, photo_id: str) -> float:
    start = time.monotonic()
    processed = client.wait_until_processed(photo_id)
    if processed["status"] != "READY":
        return -1.0  # a duplicate or a rejection is not analysed
    while True:
        progress = client.analysis_progress()
        if progress["waiting"] + progress["analysing"] == 0:
            break
        time.sleep(0.05)
    # "Person" is shown for detected faces, not searched as a tag: a photo with nothing else is looked up by list.
    tags = [t for t in (client.photo(photo_id).get("analysis") or {}).get("tags") or [] if t != "Person"]
    hits = {item["photo_id"] for item in client.search(tags[0] if tags else "", limit=50)["items"]}
    assert photo_id in hits, f"{photo_id} not found by {tags[:1]}"
    return time.monotonic() - start


def main() -> None:
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in SUFFIXES)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp), port=0) as stack:
        user, _ = stack.identity.add_user("bench", "bench's long password")
        with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
            times: list[tuple[str, float]] = []
            for path in files:
                photo_id = client.upload(path)  # returns when the presigned POST was answered
                seconds = wait_analysed(client, photo_id)
                if seconds >= 0:
                    times.append((path.name, seconds))
        other, _ = stack.identity.add_user("batch", "batch's long password")
        with PhotoApiClient(stack.url, stack.identity.issue_token(other)) as client:
            start = time.monotonic()
            ids = [client.upload(path) for path in files]
            for photo_id in ids:
                client.wait_until_processed(photo_id)
            done = client.wait_until_analysed(timeout=600)
            batch_seconds = time.monotonic() - start
    first, rest = times[0], [s for _, s in times[1:]]
    print(f"upload complete -> analysed, people grouped, searchable (one photo at a time, {len(times)} photos)")
    print(f"  first photo ({first[0]}, may wait for the models): {first[1]:.2f} s")
    print(f"  the others: median {statistics.median(rest):.2f} s, max {max(rest):.2f} s")
    for name, seconds in times:
        print(f"    {name:28s} {seconds:.2f} s")
    print(f"all {len(files)} uploaded at once: {batch_seconds:.2f} s to {done}")


if __name__ == "__main__":
    main()

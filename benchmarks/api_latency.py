"""End-to-end latency of the local API: real HTTP through the gateway (JWT check, HTTP API v2 event, handler,
search service, index, signed thumbnail URLs) on an analysed copy of the sample library.

Prints p50/p95/p99 per request kind next to a baseline measured in the same run: GET /.well-known/jwks.json,
the same HTTP server and connection with no handler, storage or search work behind it. Target: search p95
under 100 ms.

    .venv/bin/python benchmarks/api_latency.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library  # noqa: E402
from photo_organizer.local_stack.client import PhotoApiClient  # noqa: E402
from photo_organizer.local_stack.stack import LocalStack  # noqa: E402

QUERIES = ["cat", "coffee in Madison", "photos from 2012", "kitten", "person", "rocket launch at night", ""]


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.95), pick(0.99)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp), port=0, analyse=False) as stack:
        user, _ = stack.identity.add_user("bench", "a long bench password")
        token = stack.identity.issue_token(user)
        with PhotoApiClient(stack.url, token) as client:
            for path in sorted((ROOT / "samples").glob("*")):
                if path.suffix.lower() in {".jpg", ".png", ".heic"}:
                    client.wait_until_processed(client.upload(path))
        analyse_library(Path(tmp), workers=2, label_model=ROOT / LABEL_MODEL)
        headers = {"Authorization": f"Bearer {token}"}
        kinds = {
            "baseline GET /.well-known/jwks": lambda i: ("/.well-known/jwks.json", {}),
            "GET /photos": lambda i: ("/photos", {"limit": 50}),
            "GET /search": lambda i: ("/search", {"q": QUERIES[i % len(QUERIES)]}),
            "GET /search/suggest": lambda i: ("/search/suggest", {"prefix": "co"}),
        }
        with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as http:
            http.get("/search", params={"q": "warm up the embedder"})
            results = {}
            for kind, request in kinds.items():
                samples = []
                for i in range(args.requests):
                    path, params = request(i)
                    started = time.perf_counter()
                    response = http.get(path, params=params)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (kind, response.status_code, response.text[:200])
                results[kind] = percentiles(samples)
    base = results["baseline GET /.well-known/jwks"][1]
    print(f"local API latency over HTTP, {args.requests} requests each (ms)")
    for kind, (p50, p95, p99) in results.items():
        print(f"{kind:30s} p50 {p50:7.2f}  p95 {p95:7.2f}  p99 {p99:7.2f}  p95/baseline {p95 / base:5.1f}x")
    search_p95 = results["GET /search"][1]
    print(("PASS" if search_p95 < 100 else "MISS") + f": search p95 {search_p95:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()

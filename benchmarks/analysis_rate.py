"""Sustained Rekognition rate under an account quota: client-side token buckets against back-off alone.

Run: .venv/bin/python benchmarks/analysis_rate.py            (about 25-30 s; no AWS calls)

A simulated Rekognition enforces 50 TPS per API for the whole account (as the real quotas do: per API, per
account and region) with a server-side token bucket (burst 5, i.e. 0.1 s of quota; AWS does not publish its
burst) and answers ThrottlingException past it. Calls take 120 ms +- 30 ms (gaussian, 60 ms floor), split into
a request leg before the quota check and a response leg after it; a throttled answer takes ~20 ms.

The real RekognitionAnalyzer drives it, as the Glue job does: WORKERS executors x THREADS threads, each thread
with its own analyzer, each executor with one TokenBucket per API at split_tps(50, WORKERS) plugged in as the
analyzer's throttle; every retry (call_with_backoff inside the analyzer) passes the bucket again. Photos follow
the two-phase plan (DetectLabels, then IndexFaces and DetectModerationLabels for the 60% with people and
DetectText for the 30% with text), so DetectLabels is the busiest API: its rate is the one compared with the
configured 50 TPS. The baseline, in the same run, is the same fleet with back-off only (no bucket).

Targets (issue 4): achieved >= 90% of the configured TPS, 0 photos failed by throttling.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas")]

from botocore.exceptions import ClientError  # noqa: E402

from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer  # noqa: E402
from photo_organizer.analysis.models import AnalysisPlan, ApiCall  # noqa: E402
from photo_organizer.analysis.planning import AnalysisSettings, PhotoRecord, plan_calls  # noqa: E402
from photo_organizer.analysis.throttling import BackoffStats, TokenBucket, split_tps  # noqa: E402
from photo_organizer.errors import AnalysisThrottledError  # noqa: E402
from photo_organizer.models import PhotoStatus  # noqa: E402

ACCOUNT_TPS = 50.0
SERVER_BURST = 5.0
WORKERS, THREADS = 4, 8
DURATION_S, WARMUP_S = 10.0, 1.0
LATENCY_S, JITTER_S, FLOOR_S, THROTTLED_LATENCY_S = 0.120, 0.030, 0.060, 0.020
MAX_ATTEMPTS = 6
PEOPLE_SHARE, TEXT_SHARE = 0.60, 0.30
TARGET = 0.90
BUCKET = "po-previews-bench"
DATA = ROOT / "tests" / "data" / "rekognition"
OPERATIONS = {
    "detect_labels": ApiCall.DETECT_LABELS,
    "detect_moderation_labels": ApiCall.DETECT_MODERATION_LABELS,
    "index_faces": ApiCall.INDEX_FACES,
    "detect_text": ApiCall.DETECT_TEXT,
}


class ServerQuota:
    """The service's side: non-blocking, answers "throttled" instead of making the caller wait."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._last = burst, time.monotonic()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def _traits(photo_id: str) -> tuple[bool, bool]:
    digest = hashlib.sha256(photo_id.encode()).digest()
    return digest[0] < 256 * PEOPLE_SHARE, digest[1] < 256 * TEXT_SHARE


class SimulatedRekognition:
    """Shared by every thread, like the real endpoint. Replays the recorded response shapes."""

    def __init__(self, seed: int) -> None:
        self.quotas = {api: ServerQuota(ACCOUNT_TPS, SERVER_BURST) for api in ApiCall}
        self.ok: dict[ApiCall, list[float]] = {api: [] for api in ApiCall}  # completion times
        self.throttled: Counter[ApiCall] = Counter()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._responses = {
            name: json.loads((DATA / f"{file}.json").read_text())
            for name, file in (("detect_labels", "detect_labels"), ("index_faces", "index_faces"),
                               ("detect_text", "detect_text"),
                               ("detect_moderation_labels", "detect_moderation_labels_none"))
        }

    def _latency(self) -> float:
        with self._lock:
            return max(FLOOR_S, self._rng.gauss(LATENCY_S, JITTER_S))

    def _serve(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        api = OPERATIONS[operation]
        latency = self._latency()
        time.sleep(latency / 2)  # request leg: arrivals reach the quota check jittered
        if not self.quotas[api].admit():
            time.sleep(THROTTLED_LATENCY_S)
            with self._lock:
                self.throttled[api] += 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}},
                operation,
            )
        time.sleep(latency / 2)
        with self._lock:
            self.ok[api].append(time.monotonic())
        response = json.loads(json.dumps(self._responses[operation]))
        if operation == "detect_labels":
            people, text = _traits(params["Image"]["S3Object"]["Name"])
            response["Labels"] = [label for label in response["Labels"] if label["Name"] != "Person"]
            if people:
                response["Labels"].append({"Name": "Person", "Confidence": 99.1, "Parents": [], "Categories": []})
            if text:
                response["Labels"].append({"Name": "Text", "Confidence": 97.0, "Parents": [], "Categories": []})
        return response

    def __getattr__(self, operation: str) -> Any:
        if operation not in OPERATIONS:
            raise AttributeError(operation)
        return lambda **params: self._serve(operation, params)


@dataclass
class Outcome:
    label: str
    server: SimulatedRekognition
    started: float
    photos_done: int = 0
    photos_failed: int = 0
    stats: list[BackoffStats] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tps(self, api: ApiCall) -> float:
        lo, hi = self.started + WARMUP_S, self.started + DURATION_S
        return sum(1 for t in self.server.ok[api] if lo <= t < hi) / (DURATION_S - WARMUP_S)


def run(label: str, *, client_buckets: bool, seed: int) -> Outcome:
    server = SimulatedRekognition(seed)
    settings = AnalysisSettings()
    next_photo = iter(range(10**9))
    take = threading.Lock()
    outcome = Outcome(label, server, time.monotonic())
    deadline = outcome.started + DURATION_S

    def worker_throttle() -> Any:
        if not client_buckets:
            return None
        share = split_tps(ACCOUNT_TPS, WORKERS)
        buckets = {api: TokenBucket(share, burst=1) for api in ApiCall}
        return lambda call: buckets[call].acquire()

    def thread_main(throttle: Any, thread_seed: int) -> None:
        stats = BackoffStats()
        rng = random.Random(thread_seed)
        analyzer = RekognitionAnalyzer(
            previews_bucket=BUCKET, collection_prefix="bench-faces", client_factory=lambda: server, throttle=throttle, max_attempts=MAX_ATTEMPTS,
            rng=rng.random, stats=stats,
        )
        while time.monotonic() < deadline:
            with take:
                photo_id = f"p{next(next_photo):08d}"
            record = PhotoRecord(owner="bench", photo_id=photo_id, status=PhotoStatus.READY)
            try:
                first = analyzer.analyze(b"", _plan(record, plan_calls(record, None, settings, face_consent=True)))
                later = plan_calls(record, first.labels, settings, face_consent=True)
                if later:
                    analyzer.analyze(b"", _plan(record, later))
            except AnalysisThrottledError:
                with outcome.lock:
                    outcome.photos_failed += 1
            else:
                with outcome.lock:
                    outcome.photos_done += 1
        with outcome.lock:
            outcome.stats.append(stats)

    threads = []
    for w in range(WORKERS):
        throttle = worker_throttle()  # one bucket set per executor, shared by its threads
        for t in range(THREADS):
            threads.append(threading.Thread(target=thread_main, args=(throttle, seed * 1000 + w * 100 + t)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def _plan(record: PhotoRecord, calls: list[ApiCall]) -> AnalysisPlan:
    return AnalysisPlan(owner=record.owner, photo_id=record.photo_id, analysis_version=1, calls=frozenset(calls))


def report(outcome: Outcome) -> None:
    server = outcome.server
    print(f"\n{outcome.label}")
    print(f"  {'API':<24}{'ok TPS':>8}{'throttled':>11}")
    for api in ApiCall:
        print(f"  {api.value:<24}{outcome.tps(api):>8.1f}{server.throttled[api]:>11}")
    slept = sum(s.slept_s for s in outcome.stats)
    print(f"  photos analysed {outcome.photos_done}, failed by throttling {outcome.photos_failed}, "
          f"throttles {sum(server.throttled.values())}, back-off sleep {slept:.1f} thread-s")


def main() -> int:
    print(f"Simulated Rekognition: {ACCOUNT_TPS:.0f} TPS per API (server burst {SERVER_BURST:.0f}), "
          f"{LATENCY_S * 1000:.0f} +- {JITTER_S * 1000:.0f} ms per call; {WORKERS} workers x {THREADS} threads, "
          f"{DURATION_S:.0f} s each run (first {WARMUP_S:.0f} s not counted)")
    bucketed = run(f"token bucket per worker ({split_tps(ACCOUNT_TPS, WORKERS):.1f} TPS/API) + back-off",
                   client_buckets=True, seed=1)
    report(bucketed)
    baseline = run("baseline: back-off only", client_buckets=False, seed=2)
    report(baseline)

    achieved = bucketed.tps(ApiCall.DETECT_LABELS)
    ratio = achieved / ACCOUNT_TPS
    throttles = sum(bucketed.server.throttled.values())
    base_throttles = sum(baseline.server.throttled.values())
    print()
    print(f"achieved DetectLabels {achieved:.1f} / configured {ACCOUNT_TPS:.0f} TPS = {ratio:.0%} "
          f"(baseline {baseline.tps(ApiCall.DETECT_LABELS):.1f} TPS)")
    print(f"throttles {throttles} vs baseline {base_throttles} "
          f"({throttles / base_throttles:.1%} of baseline)" if base_throttles else f"throttles {throttles}")
    ok_rate = ratio >= TARGET
    ok_failed = bucketed.photos_failed == 0
    print(f"{'PASS' if ok_rate else 'MISS'} sustained rate {ratio:.0%} of configured TPS (target >= {TARGET:.0%})")
    print(f"{'PASS' if ok_failed else 'MISS'} photos failed by throttling: {bucketed.photos_failed} (target 0; "
          f"baseline {baseline.photos_failed})")
    return 0 if ok_rate and ok_failed else 1


if __name__ == "__main__":
    raise SystemExit(main())

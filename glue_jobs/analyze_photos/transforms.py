"""Pure transforms of the analysis job: no Spark, no boto3, no network, so every decision is unit-testable.

job.py (thin) reads the photo table, partitions the work and calls these per photo; the local backend runs the
same functions in a process pool.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from photo_organizer.analysis.models import ApiCall, Label
from photo_organizer.errors import ConfigurationError
from photo_organizer.models import Photo, PhotoStatus

T = TypeVar("T")


# ---- input record and settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoRecord:
    """The job's view of one photo row: just what planning and dedupe need."""

    owner: str
    photo_id: str  # time-ordered (keys.new_photo_id), so sorting by id is upload order
    status: PhotoStatus
    sha256: str | None = None
    phash: str | None = None
    analysis_version: int = 0  # 0: never analysed

    @classmethod
    def from_photo(cls, photo: Photo, *, analysis_version: int = 0) -> PhotoRecord:
        meta = photo.metadata
        return cls(
            owner=photo.owner,
            photo_id=photo.photo_id,
            status=photo.status,
            sha256=meta.sha256 if meta else None,
            phash=meta.phash if meta else None,
            analysis_version=analysis_version,
        )


# Labels (or ancestors) that say a photo holds readable text; only these photos pay for DetectText.
DEFAULT_TEXT_TRIGGER_LABELS = frozenset(
    {"text", "document", "page", "poster", "sign", "screenshot", "receipt", "menu", "book", "letter",
     "handwriting", "label", "paper"}
)
# Rekognition's label category for the labels above; check against the published label list when it changes.
DEFAULT_TEXT_TRIGGER_CATEGORIES = frozenset({"text and documents"})
# Labels that say a face may be present. IndexFaces on a photo without a face is still billed, so it waits for
# DetectLabels; the threshold is low because a missed face costs more (a person never found) than a wasted call.
DEFAULT_FACE_TRIGGER_LABELS = frozenset(
    {"person", "human", "people", "face", "head", "portrait", "selfie", "baby", "child", "kid", "man", "woman",
     "boy", "girl", "crowd", "adult"}
)

# Client-side TPS per API. Rekognition's default quotas differ per API and per region (50 TPS for these four in
# the largest regions, as low as 5 TPS elsewhere): read yours in Service Quotas and set them in settings.
DEFAULT_TPS_PER_API: dict[ApiCall, float] = {
    ApiCall.DETECT_LABELS: 50.0,
    ApiCall.INDEX_FACES: 50.0,
    ApiCall.DETECT_TEXT: 50.0,
    ApiCall.DETECT_MODERATION_LABELS: 50.0,
}


def _folded(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.casefold() for n in names)


@dataclass(frozen=True)
class AnalysisSettings:
    analysis_version: int = 1
    text_trigger_labels: frozenset[str] = DEFAULT_TEXT_TRIGGER_LABELS
    text_trigger_categories: frozenset[str] = DEFAULT_TEXT_TRIGGER_CATEGORIES
    text_trigger_min_confidence: float = 60.0
    face_trigger_labels: frozenset[str] | None = DEFAULT_FACE_TRIGGER_LABELS  # None: IndexFaces on every photo
    face_trigger_min_confidence: float = 50.0
    near_duplicate_max_distance: int = 4
    tps_per_api: Mapping[ApiCall, float] = field(default_factory=lambda: dict(DEFAULT_TPS_PER_API))
    workers: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_trigger_labels", _folded(self.text_trigger_labels))
        object.__setattr__(self, "text_trigger_categories", _folded(self.text_trigger_categories))
        if self.face_trigger_labels is not None:
            object.__setattr__(self, "face_trigger_labels", _folded(self.face_trigger_labels))
        if self.analysis_version < 1 or self.workers < 1 or not 0 <= self.near_duplicate_max_distance <= 64:
            raise ConfigurationError("analysis_version and workers must be >= 1, near-duplicate distance 0..64")


# ---- what needs analysis, and which calls --------------------------------------------------------------------


def needs_analysis(photo: PhotoRecord, current_version: int) -> bool:
    return photo.status is PhotoStatus.READY and photo.analysis_version < current_version


def _triggered(labels: Iterable[Label], names: frozenset[str], categories: frozenset[str], floor: float) -> bool:
    return any(
        label.confidence >= floor
        and (label.matches(names) or any(c.casefold() in categories for c in label.categories))
        for label in labels
    )


def plan_calls(
    photo: PhotoRecord,
    labels_known: Sequence[Label] | None,
    settings: AnalysisSettings,
    *,
    face_consent: bool,
    already_done: Collection[ApiCall] = (),
) -> list[ApiCall]:
    """The paid calls a photo still needs, in two phases.

    Phase 1 (labels_known is None): DetectLabels and DetectModerationLabels always. Phase 2 (labels known):
    DetectText when a label says the photo holds text, IndexFaces when the owner consented to face processing and
    a label says a person may be there (or, with face_trigger_labels None, IndexFaces in phase 1 for every photo of
    a consenting owner). Calls in already_done (a resumed run) are never planned again.
    """
    if photo.status is not PhotoStatus.READY:
        return []
    face_labels = settings.face_trigger_labels
    if labels_known is None:
        calls = [ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS]
        if face_consent and face_labels is None:
            calls.append(ApiCall.INDEX_FACES)
    else:
        calls = []
        text_floor = settings.text_trigger_min_confidence
        if _triggered(labels_known, settings.text_trigger_labels, settings.text_trigger_categories, text_floor):
            calls.append(ApiCall.DETECT_TEXT)
        face_floor = settings.face_trigger_min_confidence
        if face_consent and face_labels is not None and _triggered(labels_known, face_labels, frozenset(), face_floor):
            calls.append(ApiCall.INDEX_FACES)
    return [call for call in calls if call not in already_done]


# ---- duplicates: copy results instead of paying twice -------------------------------------------------------


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class _NearIndex:
    """Hashes within distance k share at least one of k+1 disjoint bit blocks (pigeonhole), so only photos that
    share a block are compared: near-linear instead of all pairs for an owner with 100k photos."""

    def __init__(self, max_distance: int) -> None:
        self.max_distance = max_distance
        blocks = max_distance + 1
        self._brute = blocks > 16
        widths = [64 // blocks + (1 if i < 64 % blocks else 0) for i in range(blocks)] if not self._brute else []
        self._spans = []
        shift = 64
        for width in widths:
            shift -= width
            self._spans.append((shift, (1 << width) - 1))
        self._tables: list[dict[int, list[tuple[int, str]]]] = [{} for _ in self._spans]
        self._all: list[tuple[int, str]] = []

    def add(self, phash: str, photo_id: str) -> None:
        value = int(phash, 16)
        self._all.append((value, photo_id))
        for table, (shift, mask) in zip(self._tables, self._spans):
            table.setdefault((value >> shift) & mask, []).append((value, photo_id))

    def nearest(self, phash: str) -> str | None:
        value = int(phash, 16)
        if self._brute:
            candidates: Iterable[tuple[int, str]] = self._all
        else:
            candidates = (
                entry
                for table, (shift, mask) in zip(self._tables, self._spans)
                for entry in table.get((value >> shift) & mask, ())
            )
        best: tuple[int, str] | None = None
        for other, photo_id in candidates:
            distance = (value ^ other).bit_count()
            if distance <= self.max_distance and (best is None or (distance, photo_id) < best):
                best = (distance, photo_id)
        return best[1] if best else None


def dedupe(photos: Iterable[PhotoRecord], *, current_version: int, max_distance: int = 4) -> dict[str, str]:
    """Maps each photo that needs analysis and duplicates another photo of the SAME owner to that photo.

    Sources are photos already analysed at current_version, or the earliest upload of a group of pending copies
    (the job analyses sources first, then copies). Exact copies (same sha256) win over near ones (phash Hamming
    distance <= max_distance); among near ones the closest, then the earliest. A source is never itself mapped, so
    there are no chains and no drift (A~B and B~C do not make C a copy of A).
    """
    by_owner: dict[str, list[PhotoRecord]] = {}
    for photo in photos:
        if photo.status is PhotoStatus.READY:
            by_owner.setdefault(photo.owner, []).append(photo)
    mapping: dict[str, str] = {}
    for owned in by_owner.values():
        analysed = sorted((p for p in owned if p.analysis_version >= current_version), key=lambda p: p.photo_id)
        pending = sorted((p for p in owned if needs_analysis(p, current_version)), key=lambda p: p.photo_id)
        exact: dict[str, str] = {}
        near = _NearIndex(max_distance)
        for photo in analysed + pending:
            is_pending = photo.analysis_version < current_version
            source = exact.get(photo.sha256) if photo.sha256 else None
            if source is None and photo.phash:
                source = near.nearest(photo.phash)
            if source is not None and is_pending:
                mapping[photo.photo_id] = source
                continue
            if photo.sha256:
                exact.setdefault(photo.sha256, photo.photo_id)
            if photo.phash:
                near.add(photo.phash, photo.photo_id)
    return mapping


# ---- rate limiting and retries -------------------------------------------------------------------------------


def split_tps(account_tps: float, workers: int) -> float:
    """Each worker's share of an account-wide quota (the quota counts every caller in the account and region)."""
    if account_tps <= 0 or workers < 1:
        raise ConfigurationError("account_tps must be positive and workers >= 1")
    return account_tps / workers


class TokenBucket:
    """Thread-safe token bucket. Each caller reserves its slot under the lock and then sleeps outside it, so
    waiting threads never wake together and spend the same token twice."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ConfigurationError("rate_per_s must be positive and burst >= 1")
        self.rate_per_s, self.burst = float(rate_per_s), float(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self, tokens: float = 1.0) -> float:
        """Takes the tokens now (possibly into debt) and returns how long the caller must wait before using them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
            self._last = now
            self._tokens -= tokens
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s

    def acquire(self, tokens: float = 1.0) -> float:
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass
class BackoffStats:
    """Accumulates over many calls (one per worker, merged into the run summary)."""

    calls: int = 0
    attempts: int = 0
    throttles: int = 0  # failures the retryable predicate accepted (throttling, time-outs)
    gave_up: int = 0
    slept_s: float = 0.0


@dataclass(frozen=True)
class BackoffResult(Generic[T]):
    value: T
    attempts: int
    throttles: int
    slept_s: float


def call_with_backoff(
    fn: Callable[[], T],
    *,
    retryable: Callable[[Exception], bool],
    max_attempts: int = 8,
    base: float = 0.2,
    cap: float = 10.0,
    rng: Callable[[], float] = random.random,
    sleep: Callable[[float], None] = time.sleep,
    stats: BackoffStats | None = None,
) -> BackoffResult[T]:
    """Calls fn until it succeeds, a non-retryable error occurs, or max_attempts is reached (the last error is
    raised). Waits use "full jitter": uniform in [0, min(cap, base * 2**attempt)), which spreads workers that were
    throttled together instead of retrying them in lockstep."""
    if max_attempts < 1:
        raise ConfigurationError("max_attempts must be >= 1")
    stats = stats if stats is not None else BackoffStats()
    stats.calls += 1
    throttles, slept = 0, 0.0
    for attempt in range(max_attempts):
        stats.attempts += 1
        try:
            value = fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            throttles += 1
            stats.throttles += 1
            if attempt + 1 >= max_attempts:
                stats.gave_up += 1
                raise
            delay = rng() * min(cap, base * 2**attempt)
            slept += delay
            stats.slept_s += delay
            sleep(delay)
        else:
            return BackoffResult(value=value, attempts=attempt + 1, throttles=throttles, slept_s=slept)
    raise AssertionError("unreachable")  # pragma: no cover


# ---- captions composed from what was detected ---------------------------------------------------------------

# Scene label -> (phrase after a subject, phrase when the scene is the subject). Only scenes whose wording is
# safe in any photo; a label not listed here never reaches a caption.
SCENE_PHRASES: dict[str, tuple[str, str]] = {
    "beach": ("on a beach", "A beach"),
    "mountain": ("in the mountains", "Mountains"),
    "forest": ("in a forest", "A forest"),
    "park": ("in a park", "A park"),
    "garden": ("in a garden", "A garden"),
    "snow": ("in the snow", "Snow"),
    "lake": ("by a lake", "A lake"),
    "sea": ("by the sea", "The sea"),
    "desert": ("in the desert", "A desert"),
    "city": ("in the city", "A city"),
    "restaurant": ("at a restaurant", "A restaurant"),
    "museum": ("at a museum", "A museum"),
    "concert": ("at a concert", "A concert"),
    "wedding": ("at a wedding", "A wedding"),
    "party": ("at a party", "A party"),
    "swimming pool": ("by a pool", "A swimming pool"),
}
# Subjects used only when no person was detected.
SUBJECT_NOUNS: dict[str, str] = {
    "dog": "A dog", "cat": "A cat", "bird": "A bird", "horse": "A horse", "food": "Food", "car": "A car",
    "flower": "Flowers", "boat": "A boat", "document": "A document", "screenshot": "A screenshot",
}


def _people_phrase(people_names: Sequence[str | None]) -> str:
    named = [n.strip() for n in people_names if n and n.strip()]
    unnamed = len(people_names) - len(named)
    names = list(dict.fromkeys(named))  # two faces given the same name are one person
    if not names:
        return "" if unnamed == 0 else ("A person" if unnamed == 1 else f"{unnamed} people")
    if unnamed == 0 and len(names) <= 3:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    shown = names[:2]
    others = len(names) - len(shown) + unnamed
    return ", ".join(shown) + f" and {others} other" + ("s" if others > 1 else "")


def _best(labels: Sequence[Label], table: Mapping[str, Any], min_confidence: float) -> Any:
    ranked = sorted((l for l in labels if l.confidence >= min_confidence), key=lambda l: (-l.confidence, l.name))
    for label in ranked:
        if label.name.casefold() in table:
            return table[label.name.casefold()]
    return None


def compose_caption(
    people_names: Sequence[str | None],
    labels: Sequence[Label],
    place: str | None,
    taken_at: datetime | date | None,
    *,
    min_confidence: float = 80.0,
) -> str:
    """"Ana and 2 others on a beach in Lagos, Portugal · July 2024", from detections only.

    people_names has one entry per detected face (None: a face not yet named). A part with nothing behind it is
    left out, never guessed: no faces and no known scene gives just the place and date, or "".
    """
    subject = _people_phrase(people_names)
    if not subject:
        subject = _best(labels, SUBJECT_NOUNS, min_confidence) or ""
    scene = _best(labels, SCENE_PHRASES, min_confidence)
    place = (place or "").strip()
    parts = []
    if subject:
        parts.append(subject + (f" {scene[0]}" if scene else ""))
    elif scene:
        parts.append(scene[1])
    if place:
        parts.append(f"in {place}" if parts else place)
    text = " ".join(parts)
    when = f"{taken_at:%B %Y}" if taken_at else ""
    return " · ".join(p for p in (text, when) if p)


# ---- cost ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceTable:
    per_image_usd: Mapping[ApiCall, float]
    face_storage_usd_per_face_month: float
    noted_on: date
    source: str


# Tier 1 (first 1M images a month) image prices in USD, us-east-1. The figures were copied from the project brief,
# which quotes https://aws.amazon.com/rekognition/pricing/ ; they were NOT re-read from that page on noted_on (no
# live web here) and tiers, regions and prices change: check them before quoting a number to anyone.
REKOGNITION_TIER1_PRICES = PriceTable(
    per_image_usd={
        ApiCall.DETECT_LABELS: 0.001,
        ApiCall.INDEX_FACES: 0.001,
        ApiCall.DETECT_TEXT: 0.001,
        ApiCall.DETECT_MODERATION_LABELS: 0.001,
    },
    face_storage_usd_per_face_month=0.00001,
    noted_on=date(2026, 11, 25),
    source="project brief quoting https://aws.amazon.com/rekognition/pricing/ (tier 1); unverified",
)


def estimate_cost(
    calls_per_api: Mapping[ApiCall, int], price_table: PriceTable = REKOGNITION_TIER1_PRICES, *, face_months: float = 0
) -> float:
    """Dollars for the calls (at tier-1 prices: an upper bound past 1M images a month) plus face-months stored."""
    total = 0.0
    for api, count in calls_per_api.items():
        if count and api not in price_table.per_image_usd:
            raise ConfigurationError(f"no price for {api}")
        total += count * price_table.per_image_usd.get(api, 0.0)
    return round(total + face_months * price_table.face_storage_usd_per_face_month, 6)


# ---- run summary ---------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    run_id: str
    photos: int = 0  # photos that needed analysis this run
    copied: int = 0  # of which (near) duplicates whose results were copied
    calls: dict[ApiCall, int] = field(default_factory=dict)
    throttles: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # reason code -> photos left for the next run
    estimated_cost_usd: float = 0.0

    def record_call(self, api: ApiCall, count: int = 1) -> None:
        self.calls[api] = self.calls.get(api, 0) + count

    def record_failure(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def merge(self, other: RunSummary) -> RunSummary:
        """Partitions summarise their own photos; the driver adds them up."""
        merged = RunSummary(self.run_id, self.photos + other.photos, self.copied + other.copied)
        for api, count in [*self.calls.items(), *other.calls.items()]:
            merged.record_call(api, count)
        for reason, count in [*self.failures.items(), *other.failures.items()]:
            merged.failures[reason] = merged.failures.get(reason, 0) + count
        merged.throttles = self.throttles + other.throttles
        merged.estimated_cost_usd = round(self.estimated_cost_usd + other.estimated_cost_usd, 6)
        return merged

    def to_json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "photos": self.photos,
                "copied": self.copied,
                "calls": {api.value: self.calls[api] for api in sorted(self.calls)},
                "throttles": self.throttles,
                "failures": dict(sorted(self.failures.items())),
                "failed_photos": sum(self.failures.values()),
                "estimated_cost_usd": self.estimated_cost_usd,
            },
            sort_keys=True,
        )

    def metric_data(self, *, timestamp: datetime | None = None) -> list[dict[str, Any]]:
        """The MetricData list of CloudWatch PutMetricData (the caller adds Namespace and batches by 1000)."""

        def datum(name: str, value: float, unit: str, **dimensions: str) -> dict[str, Any]:
            item: dict[str, Any] = {"MetricName": name, "Value": float(value), "Unit": unit}
            if dimensions:
                item["Dimensions"] = [{"Name": k, "Value": v} for k, v in dimensions.items()]
            if timestamp is not None:
                item["Timestamp"] = timestamp
            return item

        data = [
            datum("PhotosAnalysed", self.photos, "Count"),
            datum("PhotosCopied", self.copied, "Count"),
            datum("Throttles", self.throttles, "Count"),
            datum("FailedPhotos", sum(self.failures.values()), "Count"),
            datum("EstimatedCostUSD", self.estimated_cost_usd, "None"),
        ]
        data += [datum("ApiCalls", self.calls[api], "Count", Api=api.value) for api in sorted(self.calls)]
        data += [datum("FailedPhotos", n, "Count", Reason=r) for r, n in sorted(self.failures.items())]
        return data

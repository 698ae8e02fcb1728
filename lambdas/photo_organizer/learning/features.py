"""One photo's analysis features as a fixed-length vector, laid out by a schema stored with the model.

The schema is built from an owner's training photos (their label vocabulary, people and places) and saved inside
the model's JSON, so inference months later lays out a new photo's vector exactly as training did: a label, person
or place the schema does not know adds nothing, and a photo without an image embedding (analysed before the
embedding existed, or the model was trained without one) gets zeros there and a 0 in the `has_embedding` slot.

Layout: [image embedding (L2-normalised) + has_embedding] [label confidences 0..1 over the vocabulary]
[hashed OCR tokens] [people one-hot] [place one-hot + has_place] [time: has_time, hour and month on the circle,
weekend].
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from photo_organizer.learning.datasets import IMAGE_EMBEDDING_DIMENSIONS, PhotoFeatures

SCHEMA_VERSION = 1
OCR_BUCKETS = 64
MAX_LABELS = 300
MAX_PEOPLE = 50
MAX_PLACES = 30
TIME_FEATURES = ("has_time", "hour_sin", "hour_cos", "month_sin", "month_cos", "weekend")


@dataclass(frozen=True)
class FeatureSchema:
    embedding_dimensions: int  # 0: the vector has no embedding part (no training photo had one)
    labels: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    ocr_buckets: int = OCR_BUCKETS
    version: int = SCHEMA_VERSION
    _offsets: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_offsets", _offsets(self))

    @property
    def dimensions(self) -> int:
        return self._offsets["end"]

    def names(self) -> list[str]:
        """One name per vector slot (for inspecting a model's weights)."""
        out = [f"embedding[{i}]" for i in range(self.embedding_dimensions)]
        out += ["has_embedding"] if self.embedding_dimensions else []
        out += [f"label:{name}" for name in self.labels]
        out += [f"ocr[{i}]" for i in range(self.ocr_buckets)]
        out += [f"person:{name}" for name in self.people]
        out += [f"place:{name}" for name in self.places] + ["has_place"]
        return out + [f"time:{name}" for name in TIME_FEATURES]

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "embedding_dimensions": self.embedding_dimensions,
            "labels": list(self.labels),
            "people": list(self.people),
            "places": list(self.places),
            "ocr_buckets": self.ocr_buckets,
        }

    @classmethod
    def from_json(cls, body: Mapping) -> FeatureSchema:
        version = int(body.get("version", SCHEMA_VERSION))
        if version != SCHEMA_VERSION:
            raise ValueError(f"feature schema version {version} is not supported (this code reads {SCHEMA_VERSION})")
        return cls(
            embedding_dimensions=int(body["embedding_dimensions"]),
            labels=tuple(body.get("labels", ())),
            people=tuple(body.get("people", ())),
            places=tuple(body.get("places", ())),
            ocr_buckets=int(body.get("ocr_buckets", OCR_BUCKETS)),
        )


def _offsets(schema: FeatureSchema) -> dict[str, int]:
    offsets, at = {}, 0
    for part, size in (
        ("embedding", schema.embedding_dimensions + (1 if schema.embedding_dimensions else 0)),
        ("labels", len(schema.labels)),
        ("ocr", schema.ocr_buckets),
        ("people", len(schema.people)),
        ("places", len(schema.places) + 1),
        ("time", len(TIME_FEATURES)),
    ):
        offsets[part] = at
        at += size
    offsets["end"] = at
    return offsets


def place_key(place: Mapping[str, str] | None) -> str | None:
    if not place:
        return None
    city = (place.get("city") or "").strip().casefold()
    country = (place.get("country_code") or "").strip().casefold()
    return f"{country}/{city}" if (city or country) else None


def build_schema(photos: Iterable[PhotoFeatures], *, use_embedding: bool | None = None) -> FeatureSchema:
    """The schema of an owner's training photos: the most frequent labels, people and places (capped).

    use_embedding=None: an embedding part when any photo has an embedding."""
    labels: Counter[str] = Counter()
    people: Counter[str] = Counter()
    places: Counter[str] = Counter()
    any_embedding = False
    for photo in photos:
        labels.update(name.casefold() for name in photo.labels)
        people.update(set(photo.people))
        key = place_key(photo.place)
        if key:
            places[key] += 1
        any_embedding = any_embedding or bool(photo.embedding)
    embed = any_embedding if use_embedding is None else use_embedding

    def top(counter: Counter[str], limit: int) -> tuple[str, ...]:
        return tuple(sorted(name for name, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]))

    return FeatureSchema(
        embedding_dimensions=IMAGE_EMBEDDING_DIMENSIONS if embed else 0,
        labels=top(labels, MAX_LABELS),
        people=top(people, MAX_PEOPLE),
        places=top(places, MAX_PLACES),
    )


def ocr_bucket(token: str, buckets: int = OCR_BUCKETS) -> int:
    """A stable bucket for a word (crc32: the same in every process, unlike hash())."""
    return zlib.crc32(token.casefold().encode("utf-8")) % buckets


def parse_time(text: str | None) -> datetime | None:
    """ISO-8601 as the exporters write it; Python 3.10's fromisoformat does not take a trailing Z."""
    if not text:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def photo_vector(photo: PhotoFeatures, schema: FeatureSchema) -> np.ndarray:
    vector = np.zeros(schema.dimensions, dtype=np.float64)
    offsets = schema._offsets
    if schema.embedding_dimensions:
        embedding = photo.embedding_vector()
        if embedding is not None and embedding.size == schema.embedding_dimensions and np.all(np.isfinite(embedding)):
            norm = float(np.linalg.norm(embedding))
            if norm > 0:
                at = offsets["embedding"]
                vector[at : at + schema.embedding_dimensions] = embedding / norm
                vector[at + schema.embedding_dimensions] = 1.0
    if schema.labels:
        index = {name: i for i, name in enumerate(schema.labels)}
        for name, confidence in photo.labels.items():
            i = index.get(name.casefold())
            if i is not None:
                vector[offsets["labels"] + i] = max(0.0, min(1.0, float(confidence) / 100.0))
    tokens = {token.casefold() for token in photo.ocr_tokens if token}
    if tokens and schema.ocr_buckets:
        buckets = {ocr_bucket(token, schema.ocr_buckets) for token in tokens}
        for bucket in buckets:
            vector[offsets["ocr"] + bucket] = 1.0 / math.sqrt(len(buckets))
    if schema.people:
        index = {name: i for i, name in enumerate(schema.people)}
        for person in photo.people:
            i = index.get(person)
            if i is not None:
                vector[offsets["people"] + i] = 1.0
    key = place_key(photo.place)
    if key is not None:
        vector[offsets["places"] + len(schema.places)] = 1.0
        if key in schema.places:
            vector[offsets["places"] + schema.places.index(key)] = 1.0
    when = parse_time(photo.taken_at)
    if when is not None:
        at = offsets["time"]
        hour = when.hour + when.minute / 60.0
        vector[at : at + len(TIME_FEATURES)] = (
            1.0,
            math.sin(2 * math.pi * hour / 24),
            math.cos(2 * math.pi * hour / 24),
            math.sin(2 * math.pi * (when.month - 1) / 12),
            math.cos(2 * math.pi * (when.month - 1) / 12),
            1.0 if when.weekday() >= 5 else 0.0,
        )
    return vector


def photo_matrix(photos: Sequence[PhotoFeatures], schema: FeatureSchema) -> np.ndarray:
    if not photos:
        return np.zeros((0, schema.dimensions), dtype=np.float64)
    return np.vstack([photo_vector(photo, schema) for photo in photos])

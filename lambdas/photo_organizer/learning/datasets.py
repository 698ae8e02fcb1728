"""The training inputs as JSON Lines, written by both backends' exporters and read by the training scripts.

Layout under a dataset root (a directory, or an S3 prefix copied into a SageMaker channel):
- `feedback/date=YYYY-MM-DD/*.jsonl` and `feedback/owner=<owner>/date=YYYY-MM-DD/*.jsonl`: the feedback events
  (photo_organizer.feedback.dataset writes them; read here as plain dicts, since pydantic is not in the training
  container).
- `features/photos.jsonl`, `features/faces.jsonl`, `features/pairs.jsonl`: a snapshot of what analysis knows
  about the library at export time (the cloud's export step, the local retrain), one line per photo / face /
  face pair. A snapshot holds only photos that exist and faces of owners who consent: a deleted photo's
  feedback finds no features and drops out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FEATURES_SCHEMA = 1
IMAGE_EMBEDDING_DIMENSIONS = 1280  # EfficientNet-Lite0's pooled penultimate layer
FACE_DESCRIPTOR_DIMENSIONS = 128  # dlib's face descriptor (local backend only)
PHOTOS_FILE = "features/photos.jsonl"
FACES_FILE = "features/faces.jsonl"
PAIRS_FILE = "features/pairs.jsonl"


def encode_vector(vector: np.ndarray | None, dtype: str) -> str | None:
    """Little-endian `dtype` ("float16" for image embeddings, "float32" for face descriptors), base64."""
    if vector is None:
        return None
    return base64.b64encode(np.asarray(vector, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode("ascii")


def decode_vector(text: str | None, dtype: str) -> np.ndarray | None:
    if not text:
        return None
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<")).astype(np.float32)


@dataclass
class PhotoFeatures:
    owner: str
    photo_id: str
    analysed_at: str  # ISO-8601
    embedding: str | None = None  # encode_vector(1280 floats, "float16")
    labels: dict[str, float] = field(default_factory=dict)  # case-folded label and parent names -> best 0..100
    ocr_tokens: list[str] = field(default_factory=list)  # lower-case words read in the photo, at most 200
    people: list[str] = field(default_factory=list)  # person ids of the faces in the photo
    place: dict[str, str] | None = None  # {"city": ..., "country_code": ...}
    taken_at: str | None = None  # local capture time, ISO-8601
    tags: list[str] = field(default_factory=list)  # the photo's effective tags at export (after feedback)
    # The photo's content digest (sha256 of the original) when known: the cross-fitting fold follows the content, so
    # the same photographs split the same way in every library and every run (photo ids are random).
    split_key: str | None = None

    def embedding_vector(self) -> np.ndarray | None:
        return decode_vector(self.embedding, "float16")


@dataclass
class FaceFeatures:
    owner: str
    face_id: str
    photo_id: str
    person_id: str | None = None  # the person the face is in now
    quality: float = 0.5  # 0..1
    box_area: float = 0.0  # ratio of the preview
    descriptor: str | None = None  # encode_vector(128 floats, "float32"); local backend only

    def descriptor_vector(self) -> np.ndarray | None:
        return decode_vector(self.descriptor, "float32")


@dataclass
class FacePair:
    """A similarity the backend measured (Rekognition SearchFaces in the cloud; locally the exporter may leave
    pairs out, since descriptors give every pair). 0..1, on people.models' common scale."""

    owner: str
    a: str
    b: str
    similarity: float


def to_line(row: PhotoFeatures | FaceFeatures | FacePair) -> str:
    return json.dumps({"schema": FEATURES_SCHEMA, **asdict(row)}, ensure_ascii=False, separators=(",", ":"))


def _rows(path: Path, cls):
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as f:
        for text in f:
            if text.strip():
                body = json.loads(text)
                body.pop("schema", None)
                yield cls(**body)


def read_photos(root: Path) -> Iterator[PhotoFeatures]:
    return _rows(root / PHOTOS_FILE, PhotoFeatures)


def read_faces(root: Path) -> Iterator[FaceFeatures]:
    return _rows(root / FACES_FILE, FaceFeatures)


def read_pairs(root: Path) -> Iterator[FacePair]:
    return _rows(root / PAIRS_FILE, FacePair)


def read_feedback(root: Path) -> list[dict]:
    """Every feedback line under root/feedback, once per feedback id, oldest first."""
    seen: dict[str, dict] = {}
    folder = root / "feedback"
    for path in sorted([*folder.glob("date=*/*.jsonl"), *folder.glob("owner=*/date=*/*.jsonl")]):
        with path.open(encoding="utf-8") as f:
            for text in f:
                if text.strip():
                    body = json.loads(text)
                    seen.setdefault(body["feedback_id"], body)
    return sorted(seen.values(), key=lambda b: (b["created_at"], b["feedback_id"]))


def write_lines(path: Path, rows: Iterable[PhotoFeatures | FaceFeatures | FacePair]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(to_line(row) + "\n")
            count += 1
    return count

"""A feedback set built from the real sample photos, for the learning tests (and anyone measuring the learning).

The sample photos are few (samples/: 12 distinct photographs, the same files as the shared photo folder), so each
is augmented into several photos (crops, flips, colour jitter, blur, down-scaling, recompression) and every
variant goes through the real local analyzer (EfficientNet-Lite0 labels, dlib faces and descriptors). What a
simulated user says about them is generated from a per-photograph truth: custom tags on a consistent subset
("school trip" on the space photographs, "grandma's house" on the coffee ones), rejections of the analysis tags
that are wrong for that photograph, confirmations of some right ones, and face assignments by who is in the
photograph.

Stand-in image embedding: the label model exported to ONNX has only its 1000 logits as output until the
re-export with the penultimate `embedding` output lands; until then the embedding is a fixed random projection
of the log-softmax of those logits to the embedding's 1280 dimensions (same information as the logits, the
right shape and scale). Variants of one photograph land in different cross-fitting folds (the folds are by photo
content, as the product's are): near-duplicates make the out-of-fold task easier than real life, for the trained
model and the baseline alike.
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from photo_organizer.learning.datasets import (
    IMAGE_EMBEDDING_DIMENSIONS,
    FaceFeatures,
    PhotoFeatures,
    encode_vector,
    write_lines,
)

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
LABEL_MODEL = ROOT / "build" / "models" / "efficientnet_lite0.onnx"
SAGEMAKER_DIR = ROOT / "sagemaker"
OWNER = "owner-a"
TINY_OWNER = "owner-tiny"
HARD_EVERY = 100  # every variant of a photograph of a person is hard but the original

# photograph -> (who is in it, the tags a user would add, the analysis tags a user would reject as wrong)
PHOTOGRAPHS: dict[str, dict] = {
    "astronaut.png": {"person": "astronaut", "custom": ["school trip"]},
    "rocket.jpg": {"person": None, "custom": ["school trip"]},
    "coffee.png": {"person": None, "custom": ["grandma's house"]},
    "coffee_exif_gps.jpg": {"person": None, "custom": ["grandma's house"]},
    "coffee_with_text.jpg": {"person": None, "custom": ["grandma's house"]},
    "chelsea.png": {"person": None, "custom": ["grandma's house"]},
    "obama.jpg": {"person": "obama", "custom": []},
    "obama2.jpg": {"person": "obama", "custom": []},
    "obama3.jpg": {"person": "obama", "custom": []},
    "obama_partial_face.jpg": {"person": "obama", "custom": []},
    "biden.jpg": {"person": "biden", "custom": []},
    "text.png": {"person": None, "custom": []},
}
# The analysis tags that are right for each photograph; every other analysis tag on its variants is wrong and
# the simulated user rejects it (what the local analysis says on these photos: animal/mammal on text, on a
# blurred Biden or the astronaut, hat on Biden).
_COFFEE = {"coffee", "cup", "beverage", "food and drink", "tableware"}
_SUIT = {"person", "clothing", "formal wear", "suit", "accessories", "tie"}
RIGHT_TAGS: dict[str, set[str]] = {
    "astronaut.png": {"person"},
    "rocket.jpg": {"rocket", "vehicle", "transportation"},
    "coffee.png": _COFFEE,
    "coffee_exif_gps.jpg": _COFFEE,
    "coffee_with_text.jpg": _COFFEE,
    "chelsea.png": {"cat", "pet", "mammal", "animal"},
    "obama.jpg": _SUIT,
    "obama2.jpg": _SUIT,
    "obama3.jpg": _SUIT,
    "obama_partial_face.jpg": _SUIT,
    "biden.jpg": _SUIT,
    "text.png": set(),
}
# What a user adds when analysis missed it (ImageNet has no person or text class; the local analysis without
# faces or OCR cannot say so)
CORE_TAGS: dict[str, str] = {
    "astronaut.png": "person", "rocket.jpg": "rocket", "coffee.png": "coffee", "coffee_exif_gps.jpg": "coffee",
    "coffee_with_text.jpg": "coffee", "chelsea.png": "cat", "obama.jpg": "person", "obama2.jpg": "person",
    "obama3.jpg": "person", "obama_partial_face.jpg": "person", "biden.jpg": "person", "text.png": "text",
}


def training_core():
    """sagemaker/training_core.py, imported the way the benchmark does (the folder on sys.path)."""
    import sys

    if str(SAGEMAKER_DIR) not in sys.path:
        sys.path.insert(0, str(SAGEMAKER_DIR))
    import training_core as core

    return core


@dataclass
class AnalysedPhoto:
    source: str
    photo_id: str
    labels: dict[str, float]
    logits: np.ndarray
    faces: list[tuple[np.ndarray, float, float]] = field(default_factory=list)  # (descriptor, quality, area)


def augment(image: Image.Image, rng: np.random.Generator, *, hard: bool = False) -> bytes:
    """One plausible other shot of the photograph: crop, flip, colour, blur, size and JPEG quality vary. hard:
    a small, soft, heavily compressed copy (a face far away in a phone photo), where dlib's descriptors drift."""
    if hard:
        shrink = rng.uniform(0.15, 0.5)
        out = image.resize((int(image.width * shrink), int(image.height * shrink)), Image.Resampling.BILINEAR)
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.5)))
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.5, 1.5))
        buffer = io.BytesIO()
        out.save(buffer, format="JPEG", quality=int(rng.integers(8, 40)))
        return buffer.getvalue()
    width, height = image.size
    scale = rng.uniform(0.75, 1.0)
    w, h = int(width * scale), int(height * scale)
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    out = image.crop((left, top, left + w, top + h))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.6, 1.4))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.6, 1.4))
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.3, 1.5))
    if rng.random() < 0.4:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
    shrink = rng.uniform(0.35, 1.0)
    out = out.resize((max(64, int(out.width * shrink)), max(64, int(out.height * shrink))), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    out.save(buffer, format="JPEG", quality=int(rng.integers(20, 95)))
    return buffer.getvalue()


def stand_in_embedding(logits: np.ndarray) -> np.ndarray:
    """1280 floats from the 1000 logits (see the module docstring): fixed projection, non-negative like a ReLU6."""
    z = np.asarray(logits, dtype=np.float64)
    log_softmax = z - z.max() - np.log(np.exp(z - z.max()).sum())
    projection = np.random.default_rng(1280).standard_normal((IMAGE_EMBEDDING_DIMENSIONS, z.size)) / np.sqrt(z.size)
    centred = (log_softmax - log_softmax.mean()) / (log_softmax.std() + 1e-9)
    return np.clip(projection @ centred, 0.0, 6.0).astype(np.float32)


def analyse_photographs(variants: int = 7, people_variants: int = 14, seed: int = 10) -> list[AnalysedPhoto]:
    """Every photograph and augmentations of it through the local analyzer (~0.1-0.3 s a photo): `variants` of
    each, `people_variants` of a photograph of a person (two thirds of them hard: small, soft, compressed faces,
    where the fixed threshold loses same-person pairs). Faces are only looked for on photographs of people
    (the planner's choice, as in the product: no face call where the labels show none)."""
    from photo_organizer.adapters.local.analyzer import LocalAnalyzer
    from photo_organizer.adapters.local.labels import OnnxLabeler
    from photo_organizer.analysis.models import AnalysisPlan, ApiCall
    from photo_organizer.imaging import derive

    analyzer = LocalAnalyzer(label_model=LABEL_MODEL, ocr=False, moderation=False)
    labeler = OnnxLabeler(LABEL_MODEL)
    out: list[AnalysedPhoto] = []
    for source in PHOTOGRAPHS:
        rng = np.random.default_rng([seed, zlib.crc32(source.encode())])  # one stream per photograph
        original = (SAMPLES / source).read_bytes()
        with Image.open(io.BytesIO(original)) as image:
            rgb = image.convert("RGB")
        person = PHOTOGRAPHS[source]["person"] is not None
        count = people_variants if person else variants
        shots = [original] + [augment(rgb, rng, hard=person and k % HARD_EVERY != 0) for k in range(count)]
        calls = {ApiCall.DETECT_LABELS} | ({ApiCall.INDEX_FACES} if person else set())
        for index, shot in enumerate(shots):
            photo_id = f"{Path(source).stem}-v{index}"
            preview = derive(shot).preview_jpeg
            plan = AnalysisPlan(
                owner="o", photo_id=photo_id, analysis_version=1,
                calls=frozenset(calls),
            )
            result = analyzer.analyze(preview, plan)
            labels: dict[str, float] = {}
            for label in result.labels:
                for name in (label.name, *label.parents):
                    labels[name.casefold()] = max(labels.get(name.casefold(), 0.0), label.confidence)
            faces = [
                (
                    np.frombuffer(face.descriptor, dtype="<f4").copy(),
                    (face.quality.sharpness or 50.0) / 100.0,
                    face.box.width * face.box.height,
                )
                for face in result.faces
                if face.descriptor
            ]
            out.append(AnalysedPhoto(source, photo_id, labels, labeler.logits(preview), faces))
    return out


@dataclass
class FeedbackSet:
    photos: list[PhotoFeatures]
    faces: list[FaceFeatures]
    feedback: list[dict]


def _event(owner: str, number: int, kind: str, start: datetime, **fields) -> dict:
    created = start + timedelta(seconds=number)
    body = {
        "schema": 1,
        "feedback_id": f"{number:032x}",
        "owner": owner,
        "type": kind,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "origin": "photo",
    }
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def feedback_set(
    analysed: list[AnalysedPhoto],
    owner: str = "owner-a",
    *,
    review_share: float = 1.0,
    seed: int = 3,
    with_embedding: bool = True,
) -> FeedbackSet:
    """The snapshot rows and the generated corrections of one owner (a share of the photos reviewed)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    photos, faces, events = [], [], []
    person_ids = {name: f"person-{name}" for name in ("astronaut", "obama", "biden")}
    number = 0
    for index, photo in enumerate(analysed):
        truth = PHOTOGRAPHS[photo.source]
        taken = start - timedelta(days=30 * (zlib.crc32(photo.source.encode()) % 5), hours=index % 7)
        reviewed = rng.random() < review_share
        effective = set(photo.labels)
        if reviewed:
            for tag in sorted(photo.labels):
                number += 1
                if tag not in RIGHT_TAGS[photo.source]:
                    events.append(_event(owner, number, "tag_rejected", start, photo_id=photo.photo_id, tag=tag))
                    effective.discard(tag)
                elif rng.random() < 0.5:
                    events.append(_event(owner, number, "tag_confirmed", start, photo_id=photo.photo_id, tag=tag))
            missing = [CORE_TAGS[photo.source]] if CORE_TAGS[photo.source] not in photo.labels else []
            for tag in [*missing, *truth["custom"]]:
                number += 1
                events.append(_event(owner, number, "tag_added", start, photo_id=photo.photo_id, tag=tag))
                effective.add(tag)
        person = truth["person"]
        for face_index, (descriptor, quality, area) in enumerate(photo.faces):
            face_id = f"{photo.photo_id}-f{face_index}"
            # only the photograph's one subject is assigned; a second detection (a patch, a background face) not
            assigned = person is not None and face_index == 0
            faces.append(
                FaceFeatures(
                    owner=owner,
                    face_id=face_id,
                    photo_id=photo.photo_id,
                    person_id=person_ids[person] if assigned else None,
                    quality=round(float(quality), 4),
                    box_area=round(float(area), 5),
                    descriptor=encode_vector(descriptor, "float32"),
                )
            )
            if assigned and reviewed:
                number += 1
                events.append(
                    _event(owner, number, "face_assigned", start, face_id=face_id, person_id=person_ids[person])
                )
        photos.append(
            PhotoFeatures(
                owner=owner,
                photo_id=photo.photo_id,
                analysed_at=start.isoformat(),
                embedding=encode_vector(stand_in_embedding(photo.logits), "float16") if with_embedding else None,
                labels={k: round(v, 2) for k, v in photo.labels.items()},
                ocr_tokens=["coffee", "shop"] if photo.source == "coffee_with_text.jpg" else [],
                people=[person_ids[truth["person"]]] if truth["person"] and photo.faces else [],
                place={"city": "Paris", "country_code": "FR"} if "coffee" in photo.source else None,
                taken_at=taken.replace(tzinfo=None).isoformat(),
                tags=sorted(effective),
            )
        )
    return FeedbackSet(photos, faces, events)


def write_dataset(root: Path, sets: list[FeedbackSet]) -> Path:
    """A dataset root as the exporters write it: feedback/date=.../*.jsonl and features/*.jsonl."""
    write_lines(root / "features" / "photos.jsonl", [p for s in sets for p in s.photos])
    write_lines(root / "features" / "faces.jsonl", [f for s in sets for f in s.faces])
    by_day: dict[str, list[dict]] = {}
    for s in sets:
        for event in s.feedback:
            by_day.setdefault(event["created_at"][:10], []).append(event)
    for day, events in by_day.items():
        part = root / "feedback" / f"date={day}" / "events.jsonl"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events), encoding="utf-8")
    return root


def cache_key() -> str:
    """What the analysed photos depend on: this builder, the local analyzer's code, the photos, the label model."""
    import hashlib

    digest = hashlib.sha256(Path(__file__).read_bytes())
    local = ROOT / "lambdas" / "photo_organizer" / "adapters" / "local"
    for name in ("analyzer.py", "faces.py", "labels.py", "vocabulary.py", "preview_pixels.py"):
        digest.update((local / name).read_bytes())
    for name in sorted(PHOTOGRAPHS):
        digest.update((SAMPLES / name).read_bytes())
    digest.update(LABEL_MODEL.read_bytes() if LABEL_MODEL.is_file() else b"")
    return digest.hexdigest()[:24]


def save_analysed(path: Path, photos: list[AnalysedPhoto]) -> None:
    rows = [
        {"source": p.source, "photo_id": p.photo_id, "labels": p.labels, "logits": p.logits.tolist(),
         "faces": [[d.tolist(), q, a] for d, q, a in p.faces]}
        for p in photos
    ]
    import os

    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # parallel sessions never share a temp file
    temp.write_text(json.dumps(rows), encoding="utf-8")
    temp.replace(path)


def load_analysed(path: Path) -> list[AnalysedPhoto]:
    return [
        AnalysedPhoto(r["source"], r["photo_id"], r["labels"], np.asarray(r["logits"], dtype=np.float64),
                      [(np.asarray(d, dtype=np.float32), q, a) for d, q, a in r["faces"]])
        for r in json.loads(path.read_text(encoding="utf-8"))
    ]

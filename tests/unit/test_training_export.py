"""The feature snapshot from the ports (services.training_export) on the local stores: effective tags after
feedback and suppression, labels with parents, OCR tokens, people, embeddings, faces and pairs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.adapters.local.sqlite_analysis import SqliteAnalysisStore
from photo_organizer.adapters.local.sqlite_features import SqliteFeatureStore, SqliteSuggestionStore
from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, BoundingBox, Label, TextLine
from photo_organizer.analysis.store import PhotoAnalysis, StoredPlace
from photo_organizer.feedback.models import TagOverlay, TagSuggestion
from photo_organizer.learning.datasets import read_faces, read_pairs, read_photos
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.store import StoredFace
from photo_organizer.services.training_export import TrainingExport

OWNER = "ana"


class Overlays:
    """The FeedbackStore's overlays() alone (the only call the export makes)."""

    def __init__(self, overlays: dict[str, TagOverlay]) -> None:
        self._overlays = overlays

    def overlays(self, owner: str) -> dict[str, TagOverlay]:
        return dict(self._overlays) if owner == OWNER else {}


def add_photo(photos, owner: str, photo_id: str) -> None:
    now = utcnow()
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{photo_id}.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    photos.create_photo(pending, pending_ttl=timedelta(days=1))
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=64, height=48, byte_size=10,
                             sha256=(owner + photo_id).encode().hex().ljust(64, "0")[:64], phash="0" * 16)
    photos.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata,
                                                   "original_version": "v1"}),
                        expected_status=PhotoStatus.PENDING_UPLOAD)


def analysed(owner: str, photo_id: str, labels: list[Label], text: tuple[str, ...] = ()) -> PhotoAnalysis:
    result = AnalysisResult(photo_id=photo_id, analysis_version=1, labels=tuple(labels),
                            text_lines=tuple(TextLine(text=t, confidence=90) for t in text),
                            analysed_at=datetime(2026, 5, 1, tzinfo=timezone.utc), source=AnalysisSource.LOCAL)
    return PhotoAnalysis(owner=owner, result=result, caption="c",
                         place=StoredPlace(city="Lagos", country_code="PT", country="Portugal", lat=37.1, lon=-8.7),
                         local_taken_at=datetime(2026, 4, 30, 18, 5))


@pytest.fixture
def library(tmp_path: Path):
    db = tmp_path / "lib.sqlite3"
    stores = SqliteMetadataStore(db), SqliteAnalysisStore(db), SqlitePeopleStore(db, default_consent=True)
    photos, analysis, people = stores
    features, suggestions = SqliteFeatureStore(db), SqliteSuggestionStore(db)
    for photo_id in ("p1", "p2", "p3"):
        add_photo(photos, OWNER, photo_id)
    add_photo(photos, "bo", "p9")
    analysis.save(analysed(OWNER, "p1", [Label(name="Dog", confidence=80, parents=("Pet", "Animal")),
                                         Label(name="Cat", confidence=40.5, parents=("Pet", "Animal"))]))
    analysis.save(analysed(OWNER, "p2", [Label(name="Beach", confidence=70)], text=("Café do Mar", "CAFÉ 2 go")))
    analysis.save(analysed("bo", "p9", [Label(name="Boat", confidence=90)]))
    # p3 is not analysed: no row
    rng = np.random.default_rng(0)
    features.save_image_embedding(OWNER, "p1", rng.normal(size=1280).astype(np.float32))
    suggestions.replace_suggestions(OWNER, "p2", [TagSuggestion(tag="beach", confidence=0.05, on_photo=True)])
    descriptors = {"p1-f0": np.zeros(128), "p1-f1": np.full(128, 0.01), "p2-f0": np.full(128, 0.2)}
    people.save_faces([
        StoredFace(face_id=face_id, owner=OWNER, photo_id=face_id[:2], quality=0.75, created_at=utcnow(),
                   box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.5),
                   descriptor=StoredFace.pack_descriptor(vector))
        for face_id, vector in descriptors.items()
    ])
    people.replace_people(OWNER, [Person(person_id="grandma", owner=OWNER, name="Grandma",
                                         face_ids=frozenset({"p1-f0", "p1-f1"}))])
    overlay = TagOverlay(rejected=frozenset({"dog"}), added=frozenset({"grandma's house"}))
    export = TrainingExport(photos=photos, analysis=analysis, people=people, feedback=Overlays({"p1": overlay}),
                            features=features, suggestions=suggestions)
    return export


def test_snapshot_rows_carry_effective_tags_labels_text_people_and_embedding(library, tmp_path) -> None:
    counts = library.write(tmp_path / "dataset", [OWNER, "bo"])
    assert (counts.photos, counts.faces, counts.embeddings) == (3, 3, 1)
    rows = {(r.owner, r.photo_id): r for r in read_photos(tmp_path / "dataset")}
    assert set(rows) == {(OWNER, "p1"), (OWNER, "p2"), ("bo", "p9")}, "an unanalysed photo has no row"
    p1, p2 = rows[(OWNER, "p1")], rows[(OWNER, "p2")]
    # rejected dog leaves; the cat keeps pet/animal; the user's own tag is on
    assert p1.tags == ["animal", "cat", "grandma's house", "pet"]
    assert p1.labels == {"animal": 80.0, "cat": 40.5, "dog": 80.0, "pet": 80.0}, "labels as analysed, best per name"
    assert p1.people == ["grandma"]
    assert p1.embedding_vector().shape == (1280,)
    assert p1.place == {"city": "Lagos", "country_code": "PT"} and p1.taken_at == "2026-04-30T18:05:00"
    assert p2.tags == [], "an analysis tag the approved model suppresses is off the photo"
    assert p2.ocr_tokens == ["café", "do", "mar", "go"]
    assert p2.embedding is None


def test_faces_and_nearest_pairs_on_the_common_similarity_scale(library, tmp_path) -> None:
    library.write(tmp_path / "dataset", [OWNER])
    faces = {f.face_id: f for f in read_faces(tmp_path / "dataset")}
    assert faces["p1-f0"].person_id == "grandma" and faces["p2-f0"].person_id is None
    assert faces["p1-f0"].box_area == pytest.approx(0.1) and faces["p1-f0"].quality == 0.75
    assert faces["p2-f0"].descriptor_vector().shape == (128,)
    pairs = {(p.a, p.b): p.similarity for p in read_pairs(tmp_path / "dataset")}
    assert set(pairs) == {("p1-f0", "p1-f1"), ("p1-f0", "p2-f0"), ("p1-f1", "p2-f0")}
    assert pairs[("p1-f0", "p1-f1")] > 0.8 > pairs[("p1-f0", "p2-f0")]  # distance 0.11 vs 2.26

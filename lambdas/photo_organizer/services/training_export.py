"""The feature snapshot the training scripts read (learning.datasets: features/photos|faces|pairs.jsonl), built
from the ports, so the local retrain and the cloud's export step write the same rows from either backend.

Per owner:
- photos: every READY photo with an analysis: label confidences (names and parents, case-folded, best 0..100),
  OCR tokens, the people in it, place, local capture time, the image embedding (FeatureStore) and the photo's
  effective tags after feedback (the overlay, and analysis tags the approved model suppresses);
- faces: every stored face (faces exist only for owners who consent), the person it is in now, quality, box
  area and, locally, its descriptor;
- pairs: similarities the backend measured. Cloud: each face's last SearchFaces (ClusteringState.searches),
  FaceIds mapped back to face ids. Local (descriptors, no searches): each face's nearest neighbours by
  descriptor distance on the same 0..1 scale, so the pair classifier sees the hard cases of both kinds.

A deleted photo has no analysis and no faces, so its feedback finds no features and drops out of training.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.feedback.models import SUPPRESS_BELOW, TagOverlay, effective_tags
from photo_organizer.learning.datasets import (
    FACES_FILE,
    PAIRS_FILE,
    PHOTOS_FILE,
    FaceFeatures,
    FacePair,
    PhotoFeatures,
    encode_vector,
    to_line,
    write_lines,
)
from photo_organizer.models import Photo
from photo_organizer.people.nearest import nearest_edges
from photo_organizer.ports.analysis import AnalysisStore, FeatureStore
from photo_organizer.ports.feedback import FeedbackStore, SuggestionStore
from photo_organizer.ports.people import ClusteringState, PeopleStore
from photo_organizer.ports.storage import MetadataStore

MAX_OCR_TOKENS = 200
LOCAL_PAIR_NEIGHBOURS = 20  # nearest faces per face: the pairs the matcher's decisions hinge on
_PAGE = 500
_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class SnapshotCounts:
    photos: int = 0
    faces: int = 0
    pairs: int = 0
    embeddings: int = 0


@dataclass
class OwnerSnapshot:
    photos: list[PhotoFeatures] = field(default_factory=list)
    faces: list[FaceFeatures] = field(default_factory=list)
    pairs: list[FacePair] = field(default_factory=list)


@dataclass
class TrainingExport:
    photos: MetadataStore
    analysis: AnalysisStore
    people: PeopleStore
    feedback: FeedbackStore | None = None
    features: FeatureStore | None = None
    suggestions: SuggestionStore | None = None
    clustering: ClusteringState | None = None  # cloud: each face's last SearchFaces
    # Locally the descriptors give every pair; the cloud has only the searches (set False there).
    pairs_from_descriptors: bool = True

    # ---- rows ---------------------------------------------------------------------------------------------------

    def owner_snapshot(self, owner: str) -> OwnerSnapshot:
        faces = self.face_rows(owner)
        return OwnerSnapshot(photos=self.photo_rows(owner), faces=faces, pairs=self.pair_rows(owner))

    def photo_rows(self, owner: str) -> list[PhotoFeatures]:
        overlays = self.feedback.overlays(owner) if self.feedback is not None else {}
        suppressed = self._suppressed(owner)
        embeddings = self.features.image_embeddings(owner) if self.features is not None else {}
        person_of = self._person_of_face(owner)
        people_by_photo: dict[str, set[str]] = {}
        for face in self.people.faces(owner):
            if face.face_id in person_of:
                people_by_photo.setdefault(face.photo_id, set()).add(person_of[face.face_id])
        rows = []
        for photo in self._ready_photos(owner):
            analysis = self.analysis.get(owner, photo.photo_id)
            if analysis is None:
                continue  # not analysed yet: nothing to learn from
            rows.append(
                photo_features(
                    analysis,
                    overlay=overlays.get(photo.photo_id, TagOverlay()),
                    suppressed=suppressed.get(photo.photo_id, ()),
                    embedding=embeddings.get(photo.photo_id),
                    people=sorted(people_by_photo.get(photo.photo_id, ())),
                )
            )
        return sorted(rows, key=lambda r: r.photo_id)

    def face_rows(self, owner: str) -> list[FaceFeatures]:
        person_of = self._person_of_face(owner)
        return [
            FaceFeatures(
                owner=owner,
                face_id=face.face_id,
                photo_id=face.photo_id,
                person_id=person_of.get(face.face_id),
                quality=round(face.quality, 4),
                box_area=round(face.box.width * face.box.height, 6),
                descriptor=encode_vector(face.vector(), "float32"),
            )
            for face in sorted(self.people.faces(owner), key=lambda f: f.face_id)
        ]

    def pair_rows(self, owner: str) -> list[FacePair]:
        faces = sorted(self.people.faces(owner), key=lambda f: f.face_id)
        pairs: dict[tuple[str, str], float] = {}
        known = {f.face_id for f in faces}
        by_rekognition_id = {f.rekognition_face_id: f.face_id for f in faces if f.rekognition_face_id}
        searches = self.clustering.searches(owner) if self.clustering is not None else {}
        for face_id, search in searches.items():
            for match, similarity in search.matches.items():
                other = by_rekognition_id.get(match, match if match in known else None)
                if other is None or other == face_id or face_id not in known:
                    continue
                key = (min(face_id, other), max(face_id, other))
                pairs[key] = max(pairs.get(key, 0.0), float(similarity))
        described = [f for f in faces if f.descriptor is not None]
        if self.pairs_from_descriptors and len(described) >= 2:
            edges = nearest_edges(
                [f.face_id for f in described],
                np.stack([f.vector() for f in described]),
                k=LOCAL_PAIR_NEIGHBOURS,
                threshold=1e-300,  # every neighbour, however unlike: negatives teach as much as positives
            )
            for edge in edges:
                pairs.setdefault((edge.a, edge.b), edge.similarity)
        return [FacePair(owner=owner, a=a, b=b, similarity=round(s, 6)) for (a, b), s in sorted(pairs.items())]

    # ---- files ----------------------------------------------------------------------------------------------------

    def write(self, root: Path, owners: Iterable[str]) -> SnapshotCounts:
        """Writes features/photos|faces|pairs.jsonl under root for these owners (replacing earlier files)."""
        snapshots = [self.owner_snapshot(owner) for owner in sorted(set(owners))]
        photos = [row for s in snapshots for row in s.photos]
        faces = [row for s in snapshots for row in s.faces]
        pairs = [row for s in snapshots for row in s.pairs]
        write_lines(root / PHOTOS_FILE, photos)
        write_lines(root / FACES_FILE, faces)
        write_lines(root / PAIRS_FILE, pairs)
        return SnapshotCounts(len(photos), len(faces), len(pairs), sum(1 for p in photos if p.embedding))

    def lines(self, owners: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(file, line) for every row, files as in learning.datasets (the cloud export writes them to S3)."""
        for owner in sorted(set(owners)):
            snapshot = self.owner_snapshot(owner)
            for name, rows in ((PHOTOS_FILE, snapshot.photos), (FACES_FILE, snapshot.faces),
                               (PAIRS_FILE, snapshot.pairs)):
                for row in rows:
                    yield name, to_line(row)

    # ---- helpers -----------------------------------------------------------------------------------------------

    def _ready_photos(self, owner: str) -> Iterator[Photo]:
        after = None
        while True:
            page = self.photos.list_photos(owner, limit=_PAGE, after=after)
            yield from page.photos
            after = page.next_key
            if after is None:
                return

    def _suppressed(self, owner: str) -> dict[str, list[str]]:
        if self.suggestions is None:
            return {}
        return {
            photo_id: [s.tag for s in found if s.on_photo and s.confidence < SUPPRESS_BELOW]
            for photo_id, found in self.suggestions.all_suggestions(owner).items()
        }

    def _person_of_face(self, owner: str) -> dict[str, str]:
        return {face_id: person.person_id for person in self.people.people(owner) for face_id in person.face_ids}


def photo_features(
    analysis: PhotoAnalysis,
    *,
    overlay: TagOverlay = TagOverlay(),
    suppressed: Iterable[str] = (),
    embedding: np.ndarray | None = None,
    people: Iterable[str] = (),
) -> PhotoFeatures:
    """One photo's row: what analysis found, and its tags after the user's feedback."""
    result = analysis.result
    labels: dict[str, float] = {}
    for label in result.labels:
        for name in (label.name, *label.parents):
            key = name.casefold()
            labels[key] = max(labels.get(key, 0.0), round(float(label.confidence), 2))
    tokens: list[str] = []
    for line in result.text_lines:
        for word in _WORD.findall(line.text.casefold()):
            if word not in tokens:
                tokens.append(word)
    place = analysis.place
    return PhotoFeatures(
        owner=analysis.owner,
        photo_id=analysis.photo_id,
        analysed_at=result.analysed_at.isoformat(),
        embedding=encode_vector(embedding, "float16") if embedding is not None else None,
        labels=dict(sorted(labels.items())),
        ocr_tokens=tokens[:MAX_OCR_TOKENS],
        people=list(people),
        place={k: v for k, v in {"city": place.city, "country_code": place.country_code}.items() if v} if place else None,
        taken_at=analysis.local_taken_at.isoformat() if analysis.local_taken_at else None,
        tags=effective_tags([(label.name, label.parents) for label in result.labels], overlay, suppressed),
    )


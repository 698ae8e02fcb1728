"""PeopleService.recluster with a promoted face matcher: its projection and threshold decide the edges, the
user's corrections (names, not-this-person) still hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.models import utcnow
from photo_organizer.people.store import StoredFace
from photo_organizer.services.people import PeopleService

OWNER = "ana"


@dataclass
class Matcher:
    threshold: float
    scale: float = 1.0

    def project(self, descriptors: np.ndarray) -> np.ndarray:
        return descriptors * self.scale


def faces_of(name: str, centre: np.ndarray, count: int, rng: np.random.Generator) -> list[StoredFace]:
    out = []
    for i in range(count):
        noise = rng.normal(size=128)
        noise *= 0.46 / np.linalg.norm(noise)  # pairwise distances ~0.65: same person, above dlib's 0.6
        out.append(StoredFace(face_id=f"{name}-{i}", owner=OWNER, photo_id=f"{name}-photo-{i}", quality=0.8,
                              created_at=utcnow(), box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2),
                              descriptor=StoredFace.pack_descriptor(centre + noise)))
    return out


@pytest.fixture
def people(tmp_path) -> PeopleService:
    store = SqlitePeopleStore(tmp_path / "lib.sqlite3", default_consent=True)
    rng = np.random.default_rng(7)
    centre_a = rng.normal(size=128)
    centre_a *= 1.0 / np.linalg.norm(centre_a)
    centre_b = -centre_a  # 2.0 apart: nobody would join these two
    store.save_faces(faces_of("a", centre_a, 4, rng) + faces_of("b", centre_b, 4, rng))
    return PeopleService(store, store, analysis=None)


def groups(service: PeopleService) -> list[set[str]]:
    return sorted((set(p.face_ids) for p in service.people.people(OWNER)), key=min)


def test_fixed_threshold_splits_faces_the_learned_matcher_joins(people) -> None:
    people.recluster(OWNER)
    assert groups(people) == [], "at 0.80 no pair is close enough: nobody"
    people.recluster(OWNER, matcher=Matcher(threshold=0.5))
    assert groups(people) == [{f"a-{i}" for i in range(4)}, {f"b-{i}" for i in range(4)}]


def test_the_projection_is_applied_before_the_cut(people) -> None:
    people.recluster(OWNER, matcher=Matcher(threshold=0.8, scale=0.5))  # distances halved: ~0.33 within
    assert groups(people) == [{f"a-{i}" for i in range(4)}, {f"b-{i}" for i in range(4)}]


def test_promoted_matcher_comes_from_the_hook_and_corrections_still_hold(people) -> None:
    people.face_matcher = lambda owner: Matcher(threshold=0.5) if owner == OWNER else None
    people.recluster(OWNER)
    person_a = next(p for p in people.people.people(OWNER) if "a-0" in p.face_ids)
    people.update(OWNER, person_a.person_id, name="Grandma")
    people.not_this_person(OWNER, "a-3", person_a.person_id)
    people.recluster(OWNER)
    grandma = next(p for p in people.people.people(OWNER) if p.name == "Grandma")
    assert grandma.person_id == person_a.person_id
    assert grandma.face_ids == {"a-0", "a-1", "a-2"}, "not-this-person holds against the matcher"

"""One body per PeopleStore / UserSettings behaviour, run against DynamoDbPeopleStore (moto) and SqlitePeopleStore."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.people.models import CannotLink, MustLink, OwnerMismatchError, Person, PinnedFace, Split
from photo_organizer.people.store import ForgottenBiometrics, StoredFace

REGION = "us-east-1"
TABLE = "po-people-test"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


@dataclass
class PeopleStoreUnderTest:
    kind: str
    store: Any
    make: Any
    """make(default_consent) -> another store on the same data."""
    raw_sort_keys: Any = None
    """aws only: every sort key stored in an owner's partition."""


@pytest.fixture(params=["local", "aws"])
def people(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PeopleStoreUnderTest]:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**table_definition(TABLE))

        def raw_sort_keys(owner: str) -> list[str]:
            items = dynamodb.get_paginator("scan").paginate(TableName=TABLE).build_full_result()["Items"]
            return sorted(item["SK"]["S"] for item in items if item["PK"]["S"] == f"OWNER#{owner}")

        yield PeopleStoreUnderTest(
            "aws",
            DynamoDbPeopleStore(TABLE),
            lambda default: DynamoDbPeopleStore(TABLE, default_consent=default),
            raw_sort_keys,
        )
        return
    path = tmp_path / "metadata.sqlite3"
    made: list[SqlitePeopleStore] = []

    def make(default: bool) -> SqlitePeopleStore:
        made.append(SqlitePeopleStore(path, default_consent=default))
        return made[-1]

    store = SqlitePeopleStore(path)
    yield PeopleStoreUnderTest("local", store, make)
    for other in (store, *made):
        other.close()


def face(owner: str, face_id: str, photo_id: str, *, seed: int | None = 0, rekognition: bool = False) -> StoredFace:
    descriptor = None
    if seed is not None and not rekognition:
        descriptor = StoredFace.pack_descriptor(np.random.default_rng(seed).normal(size=128).astype(np.float32))
    return StoredFace(
        face_id=face_id,
        owner=owner,
        photo_id=photo_id,
        box=BoundingBox(left=0.25, top=0.1, width=0.2, height=0.3),
        quality=0.75,
        created_at=T0,
        descriptor=descriptor,
        rekognition_face_id="0b6c1b5e-0a9e-4a7e-8d5b-3b2f0f7c1d2a" if rekognition else None,
    )


def person(owner: str, person_id: str, face_ids: set[str], **changes: Any) -> Person:
    cover = min(face_ids) if face_ids else None
    return Person(person_id=person_id, owner=owner, face_ids=frozenset(face_ids), cover_face_id=cover, **changes)


def _biometric_keys(sort_keys: list[str]) -> list[str]:
    return [sk for sk in sort_keys if sk.startswith(("FACE#", "PERSON#", "CONSTRAINT#"))]


# ---- faces ---------------------------------------------------------------------------------------------------


def test_faces_read_back_with_descriptor_or_rekognition_handle(people: PeopleStoreUnderTest) -> None:
    local = face("alice", "f1", "p1", seed=1)
    cloud = face("alice", "f2", "p1", rekognition=True)

    people.store.save_faces([local, cloud])

    assert people.store.faces("alice") == [local, cloud]
    vector = people.store.faces("alice")[0].vector()
    assert vector.dtype == np.float32 and vector.shape == (128,)
    assert np.array_equal(vector, local.vector())
    assert people.store.faces("alice")[1].vector() is None
    assert people.store.faces("alice")[0].ref().face_id == "f1"


def test_saving_faces_again_is_idempotent(people: PeopleStoreUnderTest) -> None:
    original = face("alice", "f1", "p1", seed=1)
    people.store.save_faces([original])
    moved = original.model_copy(update={"quality": 0.5})

    people.store.save_faces([moved, moved])
    people.store.save_faces([moved])

    assert people.store.faces("alice") == [moved]


def test_faces_of_a_photo_and_their_deletion(people: PeopleStoreUnderTest) -> None:
    people.store.save_faces([face("alice", f"f{n}", f"p{n % 2}", seed=n) for n in range(5)])
    people.store.save_faces([face("bob", "f0", "p0", seed=9)])

    assert [f.face_id for f in people.store.faces_of_photo("alice", "p0")] == ["f0", "f2", "f4"]

    assert people.store.delete_faces_of_photo("alice", "p0") == ["f0", "f2", "f4"]
    assert people.store.delete_faces_of_photo("alice", "p0") == []

    assert [f.face_id for f in people.store.faces("alice")] == ["f1", "f3"]
    assert [f.face_id for f in people.store.faces("bob")] == ["f0"]


def test_a_descriptor_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError):
        StoredFace.model_validate({**face("alice", "f1", "p1", seed=None).model_dump(), "descriptor": b"x" * 10})
    with pytest.raises(ValueError):
        StoredFace.pack_descriptor(np.zeros(64))


# ---- people --------------------------------------------------------------------------------------------------


def test_replace_people_makes_exactly_the_given_set(people: PeopleStoreUnderTest) -> None:
    ana = person("alice", "a" * 32, {"f1", "f2"}, name="Ana")
    bruno = person("alice", "b" * 32, {"f3"})
    carla = person("alice", "c" * 32, {"f4", "f5"}, hidden=True)
    people.store.replace_people("alice", [bruno, ana, carla])
    assert people.store.people("alice") == [ana, bruno, carla]

    ana2 = ana.model_copy(update={"face_ids": frozenset({"f1", "f2", "f3"})})
    dora = person("alice", "d" * 32, {"f6"})
    people.store.replace_people("alice", [ana2, carla, dora])

    assert people.store.people("alice") == [ana2, carla, dora]
    assert people.store.person("alice", "a" * 32) == ana2
    assert people.store.person("alice", "b" * 32) is None
    assert people.store.person("bob", "a" * 32) is None
    people.store.replace_people("alice", [])
    assert people.store.people("alice") == []


def test_replace_people_refuses_someone_elses_person(people: PeopleStoreUnderTest) -> None:
    with pytest.raises(OwnerMismatchError):
        people.store.replace_people("alice", [person("bob", "b" * 32, {"f1"})])
    assert people.store.people("alice") == [] and people.store.people("bob") == []


def test_save_person_updates_one_person(people: PeopleStoreUnderTest) -> None:
    ana = person("alice", "a" * 32, {"f1", "f2"})
    bruno = person("alice", "b" * 32, {"f3"})
    people.store.replace_people("alice", [ana, bruno])
    renamed = ana.model_copy(update={"name": "Ana", "cover_face_id": "f2", "cover_chosen_by_user": True})

    people.store.save_person(renamed)

    assert people.store.people("alice") == [renamed, bruno]
    assert people.store.person("alice", "a" * 32).named is True


def test_a_person_with_very_many_faces_reads_back_whole(people: PeopleStoreUnderTest) -> None:
    # ~20,000 faces of 40-character ids: more than one DynamoDB item holds.
    face_ids = {f"{n:08d}-0000-4000-8000-face{n:012d}"[:40] for n in range(20_000)}
    big = person("alice", "a" * 32, face_ids, name="Me")
    small = person("alice", "a" * 31 + "b", {"x1"})
    people.store.replace_people("alice", [big, small])

    assert people.store.people("alice") == [big, small]
    assert people.store.person("alice", "a" * 32) == big

    shrunk = person("alice", "a" * 32, {"f1"}, name="Me")
    people.store.replace_people("alice", [shrunk, small])
    assert people.store.people("alice") == [shrunk, small]
    if people.kind == "aws":
        assert [sk for sk in people.raw_sort_keys("alice") if "#PART#" in sk] == []


# ---- corrections ---------------------------------------------------------------------------------------------


def test_constraints_read_back_oldest_first_and_adding_twice_stores_once(people: PeopleStoreUnderTest) -> None:
    split = Split(person_id="p1", face_ids=frozenset({"f3", "f1", "f2"}), new_person_id="p9", created_at=T0)
    cannot = CannotLink(face_id="f4", person_id="p1", created_at=T0 + timedelta(minutes=5))
    pinned = PinnedFace(face_id="f5", person_id="p2", created_at=T0 - timedelta(days=1))
    merge = MustLink(a="f1", b="f7")  # undated: oldest of all

    ids = [people.store.add_constraint("alice", c) for c in (split, cannot, pinned, merge)]
    assert people.store.add_constraint("alice", split) == ids[0]

    assert people.store.constraints("alice") == [merge, pinned, split, cannot]
    assert len(set(ids)) == 4
    assert people.store.constraints("bob") == []


def test_a_removed_constraint_is_gone_for_its_owner_only(people: PeopleStoreUnderTest) -> None:
    """Undo of a "not this person" feedback event deletes exactly that correction."""
    cannot = CannotLink(face_id="f4", person_id="p1", created_at=T0)
    pinned = PinnedFace(face_id="f5", person_id="p2", created_at=T0)
    cid = people.store.add_constraint("alice", cannot)
    people.store.add_constraint("alice", pinned)
    people.store.add_constraint("bob", cannot)

    assert people.store.remove_constraint("bob", "0" * 32) is False
    assert people.store.remove_constraint("alice", cid) is True
    assert people.store.constraints("alice") == [pinned]
    assert people.store.constraints("bob") == [cannot]
    assert people.store.remove_constraint("alice", cid) is False  # idempotent


# ---- consent -------------------------------------------------------------------------------------------------


def test_consent_default_is_the_adapters_argument_and_the_choice_sticks(people: PeopleStoreUnderTest) -> None:
    cloud_like, demo_like = people.make(False), people.make(True)
    assert cloud_like.biometric_consent("alice") is False
    assert demo_like.biometric_consent("alice") is True

    cloud_like.set_biometric_consent("alice", True)
    demo_like.set_biometric_consent("bob", False)

    for store in (cloud_like, demo_like):
        assert store.biometric_consent("alice") is True
        assert store.biometric_consent("bob") is False
    assert cloud_like.biometric_consent("carol") is False


def test_an_account_being_erased_has_no_consent_and_its_settings_can_be_forgotten(
        people: PeopleStoreUnderTest) -> None:
    """Erasure deletes the consent setting before it finishes: meanwhile the erasure mark answers "no consent",
    so the local demo's default (on) never starts face processing for an account on its way out."""
    store = people.make(True)
    for owner in ("alice", "bob"):
        store.set_biometric_consent(owner, True)
    store.set_account_erasing("alice", True)
    assert store.biometric_consent("alice") is False and store.biometric_consent("bob") is True
    assert store.stored_settings("alice") == 1

    assert store.forget_settings("alice") == 1 and store.forget_settings("alice") == 0
    assert store.stored_settings("alice") == 0 and store.biometric_consent("alice") is False
    store.set_account_erasing("alice", False)
    assert store.biometric_consent("alice") is True, "no setting and no mark: the adapter's default, as a new user"
    assert store.stored_settings("bob") == 1 and store.biometric_consent("bob") is True
    if people.kind == "aws":
        assert people.raw_sort_keys("alice") == []


# ---- forget --------------------------------------------------------------------------------------------------


def test_forget_biometrics_leaves_nothing_of_the_owner_and_everything_of_others(
    people: PeopleStoreUnderTest,
) -> None:
    for owner in ("alice", "bob"):
        people.store.save_faces([face(owner, f"f{n}", f"p{n}", seed=n) for n in range(3)])
        many = {f"{n:040d}" for n in range(9_000)}  # a person spread over several items on DynamoDB
        people.store.replace_people(owner, [person(owner, "a" * 32, many, name="Me"), person(owner, "b" * 32, {"f2"})])
        people.store.add_constraint(owner, CannotLink(face_id="f1", person_id="a" * 32, created_at=T0))
        people.store.set_biometric_consent(owner, False)
    bob_before = (people.store.faces("bob"), people.store.people("bob"), people.store.constraints("bob"))

    forgotten = people.store.forget_biometrics("alice")

    assert forgotten == ForgottenBiometrics(faces=3, people=2, constraints=1)
    assert people.store.faces("alice") == []
    assert people.store.people("alice") == []
    assert people.store.constraints("alice") == []
    assert people.store.forget_biometrics("alice") == ForgottenBiometrics(faces=0, people=0, constraints=0)
    assert (people.store.faces("bob"), people.store.people("bob"), people.store.constraints("bob")) == bob_before
    assert people.store.biometric_consent("alice") is False
    if people.kind == "aws":
        assert _biometric_keys(people.raw_sort_keys("alice")) == []
        assert "SETTINGS#biometrics" in people.raw_sort_keys("alice")
        assert len(_biometric_keys(people.raw_sort_keys("bob"))) > 3 + 2 + 1  # bob's person spans part items


def test_the_account_erasing_mark_is_per_owner_idempotent_and_leaves_nothing_once_cleared(
        people: PeopleStoreUnderTest) -> None:
    assert people.store.account_erasing("alice") is False
    people.store.set_account_erasing("alice", True)
    people.store.set_account_erasing("alice", True)
    assert people.store.account_erasing("alice") is True and people.store.account_erasing("bob") is False
    people.store.set_account_erasing("alice", False)
    people.store.set_account_erasing("alice", False)
    assert people.store.account_erasing("alice") is False

"""Relevance on a fixture library: expected top hits for natural phrases, through the real search service,
the local index and the real stores (photos, analyses, people), with `now` fixed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, FaceDetection, BoundingBox, Label, TextLine
from photo_organizer.analysis.store import PhotoAnalysis, StoredPlace
from photo_organizer.adapters.local.vocabulary import ancestors
from photo_organizer.bootstrap import build_services
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus
from photo_organizer.people import Person
from photo_organizer.people.store import StoredFace
from photo_organizer.services.search import SearchFilters
from photo_organizer.settings import Settings

OWNER, OTHER = "owner-ana", "owner-zed"
NOW = datetime(2025, 11, 25, 12, tzinfo=timezone.utc)
PLACES = {
    "Lisbon": ("Lisbon", "Lisbon", "PT", "Portugal", 38.72, -9.14),
    "Lagos": ("Lagos", "Faro", "PT", "Portugal", 37.10, -8.67),
    "Madison": ("Madison", "Wisconsin", "US", "United States", 43.07, -89.40),
    "Zermatt": ("Zermatt", "Valais", "CH", "Switzerland", 46.02, 7.75),
    "New York": ("New York", "New York", "US", "United States", 40.71, -74.01),
}
# name: (tags, people, place, taken, text, sensitive)
LIBRARY = {
    "beach_lisbon": (["Beach", "Sea"], ["Ana"], "Lisbon", "2023-08-10", "", False),
    "beach_lagos": (["Beach"], ["Ben"], "Lagos", "2022-07-01", "", False),
    "dog_park": (["Dog", "Park"], [], "Madison", "2025-07-15", "", False),
    "dog_home": (["Dog"], [], None, "2024-01-10", "", False),
    "cat_sofa": (["Cat"], [], None, "2025-03-01", "", False),
    "receipt_grocery": (["Receipt"], [], None, "2025-05-01", "FRESH MARKET GROCERY TOTAL 23.50", False),
    "receipt_cafe": (["Receipt"], [], None, "2024-11-11", "PIKOLO LATTE 4.50", False),
    "dinner": (["Food"], ["Ana", "Ben"], "Lisbon", "2024-12-24", "", False),
    "mountain": (["Mountain"], ["Ben"], "Zermatt", "2023-02-14", "", False),
    "car_city": (["Car"], [], "New York", "2022-05-05", "", False),
    "puppy_seaside": (["Dog", "Beach"], [], None, "2023-06-20", "", False),
    "parking_sign": (["Sign"], [], None, "2024-04-04", "NO PARKING ANY TIME", False),
    "birthday": (["Cake"], ["Ana"], None, "2021-10-10", "", False),
    "ski": (["Snow", "Skiing"], [], "Zermatt", "2024-01-05", "", False),
    "garden": (["Flower", "Plant"], [], None, "2025-05-20", "", False),
    "beach_private": (["Beach", "Swimwear"], ["Ana"], "Lagos", "2024-08-01", "", True),
    "rocket": (["Rocket"], [], None, "2020-02-02", "", False),
    "coffee": (["Coffee"], [], "Madison", "2024-05-17", "", False),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    services = build_services(Settings(data_dir=tmp_path_factory.mktemp("relevance")))
    people = {name: f"person-{name.lower()}" for name in ("Ana", "Ben")}
    faces_of: dict[str, set[str]] = {pid: set() for pid in people.values()}
    ids = {}
    for index, (name, (tags, who, place, taken, text, sensitive)) in enumerate(LIBRARY.items()):
        photo_id = f"{index:02d}{name.replace('_', '')}"[:32]
        ids[name] = photo_id
        add_photo(services, OWNER, photo_id, name, taken)
        save_analysis(services, OWNER, photo_id, tags, who, place, taken, text, sensitive)
        for n, person in enumerate(who):
            face_id = f"{photo_id}-f{n}"
            services.people_store.save_faces([StoredFace(
                face_id=face_id, owner=OWNER, photo_id=photo_id, box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2),
                quality=0.9, created_at=NOW, descriptor=None)])
            faces_of[people[person]].add(face_id)
    services.people_store.replace_people(OWNER, [
        Person(person_id=pid, owner=OWNER, name=name, face_ids=frozenset(faces_of[pid]), cover_face_id=min(faces_of[pid]))
        for name, pid in people.items()
    ])
    add_photo(services, OTHER, "99other", "zed_beach", "2023-08-10")
    save_analysis(services, OTHER, "99other", ["Beach", "Dog"], [], "Lisbon", "2023-08-10", "", False)
    assert services.search is not None
    services.search.now = lambda: NOW
    services.search.index_owner(OWNER)
    services.search.index_owner(OTHER)
    return services, ids


def add_photo(services, owner: str, photo_id: str, filename: str, taken: str) -> None:
    created = datetime.now(timezone.utc) - timedelta(minutes=1)  # real time: the store expires old pending records
    photo = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{filename}.jpg",
                  declared_content_type="image/jpeg", declared_size=1000, created_at=created, updated_at=created)
    services.metadata.create_photo(photo, pending_ttl=timedelta(days=1))
    meta = ImageMetadata(format=ImageFormat.JPEG, width=1600, height=1200, byte_size=1000, sha256=f"{hash(photo_id) & (2**256 - 1):064x}",
                         phash="0" * 16, taken_at=datetime.fromisoformat(taken).replace(hour=12, tzinfo=timezone.utc))
    services.metadata.finish_photo(photo.model_copy(update={"status": PhotoStatus.READY, "metadata": meta}),
                                   expected_status=PhotoStatus.PENDING_UPLOAD)


def save_analysis(services, owner, photo_id, tags, who, place, taken, text, sensitive) -> None:
    from photo_organizer.analysis.models import ModerationLabel

    labels = tuple(Label(name=t, confidence=95, parents=tuple(ancestors(t))) for t in tags)
    faces = tuple(FaceDetection(box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2), confidence=99,
                                face_handle=f"{photo_id}-f{n}") for n, _ in enumerate(who))
    result = AnalysisResult(
        photo_id=photo_id, analysis_version=1, labels=labels, faces=faces,
        text_lines=(TextLine(text=text, confidence=99),) if text else (),
        moderation_labels=(ModerationLabel(name="Swimwear or Underwear", confidence=95),) if sensitive else (),
        analysed_at=NOW, source=AnalysisSource.REKOGNITION)
    stored_place = None
    if place:
        city, region, code, country, lat, lon = PLACES[place]
        stored_place = StoredPlace(city=city, region=region, country_code=code, country=country, lat=lat, lon=lon)
    caption = " and ".join(who) + (" · " if who else "") + ", ".join(tags)
    assert services.analysis.save(PhotoAnalysis(owner=owner, result=result, caption=caption, place=stored_place,
                                                local_taken_at=datetime.fromisoformat(taken).replace(hour=12, tzinfo=timezone.utc)))


def hits(library, query: str, **filters) -> list[str]:
    services, ids = library
    names = {v: k for k, v in ids.items()}
    response = services.search.search(OWNER, query, SearchFilters(**filters), limit=20)
    return [names[item.photo_id] for item in response.items]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("beach with Ana in Lisbon 2023", ["beach_lisbon"]),
        ("dogs last summer", ["dog_park"]),
        ("photos of Ana and Ben", ["dinner"]),
        ("cat", ["cat_sofa"]),
        ("grocery", ["receipt_grocery"]),
        ("latte", ["receipt_cafe"]),
        ("mountain", ["mountain"]),
        ("New York", ["car_city"]),
        ("no parking", ["parking_sign"]),
        ("cake", ["birthday"]),
        ("snow", ["ski"]),
        ("flowers", ["garden"]),
        ("rocket", ["rocket"]),
        ("coffee in Madison", ["coffee"]),
    ],
)
def test_phrase_finds_exactly_the_expected_photo_first(library, query, expected):
    assert hits(library, query)[: len(expected)] == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("receipts", {"receipt_grocery", "receipt_cafe"}),
        ("Ben", {"beach_lagos", "dinner", "mountain"}),
        ("Lisbon", {"beach_lisbon", "dinner"}),
        ("photos from 2022", {"beach_lagos", "car_city"}),
        ("Ana", {"beach_lisbon", "dinner", "birthday"}),
        ("dog", {"dog_park", "dog_home", "puppy_seaside"}),
        ("beach", {"beach_lisbon", "beach_lagos", "puppy_seaside"}),
    ],
)
def test_phrase_finds_the_expected_set(library, query, expected):
    assert set(hits(library, query)[: len(expected)]) == expected


def test_parent_tags_find_children(library):
    assert {"dog_park", "dog_home", "cat_sofa", "puppy_seaside"} <= set(hits(library, "animal"))


def test_meaning_finds_a_dog_on_a_beach_for_puppy_at_the_seaside(library):
    assert "puppy_seaside" in hits(library, "puppy at the seaside")[:3]


def test_sensitive_photos_only_when_asked(library):
    assert "beach_private" not in hits(library, "beach")
    assert "beach_private" in hits(library, "beach", include_sensitive=True)


def test_another_owners_photos_never_appear(library):
    services, ids = library
    for query in ("beach", "dog", "Lisbon", "", "zed"):
        response = services.search.search(OWNER, query, SearchFilters(), limit=50)
        assert "99other" not in {i.photo_id for i in response.items}


def test_hits_say_why_they_matched(library):
    services, ids = library
    response = services.search.search(OWNER, "beach with Ana in Lisbon 2023", SearchFilters(), limit=5)
    fields = {m.field for m in response.items[0].matched}
    assert {"people", "place", "date"} <= fields
    assert {c.kind for c in response.chips} >= {"person", "place", "date"}

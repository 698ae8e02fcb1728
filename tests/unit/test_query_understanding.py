"""Query understanding: natural phrases -> filters + plain text, against one owner's vocabulary and a fixed now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from photo_organizer.search.understanding import ChipKind, QueryVocabulary, understand

NOW = datetime(2024, 7, 15, 12, 30, tzinfo=timezone.utc)  # a Monday

VOCABULARY = QueryVocabulary.build(
    people=[("p-ana", "Ana"), ("p-ben", "Ben Jones"), ("p-anamaria", "Ana María"), ("p-rose", "Rose")],
    places=["Lisbon", "Portugal", "New York", "São Paulo", "Florence"],
    tags=["beach", "dog", "animal", "receipt", "party", "swimming pool", "rose", "bus", "florence"],
    synonyms={"seaside": "beach", "invoice": "receipt", "unicorn": "no-such-tag"},
)


def d(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"


# (phrase, tags, people, place, (start, end) or None, remaining text)
CASES = [
    ("beach with Ana in Lisbon 2023", ("beach",), ("p-ana",), "Lisbon", (d(2023, 1, 1), d(2024, 1, 1)), ""),
    # the most recent *completed* northern summer before 15 July 2024
    ("dogs last summer", ("dog",), (), None, (d(2023, 6, 1), d(2023, 9, 1)), ""),
    ("receipts", ("receipt",), (), None, None, ""),
    ("photos of Ana and Ben", (), ("p-ana", "p-ben"), None, None, ""),
    ("July 2024", (), (), None, (d(2024, 7, 1), d(2024, 8, 1)), ""),
    ("in march", (), (), None, (d(2024, 3, 1), d(2024, 4, 1)), ""),
    ("pictures from december", (), (), None, (d(2023, 12, 1), d(2024, 1, 1)), ""),  # latest December begun
    ("summer of 2021", (), (), None, (d(2021, 6, 1), d(2021, 9, 1)), ""),
    ("summer", (), (), None, (d(2024, 6, 1), d(2024, 9, 1)), ""),  # begun, not finished
    ("winter 2022", (), (), None, (d(2022, 12, 1), d(2023, 3, 1)), ""),
    ("last winter", (), (), None, (d(2023, 12, 1), d(2024, 3, 1)), ""),
    ("autumn", (), (), None, (d(2023, 9, 1), d(2023, 12, 1)), ""),
    ("yesterday", (), (), None, (d(2024, 7, 14), d(2024, 7, 15)), ""),
    ("today", (), (), None, (d(2024, 7, 15), d(2024, 7, 16)), ""),
    ("last week", (), (), None, (d(2024, 7, 8), d(2024, 7, 15)), ""),
    ("this week", (), (), None, (d(2024, 7, 15), d(2024, 7, 22)), ""),
    ("last month", (), (), None, (d(2024, 6, 1), d(2024, 7, 1)), ""),
    ("this year", (), (), None, (d(2024, 1, 1), d(2025, 1, 1)), ""),
    ("last year", (), (), None, (d(2023, 1, 1), d(2024, 1, 1)), ""),
    ("2 years ago", (), (), None, (d(2022, 1, 1), d(2023, 1, 1)), ""),
    ("a month ago", (), (), None, (d(2024, 6, 1), d(2024, 7, 1)), ""),
    ("the 1990s", (), (), None, (d(1990, 1, 1), d(2000, 1, 1)), ""),
    ("2024-07-04", (), (), None, (d(2024, 7, 4), d(2024, 7, 5)), ""),
    ("2019 to 2021", (), (), None, (d(2019, 1, 1), d(2022, 1, 1)), ""),
    ("party in New York", ("party",), (), "New York", None, ""),
    ("ANA MARIA at the swimming pools", ("swimming pool",), ("p-anamaria",), None, None, ""),
    ("sao paulo", (), (), "São Paulo", None, ""),  # accents folded, the stored form kept
    ("Lisboa sunset", (), (), None, None, "Lisboa sunset"),  # unknown words stay as typed
    ("my dog at the seaside", ("dog", "beach"), (), None, None, ""),  # synonym given by the vocabulary
    ("invoices", ("receipt",), (), None, None, ""),  # a synonym's plural too
    ("buses", ("bus",), (), None, None, ""),
    ("dogs and dogs", ("dog",), (), None, None, ""),
    ("with Rose", (), ("p-rose",), None, None, ""),  # a person and a tag: "with" means the person
    ("rose", (), ("p-rose",), None, None, ""),  # no hint: person first
    ("in Florence", (), (), "Florence", None, ""),
    ("may", (), (), None, None, "may"),  # a month only next to a year or after "in"
    ("in may", (), (), None, (d(2024, 5, 1), d(2024, 6, 1)), ""),
    ("fall", (), (), None, None, "fall"),
    ("Lisbon Portugal", (), (), "Lisbon", None, "Portugal"),  # one place filter; the other stays text
    ("sunset over the bridge", (), (), None, None, "sunset over bridge"),
    ("photos", (), (), None, None, ""),
    ("", (), (), None, None, ""),
    # injection strings are words and nothing more
    ("tag:dog AND (owner:bob*)", ("dog",), (), None, None, "tag owner bob"),
    ("' OR 1=1; DROP TABLE photos; --", (), (), None, None, "OR 1 1 DROP TABLE"),
    ('"><script>alert(1)</script>', (), (), None, None, "script alert 1 script"),
    ("name:* OR people.person_id:p-ana", (), (), None, None, "name OR people.person_id p-ana"),
    ("\\u0000 {\"match_all\": {}}", (), (), None, None, "u0000 match_all"),
]


@pytest.mark.parametrize(
    ("phrase", "tags", "people", "place", "dates", "text"), CASES, ids=[c[0] or "empty" for c in CASES]
)
def test_phrase_becomes_filters_and_plain_text(phrase, tags, people, place, dates, text):
    parsed = understand(phrase, owner="owner-1", now=NOW, vocabulary=VOCABULARY)
    q = parsed.query
    assert q.owner == "owner-1"
    assert (q.tags, q.people, q.place) == (tags, people, place)
    got_dates = None if q.dates is None else (q.dates.start.date().isoformat(), q.dates.end.date().isoformat())
    assert got_dates == dates
    assert q.text == parsed.remaining_text == text
    assert not any(ch in q.text for ch in ':"()*[]{}<>=;\\'), "no query syntax reaches a backend"


def test_chips_show_the_interpretation_in_order():
    parsed = understand("beach with Ana in Lisbon 2023 sunset", owner="o", now=NOW, vocabulary=VOCABULARY)
    assert [(c.kind, c.value, c.display) for c in parsed.chips] == [
        (ChipKind.TAG, "beach", "beach"),
        (ChipKind.PERSON, "p-ana", "Ana"),
        (ChipKind.PLACE, "Lisbon", "Lisbon"),
        (ChipKind.DATE, "2023-01-01/2024-01-01", "2023"),
        (ChipKind.TEXT, "sunset", "sunset"),
    ]
    assert parsed.semantic_text == "beach Ana Lisbon sunset"


def test_last_summer_is_this_years_once_it_has_ended():
    parsed = understand("last summer", owner="o", now=datetime(2024, 9, 2, tzinfo=timezone.utc), vocabulary=VOCABULARY)
    assert parsed.query.dates.start == datetime(2024, 6, 1, tzinfo=timezone.utc)
    assert parsed.chips[0].display == "Summer 2024"


def test_ranges_use_the_time_zone_of_now():
    lisbon_summer = timezone(timedelta(hours=1))
    parsed = understand("2023", owner="o", now=NOW.astimezone(lisbon_summer), vocabulary=VOCABULARY)
    assert parsed.query.dates.start == datetime(2023, 1, 1, tzinfo=lisbon_summer)


def test_rolling_windows_end_now():
    parsed = understand("past 3 months", owner="o", now=datetime(2024, 5, 31, 9), vocabulary=VOCABULARY)
    assert (parsed.query.dates.start, parsed.query.dates.end) == (datetime(2024, 2, 29), datetime(2024, 5, 31, 9))


def test_first_name_finds_a_person_only_when_unambiguous():
    vocabulary = QueryVocabulary.build(people=[("p1", "Ben Jones"), ("p2", "Carla Dias"), ("p3", "Carla Reis")])
    assert understand("ben", owner="o", now=NOW, vocabulary=vocabulary).query.people == ("p1",)
    carla = understand("carla", owner="o", now=NOW, vocabulary=vocabulary)
    assert carla.query.people == () and carla.remaining_text == "carla"
    assert understand("carla reis", owner="o", now=NOW, vocabulary=vocabulary).query.people == ("p3",)


def test_another_owners_vocabulary_is_not_used():
    empty = QueryVocabulary.build()
    parsed = understand("beach with Ana in Lisbon", owner="o", now=NOW, vocabulary=empty)
    assert (parsed.query.tags, parsed.query.people, parsed.query.place) == ((), (), None)
    assert parsed.remaining_text == "beach Ana Lisbon"


def test_understanding_is_deterministic():
    runs = {understand("dogs with Ana last summer", owner="o", now=NOW, vocabulary=VOCABULARY).model_dump_json()
            for _ in range(5)}
    assert len(runs) == 1


@pytest.mark.parametrize(("phrase", "tags", "remaining"), [
    ("man in a suit", ("person", "suit"), ""),
    ("women", ("person",), ""),
    ("orange dahlias", ("flower",), "orange"),
    ("temple by the lake", ("place of worship",), "by lake"),
    ("photographer", ("photography",), ""),
    ("red motorbike", ("motorcycle",), "red"),
])
def test_common_words_reach_the_tags_that_name_them_through_the_product_synonyms(phrase, tags, remaining):
    from photo_organizer.search.parts import SYNONYMS

    vocabulary = QueryVocabulary.build(
        tags=["person", "suit", "flower", "place of worship", "photography", "motorcycle"], synonyms=SYNONYMS)
    parsed = understand(phrase, owner="o", now=NOW, vocabulary=vocabulary)
    assert (parsed.query.tags, parsed.remaining_text) == (tags, remaining)
    # a synonym of a tag the library does not have stays a plain word
    alone = understand(phrase, owner="o", now=NOW, vocabulary=QueryVocabulary.build(tags=["dog"], synonyms=SYNONYMS))
    assert alone.query.tags == ()

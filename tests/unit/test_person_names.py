"""Person names refuse bidi and other control/format characters (display spoofing, issue 13's review)."""

from __future__ import annotations

import pytest

from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore
from photo_organizer.errors import ValidationError
from photo_organizer.people.models import Person
from photo_organizer.services.people import PeopleService


@pytest.fixture
def people(tmp_path):
    store = SqlitePeopleStore(tmp_path / "lib.sqlite3", default_consent=True)
    store.save_person(Person(person_id="p1", owner="owner-1", face_ids=frozenset({"f1"})))
    return store, PeopleService(store, store, analysis=None)


@pytest.mark.parametrize(
    "name",
    ["Ana\u202egnp.exe", "\u2066Ana\u2069", "Ana\u200fBob", "Ana\u200bBob", "Ana\x00", "Ana\x1b[31m", "Ana\ufeff"],
)
def test_a_name_with_control_or_format_characters_is_refused(people, name):
    store, service = people
    with pytest.raises(ValidationError, match="control or formatting"):
        service.update("owner-1", "p1", name=name)
    assert store.person("owner-1", "p1").name is None


def test_an_ordinary_name_in_any_script_is_kept(people):
    store, service = people
    for name in ("Ana Lúcia", "Zoë", "محمد", "李小龙", "Ngũgĩ wa Thiong'o"):
        assert service.update("owner-1", "p1", name=name).name == name

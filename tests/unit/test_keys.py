import pytest

from photo_organizer.errors import PermanentError
from photo_organizer.keys import PhotoKeys, UnexpectedKeyError, new_photo_id


def test_keys_are_built_from_owner_and_photo_id_only():
    keys = PhotoKeys.for_photo("owner-1", "abc123")
    assert keys.original == "originals/owner-1/abc123"
    assert keys.preview == "previews/owner-1/abc123.jpg"
    assert keys.thumbnail == "thumbnails/owner-1/abc123.webp"
    assert keys.quarantine == "quarantine/owner-1/abc123"


@pytest.mark.parametrize(
    "owner",
    ["../etc", "a/b", "", "x\x00y", "evil\u202egpj.exe", "a" * 129, "owner 1"],
    ids=["traversal", "slash", "empty", "nul", "rtl-override", "too-long", "space"],
)
def test_owner_that_could_escape_its_prefix_is_refused(owner):
    with pytest.raises(PermanentError):
        PhotoKeys.for_photo(owner, "abc")


def test_original_key_round_trips_and_foreign_keys_are_refused():
    assert PhotoKeys.from_original_key("originals/o1/p1") == PhotoKeys("o1", "p1")
    for key in ("previews/o1/p1.jpg", "originals/o1/p1/extra", "originals/../p1", "originals/o1/"):
        with pytest.raises(UnexpectedKeyError):
            PhotoKeys.from_original_key(key)


def test_photo_ids_are_unique_time_ordered_and_key_safe():
    ids = [new_photo_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(len(i) == 32 and i.isalnum() for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)

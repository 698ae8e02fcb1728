"""A file name's own words reach meaning search; the names cameras and apps make up add nothing (search.filenames,
search.describe)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from photo_organizer.search.describe import describe
from photo_organizer.search.filenames import filename_words
from photo_organizer.search.models import SearchDocument


@pytest.mark.parametrize(
    ("filename", "words"),
    [
        ("hubble_deep_field.jpg", "hubble deep field"),
        ("ParisTrip-EiffelTower.HEIC", "paris trip eiffel tower"),
        ("Paris2019.jpg", "paris"),  # a name and a year
        ("bed and breakfast.jpeg", "bed and breakfast"),
        ("cafe.jpg", "cafe"),  # hex letters, but no digit: a word
        ("Lisboa café.png", "lisboa café"),
        ("holiday/beach_day_beach.jpg", "beach day"),  # each word once; a folder is not the name
        ("Screenshot 2024-01-01 at 10.00.00.png", "screenshot"),
    ],
)
def test_a_name_a_person_gave_gives_its_words(filename, words):
    assert filename_words(filename) == words


@pytest.mark.parametrize(
    "filename",
    [
        "IMG_2034.JPG", "IMG20240101.jpg", "IMG_E1234.JPG", "DSC01234 copy.jpg", "DSCN0042.JPG", "PXL_20240714_093112345.jpg",
        "MVIMG_20190101_1.jpg", "20240101_101010.jpg", "WhatsApp Image 2024-07-14 at 09.31.12.jpeg",
        "3f9a1c0e7b.jpg", "5b8e0c2a-0c1d-4e2f-a3b4-c5d6e7f8a9b0.jpg", "a.jpg", "", "photo (1).jpg",
    ],
)
def test_a_name_a_camera_or_an_app_made_up_gives_no_words(filename):
    assert filename_words(filename) == ""


def _document(filename: str, **fields) -> SearchDocument:
    return SearchDocument(owner="o", photo_id="p", version=1, uploaded_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
                          filename=filename, **fields)


def test_the_description_leads_with_the_file_names_words_before_what_the_classifier_guessed():
    text = describe(_document("hubble_deep_field.jpg", tags=("electronics",), caption="September 2012"))
    assert text == "hubble deep field. September 2012. Tags: electronics."


def test_a_generated_name_leaves_the_description_as_it_was_and_nothing_described_stays_empty():
    assert describe(_document("IMG_2034.JPG", tags=("cat",), caption="A cat")) == "A cat. Tags: cat."
    assert describe(_document("IMG_2034.JPG")) == ""  # no vector for a photo with nothing said about it
    assert describe(_document("clock_motion.png")) == "clock motion."

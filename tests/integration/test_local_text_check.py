"""The cheap text check that decides whether local OCR runs, on real sample photos."""

from pathlib import Path

import pytest

pytest.importorskip("rapidocr_onnxruntime", reason="local OCR needs rapidocr-onnxruntime (the `local` extra)")

from photo_organizer.adapters.local.ocr import likely_has_text  # noqa: E402
from photo_organizer.imaging import derive  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def preview(name: str) -> bytes:
    return derive((SAMPLES / name).read_bytes()).preview_jpeg


def test_a_printed_sign_is_likely_text():
    assert likely_has_text(preview("coffee_with_text.jpg"))


@pytest.mark.parametrize("name", ["chelsea.png", "obama.jpg", "rocket.jpg", "astronaut.png"])
def test_fur_faces_and_night_skies_are_not_taken_for_text(name):
    assert not likely_has_text(preview(name))

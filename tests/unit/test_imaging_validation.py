"""The upload validation table (tests/data/cases.json) and the order of the checks in derive()."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from photo_organizer.errors import ConfigurationError, InvalidImageError, PermanentError, RejectionReason
from photo_organizer.imaging import DerivativeSpec, derive, sniff_format
from photo_organizer.models import ImageFormat

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CASES = [case for case in json.loads((DATA / "cases.json").read_text())["cases"] if case["check"] == "derive"]


def test_every_case_in_the_table_has_its_file_and_a_known_outcome():
    allowed = {"READY"} | {reason.value for reason in RejectionReason}
    for case in json.loads((DATA / "cases.json").read_text())["cases"]:
        assert case["expected"] in allowed, case
        if case["check"] == "derive":
            assert (DATA / case["file"]).is_file(), case["file"]
        else:
            assert case["check"] == "size_limit" and case["file"] is None, case


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_upload_gets_the_outcome_the_table_expects_whatever_was_declared(case):
    data = (DATA / case["file"]).read_bytes()
    if case["expected"] == "READY":
        derived = derive(data)
        assert derived.metadata.format == ImageFormat(case["format"])
        assert derived.metadata.byte_size == len(data)
        assert derived.preview_jpeg.startswith(b"\xff\xd8\xff")
        assert derived.thumbnail_webp[:4] == b"RIFF" and derived.thumbnail_webp[8:12] == b"WEBP"
    else:
        with pytest.raises(InvalidImageError) as caught:
            derive(data)
        assert caught.value.reason == RejectionReason(case["expected"])
        assert isinstance(caught.value, PermanentError)
        assert caught.value.message  # a user-facing sentence exists for every reason


def test_png_renamed_to_jpg_is_accepted_as_the_png_it_really_is():
    data = (DATA / "good" / "png_named.jpg").read_bytes()
    assert derive(data).metadata.format is ImageFormat.PNG


def test_pixel_limit_is_checked_from_the_header_before_any_decoding():
    # The crafted bomb has only a few rows of pixel data: decoding it would fail as corrupt, so getting
    # too_many_pixels proves the check ran first.
    data = (DATA / "bad" / "bomb_30000x30000.png").read_bytes()
    with pytest.raises(InvalidImageError) as caught:
        derive(data)
    assert caught.value.reason is RejectionReason.TOO_MANY_PIXELS
    assert "30000x30000" in caught.value.detail


def test_pixel_limit_comes_from_the_spec():
    data = (SAMPLES / "rocket.jpg").read_bytes()  # 640x427 = 273,280 pixels
    assert derive(data, DerivativeSpec(max_pixels=640 * 427)).metadata.width == 640
    with pytest.raises(InvalidImageError) as caught:
        derive(data, DerivativeSpec(max_pixels=640 * 427 - 1))
    assert caught.value.reason is RejectionReason.TOO_MANY_PIXELS


def test_pillows_global_pixel_limit_neither_rejects_nor_warns_within_our_limit(monkeypatch):
    # Pillow's own limit (MAX_IMAGE_PIXELS, a warning at 89 MP) must not contradict DerivativeSpec.max_pixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = (SAMPLES / "rocket.jpg").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert derive(data).metadata.height == 427


def test_truncated_photo_is_rejected_although_pillow_verify_passes_it():
    data = (DATA / "bad" / "truncated_half.jpg").read_bytes()
    Image.open(io.BytesIO(data)).verify()  # the trap: no error here
    with pytest.raises(InvalidImageError) as caught:
        derive(data)
    assert caught.value.reason is RejectionReason.CORRUPT_IMAGE


def test_derive_refuses_to_run_when_pillow_would_pad_truncated_files(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigurationError):
        derive((SAMPLES / "rocket.jpg").read_bytes())


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", ImageFormat.JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ImageFormat.PNG),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", ImageFormat.WEBP),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", ImageFormat.HEIF),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf", ImageFormat.HEIF),
        (b"\x00\x00\x00\x18ftyphevc\x00\x00\x00\x00mif1hevc", ImageFormat.HEIF),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", None),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", None),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # MP4 video
        (b"GIF89a\x10\x00\x10\x00", None),
        (b"II*\x00\x08\x00\x00\x00", None),  # TIFF
        (b"MM\x00*\x00\x00\x00\x08", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
        (b"<!DOCTYPE html><html>", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"\xff\xd8", None),  # too short to be a JPEG
        (b"", None),
    ],
)
def test_format_is_sniffed_from_magic_bytes_only(head, expected):
    assert sniff_format(head) == expected

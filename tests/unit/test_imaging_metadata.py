"""What derive() learns from the bytes: EXIF time, place and camera, orientation, hashes."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from photo_organizer.imaging import derive
from photo_organizer.imaging.exif import capture_time, clean_text, gps_point, parse_exif_datetime, read_exif
from photo_organizer.models import ImageFormat

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DATA = Path(__file__).resolve().parents[1] / "data"


def jpeg_with_exif(exif: Image.Exif, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 150)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_camera_sample_yields_time_with_offset_place_camera_and_upright_size():
    data = (SAMPLES / "coffee_exif_gps.jpg").read_bytes()
    meta = derive(data).metadata
    assert meta.format is ImageFormat.JPEG
    assert (meta.width, meta.height) == (400, 600)  # stored 600x400, orientation 6
    assert meta.orientation == 6
    assert meta.taken_at == datetime(2024, 5, 17, 10, 11, 12, tzinfo=timezone(timedelta(hours=-5)))
    assert meta.taken_at_offset == "-05:00"
    assert meta.gps is not None
    assert meta.gps.lat == pytest.approx(43.0731, abs=1e-4)
    assert meta.gps.lon == pytest.approx(-89.4012, abs=1e-4)
    assert (meta.camera_make, meta.camera_model) == ("TestCam", "X100")
    assert meta.byte_size == len(data)
    assert meta.sha256 == hashlib.sha256(data).hexdigest()


def test_camera_strings_lose_nuls_and_padding():
    meta = derive((DATA / "good" / "gps_exif.jpg").read_bytes()).metadata
    assert (meta.camera_make, meta.camera_model) == ("Fujifilm", "X-T4")
    assert meta.gps is not None
    assert (round(meta.gps.lat, 4), round(meta.gps.lon, 4), meta.gps.altitude_m) == (43.0731, -89.4012, 266.0)


def test_heic_keeps_its_exif_for_metadata():
    meta = derive((DATA / "good" / "coffee_gps.heic").read_bytes()).metadata
    assert meta.format is ImageFormat.HEIF
    assert (meta.width, meta.height) == (240, 160)
    assert meta.taken_at == datetime(2023, 8, 14, 18, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert meta.gps is not None and meta.gps.lat == pytest.approx(43.0731, abs=1e-4)
    assert meta.camera_make == "Fujifilm"


def test_heic_sample_and_its_jpeg_original_agree_on_size_and_camera():
    heic = derive((SAMPLES / "obama3.heic").read_bytes()).metadata
    jpeg = derive((SAMPLES / "obama3.jpg").read_bytes()).metadata
    assert (heic.width, heic.height) == (jpeg.width, jpeg.height) == (1434, 2333)
    assert heic.camera_model == jpeg.camera_model == "Canon EOS 5D Mark II"
    assert heic.taken_at == jpeg.taken_at == datetime(2010, 5, 10, 10, 4, 1)


def test_photo_without_exif_has_no_time_place_camera_or_orientation():
    meta = derive((SAMPLES / "astronaut.png").read_bytes()).metadata
    assert (meta.taken_at, meta.taken_at_offset, meta.gps, meta.camera_make, meta.orientation) == (None,) * 5


def test_date_without_offset_stays_naive():
    exif = Image.Exif()
    exif[0x8769] = {0x9003: "2019:01:02 03:04:05"}
    meta = derive(jpeg_with_exif(exif)).metadata
    assert meta.taken_at == datetime(2019, 1, 2, 3, 4, 5) and meta.taken_at.tzinfo is None
    assert meta.taken_at_offset is None


def test_capture_time_falls_back_to_digitized_then_to_datetime():
    assert capture_time(Image.Exif(), {0x9004: "2001:02:03 04:05:06", 0x9012: "+05:30"}) == (
        datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "+05:30",
    )
    ifd0 = Image.Exif()
    ifd0[0x0132] = "2002:03:04 05:06:07"
    assert capture_time(ifd0, {0x9003: "0000:00:00 00:00:00", 0x9010: "-03:00"}) == (
        datetime(2002, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-3))),
        "-03:00",
    )


@pytest.mark.parametrize(
    "raw",
    [
        "0000:00:00 00:00:00",
        "    :  :     :  :  ",
        "2020:13:01 00:00:00",
        "2020:02:30 12:00:00",
        "yesterday",
        b"\xff\xfe",
        42,
        None,
    ],
)
def test_garbage_dates_are_ignored(raw):
    assert parse_exif_datetime(raw) is None


def test_garbage_offset_leaves_the_time_naive():
    time, offset = capture_time(Image.Exif(), {0x9003: "2020:06:01 12:00:00", 0x9011: "+25:00"})
    assert time == datetime(2020, 6, 1, 12, 0) and time.tzinfo is None and offset is None


def gps(lat=(43.0, 4.0, 23.16), lat_ref="N", lon=(89.0, 24.0, 4.32), lon_ref="W", altitude_ref=None, altitude=None):
    ifd = {1: lat_ref, 2: lat, 3: lon_ref, 4: lon}
    if altitude is not None:
        ifd |= {5: altitude_ref if altitude_ref is not None else 0, 6: altitude}
    return ifd


def test_gps_south_and_east_are_negative_latitude_and_positive_longitude():
    point = gps_point(gps(lat=(33.0, 52.0, 4.0), lat_ref="S", lon=(151.0, 12.0, 36.0), lon_ref="E"))
    assert point is not None
    assert point.lat == pytest.approx(-33.867778, abs=1e-6) and point.lon == pytest.approx(151.21, abs=1e-6)


def test_gps_altitude_below_sea_level_is_negative():
    point = gps_point(gps(altitude_ref=b"\x01", altitude=IFDRational(430, 1)))
    assert point is not None and point.altitude_m == -430.0


@pytest.mark.parametrize(
    "ifd",
    [
        gps(lat=(91.0, 0.0, 0.0)),
        gps(lon=(181.0, 0.0, 0.0)),
        gps(lat=(43.0, 75.0, 0.0)),  # minutes past 60
        gps(lat=(IFDRational(1, 0), 0.0, 0.0)),  # zero denominator
        gps(lat_ref="X"),
        gps(lon_ref=""),
        gps(lat=(0.0, 0.0, 0.0), lon=(0.0, 0.0, 0.0)),  # what phones write without a fix
        gps(lat="garbage"),
        {},
    ],
)
def test_impossible_or_ambiguous_gps_gives_no_place(ifd):
    assert gps_point(ifd) is None


def test_impossible_altitude_is_dropped_but_keeps_the_place():
    point = gps_point(gps(altitude=IFDRational(5, 0)))
    assert point is not None and point.altitude_m is None and point.lat == pytest.approx(43.0731, abs=1e-4)


def test_read_exif_survives_a_gps_entry_of_the_wrong_type():
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    exif[0x8825] = {2: Fraction(1, 3)}  # latitude without a reference
    facts = read_exif(Image.open(io.BytesIO(jpeg_with_exif(exif))).getexif())
    assert facts.camera_make == "Cam" and facts.gps is None


@pytest.mark.parametrize(
    ("raw", "clean"), [("Canon\x00\x00", "Canon"), (b"  NIKON  ", "NIKON"), ("\x00", None), (7, None)]
)
def test_camera_text_is_cleaned(raw, clean):
    assert clean_text(raw) == clean


@pytest.mark.parametrize("orientation", [0, 9, 255])
def test_out_of_range_orientation_is_reported_as_unknown_and_not_applied(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    meta = derive(jpeg_with_exif(exif, (64, 48))).metadata
    assert meta.orientation is None and (meta.width, meta.height) == (64, 48)

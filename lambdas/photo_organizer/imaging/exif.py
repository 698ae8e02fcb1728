"""What the EXIF block says about a photo: capture time, place, camera, orientation.

Cameras and editors write every kind of garbage here; each reader returns None rather than raise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from PIL import Image
from PIL.ExifTags import IFD, Base, GPS

from photo_organizer.models import GeoPoint

# Which transpose turns an image with this EXIF orientation upright (same table as ImageOps.exif_transpose).
TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPS_AXES = frozenset({5, 6, 7, 8})

_DATE = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})\s*$")
_MAX_TEXT = 128
# Capture years outside this range are a clock that was never set (0000, 1904, 9999), not a time: near year 9999
# the UTC value (and a timeline's month arithmetic) overflows Python's datetime, which once stopped the ingest.
_FIRST_YEAR, _LAST_YEAR = 1800, 2199


@dataclass(frozen=True)
class ExifFacts:
    taken_at: datetime | None = None
    taken_at_offset: str | None = None
    gps: GeoPoint | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = None


def read_exif(exif: Image.Exif) -> ExifFacts:
    try:
        sub = exif.get_ifd(IFD.Exif)
    except Exception:  # a broken sub-IFD pointer must not cost us the rest
        sub = {}
    try:
        gps_ifd = exif.get_ifd(IFD.GPSInfo)
    except Exception:
        gps_ifd = {}
    taken_at, offset = capture_time(exif, sub)
    return ExifFacts(
        taken_at=taken_at,
        taken_at_offset=offset,
        gps=gps_point(gps_ifd),
        camera_make=clean_text(exif.get(Base.Make)),
        camera_model=clean_text(exif.get(Base.Model)),
        orientation=orientation_of(exif),
    )


def orientation_of(exif: Image.Exif) -> int | None:
    value = exif.get(Base.Orientation)
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def capture_time(ifd0: Image.Exif, sub: dict) -> tuple[datetime | None, str | None]:
    """DateTimeOriginal, else DateTimeDigitized, else DateTime; aware only when an offset was recorded."""
    candidates = (
        (sub.get(Base.DateTimeOriginal), sub.get(Base.OffsetTimeOriginal)),
        (sub.get(Base.DateTimeDigitized), sub.get(Base.OffsetTimeDigitized)),
        (ifd0.get(Base.DateTime), None),
    )
    fallback_offset = sub.get(Base.OffsetTime)
    for raw_date, raw_offset in candidates:
        naive = parse_exif_datetime(raw_date)
        if naive is None:
            continue
        offset = parse_offset(raw_offset) or parse_offset(fallback_offset)
        if offset is None:
            return naive, None
        tz, text = offset
        return naive.replace(tzinfo=tz), text
    return None, None


def parse_exif_datetime(raw: object) -> datetime | None:
    text = _as_text(raw)
    match = _DATE.match(text) if text else None
    if not match:
        return None
    try:
        parsed = datetime(*(int(part) for part in match.groups()))
    except ValueError:  # 0000:00:00, month 13, ...
        return None
    return parsed if _FIRST_YEAR <= parsed.year <= _LAST_YEAR else None


def parse_offset(raw: object) -> tuple[timezone, str] | None:
    text = _as_text(raw)
    match = _OFFSET.match(text) if text else None
    if not match:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    if hours > 14 or minutes >= 60:  # real UTC offsets run from -12:00 to +14:00
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta), f"{sign}{hours:02d}:{minutes:02d}"


def gps_point(gps: dict) -> GeoPoint | None:
    lat = _degrees(gps.get(GPS.GPSLatitude), 90)
    lon = _degrees(gps.get(GPS.GPSLongitude), 180)
    lat_ref = _as_text(gps.get(GPS.GPSLatitudeRef)).upper()
    lon_ref = _as_text(gps.get(GPS.GPSLongitudeRef)).upper()
    # Without its reference a coordinate could be in either hemisphere: better no place than a wrong one.
    if lat is None or lon is None or lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return None
    if lat == 0 and lon == 0:  # what phones write when they had no fix
        return None
    return GeoPoint(
        lat=-lat if lat_ref == "S" else lat,
        lon=-lon if lon_ref == "W" else lon,
        altitude_m=_altitude(gps.get(GPS.GPSAltitude), gps.get(GPS.GPSAltitudeRef)),
    )


def _degrees(value: object, limit: float) -> float | None:
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(n) and n >= 0 for n in numbers) or any(n >= 60 for n in numbers[1:]):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    return round(degrees, 7) if degrees <= limit else None


def _altitude(value: object, ref: object) -> float | None:
    try:
        metres = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(metres) or not 0 <= metres <= 100_000:
        return None
    below_sea_level = ref in (1, b"\x01", "\x01")
    return round(-metres if below_sea_level else metres, 2)


def clean_text(raw: object) -> str | None:
    text = "".join(ch for ch in _as_text(raw).replace("\x00", "") if ch.isprintable()).strip()
    return text[:_MAX_TEXT] or None


def _as_text(raw: object) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return raw if isinstance(raw, str) else ""

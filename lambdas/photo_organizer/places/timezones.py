"""The photographer's local time: from the camera's recorded UTC offset, else from the GPS point's time zone.

EXIF DateTimeOriginal is a naive wall-clock time. Newer cameras also write OffsetTimeOriginal ('+02:00'); when they
do, it wins: it is what the camera's clock actually was. Otherwise, with a GPS fix, the IANA zone at that point
(timezonefinder, offline polygons) says which offset was in force. Otherwise we cannot know: the naive time is read
as UTC and marked `unknown`, so nothing downstream mistakes it for a real instant.

DST edge cases, resolved deterministically (zoneinfo's fold=0):
- a repeated hour (fold, e.g. 01:30 on the US fall-back night) is read as its first occurrence, still on summer time;
- a missing hour (gap, e.g. 02:30 on the US spring-forward night) is read with the offset in force before the jump,
  as a camera whose clock was not yet moved forward would mean it, then shown on the real wall clock (03:30).

Measured on the 2-core dev machine (3 fresh processes, 1000 points): the first zone lookup in a process costs
0.33-0.56 s (import timezonefinder + h3, open the packaged boundary data), +22 MB peak RSS; then ~0.003-0.007 ms per
zone lookup, and ~0.04-0.07 ms for a whole local_time() (zone lookup + zoneinfo conversion + model).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from photo_organizer.models import GeoPoint, ImageMetadata
from photo_organizer.places.geocode import is_usable_point
from photo_organizer.places.models import LocalTime

_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")
_MAX_OFFSET = timedelta(hours=14)

_finder_lock = threading.Lock()
_finder: Any = None


def _timezone_finder() -> Any:
    global _finder
    if _finder is None:
        with _finder_lock:
            if _finder is None:
                from timezonefinder import TimezoneFinder

                _finder = TimezoneFinder()
    return _finder


def zone_name_at(point: GeoPoint | None) -> str | None:
    """IANA zone at a point ('America/Chicago'; 'Etc/GMT+3' at sea), or None for no usable point."""
    if not is_usable_point(point):
        return None
    assert point is not None
    finder = _timezone_finder()
    # One lock: timezonefinder does not promise its lookups are thread-safe, and a lookup is only ~0.05 ms.
    with _finder_lock:
        name = finder.timezone_at(lng=point.lon, lat=point.lat)
    return name or None


def parse_offset(text: str | None) -> timezone | None:
    """'+02:00' / '-0530' -> a fixed offset; None for missing, malformed or beyond +/-14:00."""
    if not text:
        return None
    match = _OFFSET.match(text)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    if int(minutes) >= 60:
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > _MAX_OFFSET:
        return None
    return timezone(-delta if sign == "-" else delta)


def local_time(taken_at: datetime, taken_at_offset: str | None, gps: GeoPoint | None) -> LocalTime:
    camera_offset = parse_offset(taken_at_offset)
    if camera_offset is None and taken_at.tzinfo is not None and taken_at.utcoffset() is not None:
        # Ingest already attached the camera's offset to the datetime; the string may have been dropped.
        camera_offset = timezone(taken_at.utcoffset())  # type: ignore[arg-type]
    if camera_offset is not None:
        return _from_camera_offset(taken_at, camera_offset, gps)

    zone = _zone(zone_name_at(gps))
    if zone is not None:
        naive = taken_at.replace(tzinfo=None)
        utc = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
        return LocalTime(local=utc.astimezone(zone), utc=utc, tz_name=zone.key, source="gps_timezone")

    utc = taken_at.replace(tzinfo=UTC)
    return LocalTime(local=utc, utc=utc, tz_name=None, source="unknown")


def local_time_of(metadata: ImageMetadata) -> LocalTime | None:
    """The photo's local time, or None when it has no capture time at all."""
    if metadata.taken_at is None:
        return None
    return local_time(metadata.taken_at, metadata.taken_at_offset, metadata.gps)


def _from_camera_offset(taken_at: datetime, offset: timezone, gps: GeoPoint | None) -> LocalTime:
    if taken_at.tzinfo is None:
        local = taken_at.replace(tzinfo=offset)
    else:
        local = taken_at.astimezone(offset)
    utc = local.astimezone(UTC)
    # Name the zone only when the GPS zone agrees with the camera at that instant: a camera left on home time
    # abroad keeps its own offset, and we do not put a misleading zone name next to it.
    tz_name = None
    zone = _zone(zone_name_at(gps))
    if zone is not None and utc.astimezone(zone).utcoffset() == offset.utcoffset(None):
        tz_name = zone.key
    return LocalTime(local=local, utc=utc, tz_name=tz_name, source="exif_offset")


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None

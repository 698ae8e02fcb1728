"""Places and local times in the shape the analysis pipeline stores (analysis.store.StoredPlace)."""

from __future__ import annotations

from datetime import datetime

from photo_organizer.ports.analysis import LocalTimeResolver, PlaceResolver
from photo_organizer.analysis.store import StoredPlace
from photo_organizer.models import GeoPoint
from photo_organizer.places.geocode import ReverseGeocoder
from photo_organizer.places.timezones import local_time

# Beyond this the nearest town says little about where a photo was taken (at sea, in a desert).
MAX_PLACE_DISTANCE_KM = 75.0


def place_resolver(geocoder: ReverseGeocoder | None = None) -> PlaceResolver:
    geocoder = geocoder or ReverseGeocoder(max_distance_km=MAX_PLACE_DISTANCE_KM)

    def resolve(point: GeoPoint) -> StoredPlace | None:
        place = geocoder.lookup_one(point)
        if place is None:
            return None
        return StoredPlace(
            city=place.city,
            region=place.region,
            country_code=place.country_code,
            country=place.country,
            lat=point.lat,
            lon=point.lon,
        )

    return resolve


def resolve_local_time(
    taken_at: datetime | None, taken_at_offset: str | None, gps: GeoPoint | None
) -> tuple[datetime | None, str | None]:
    if taken_at is None:
        return None, None
    moment = local_time(taken_at, taken_at_offset, gps)
    return moment.local, moment.tz_name


local_time_resolver: LocalTimeResolver = resolve_local_time

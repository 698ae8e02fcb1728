"""What a photo's GPS and EXIF clock say about where and when it was taken."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TimeSource = Literal["exif_offset", "gps_timezone", "unknown"]


class Place(BaseModel):
    """The populated place (GeoNames, population >= 1000) nearest to the photo's GPS point.

    `lat`/`lon` are the town's coordinates, not the photo's. There is no distance cut-off by default: a photo taken
    at sea or in a desert still names the nearest town, and `distance_km` lets the caller say "near Lagos" or drop it.
    """

    model_config = ConfigDict(frozen=True)

    city: str
    region: str | None = Field(default=None, description="First-level division (state, province, district).")
    country_code: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 (XK for Kosovo, as GeoNames).")
    country: str
    lat: float
    lon: float
    distance_km: float = Field(ge=0, description="Great-circle distance from the (rounded) photo point to the town.")

    @property
    def label(self) -> str:
        """Short form for captions: "Lagos, Portugal"."""
        return f"{self.city}, {self.country}"


class LocalTime(BaseModel):
    """The capture instant, on the photographer's wall clock and in UTC, and how we know the offset."""

    model_config = ConfigDict(frozen=True)

    local: datetime = Field(description="Timezone-aware wall-clock time where the photo was taken.")
    utc: datetime = Field(description="The same instant in UTC.")
    tz_name: str | None = Field(default=None, description="IANA zone, e.g. 'Europe/Lisbon', when known.")
    source: TimeSource

    @field_validator("local", "utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        return value

    @property
    def offset(self) -> str:
        """The wall clock's UTC offset as '+HH:MM' (the same shape EXIF OffsetTime uses)."""
        minutes = int(self.local.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
        sign = "-" if minutes < 0 else "+"
        hours, mins = divmod(abs(minutes), 60)
        return f"{sign}{hours:02d}:{mins:02d}"

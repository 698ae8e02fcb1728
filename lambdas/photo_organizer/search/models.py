"""The search index document and the query/result shapes every SearchIndex adapter speaks.

One document per photo, built from the photo record and its analysis (the DynamoDB item as the stream sees
it, or the SQLite rows). `version` orders writes: an adapter never lets an older version overwrite a newer one
(OpenSearch external versioning; the local index compares before writing).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class IndexedPerson(_Frozen):
    person_id: str
    name: str | None = None


class IndexedPlace(_Frozen):
    city: str | None = None
    region: str | None = None
    country: str | None = None
    country_code: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class SearchDocument(_Frozen):
    owner: str
    photo_id: str
    version: int = Field(ge=0, description="Monotonic per photo (e.g. the record's updated_at in microseconds).")
    taken_at: datetime | None = None
    uploaded_at: datetime
    filename: str = ""
    tags: tuple[str, ...] = Field(default=(), description="Label names with every parent: 'dog' brings 'animal'.")
    weak_tags: tuple[str, ...] = Field(default=(), description="Weak labels' names with their parents (not in "
                                       "tags): found by an understood tag, ranked below a tag; never a facet.")
    people: tuple[IndexedPerson, ...] = ()
    place: IndexedPlace | None = None
    ocr_text: str = ""
    caption: str = ""
    camera: str | None = None
    sensitive: bool = False
    hidden: bool = False
    duplicate_of: str | None = None
    embedding: tuple[float, ...] | None = Field(default=None, description=f"{EMBEDDING_DIMENSIONS}-d, L2-normalised.")

    @property
    def sort_time(self) -> datetime:
        return self.taken_at or self.uploaded_at


class DateRange(_Frozen):
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


class GeoFilter(_Frozen):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    km: float = Field(gt=0, le=20000)


class SortOrder(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"


class QueryPart(_Frozen):
    """An understood tag or place of the phrase: it ranks, it does not filter. A photo satisfies the part when it
    carries the tag (or place) as a keyword, or any of `words` appears in its text fields (OCR included): a
    dog photographed in Lisbon whose place was never geocoded still has "LISBOA" on a sign."""

    kind: str = Field(pattern="^(tag|place)$")
    value: str
    words: tuple[str, ...] = Field(default=(), description="Plain words standing for the part: its own words, "
                                   "what the user typed, synonyms.")


class SearchQuery(_Frozen):
    """A fully parsed query. The owner always comes from the verified token, never from the request."""

    owner: str
    text: str = Field(default="", description="Free text; always plain text, never query syntax.")
    tags: tuple[str, ...] = ()
    people: tuple[str, ...] = Field(default=(), description="Person ids; all must be in the photo.")
    place: str | None = None
    dates: DateRange | None = None
    near: GeoFilter | None = None
    camera: str | None = None
    include_hidden: bool = False
    include_sensitive: bool = False
    sort: SortOrder = SortOrder.RELEVANCE
    limit: int = Field(default=50, ge=1, le=200)
    after: tuple | None = Field(default=None, description="search_after values of the last hit (from a cursor).")
    embedding: tuple[float, ...] | None = Field(default=None, description="Query embedding for semantic recall.")
    parts: tuple[QueryPart, ...] = Field(default=(), description="Understood tags/places: strong boosts, each "
                                         "required unless `relaxed`.")
    relaxed: bool = Field(default=False, description="Parts and free-text words become optional (at least one "
                          "must match); the strict reading found nothing.")


class MatchReason(_Frozen):
    field: str  # tags, people, place, ocr_text, caption, filename, camera, meaning
    terms: tuple[str, ...] = ()


class SearchHit(_Frozen):
    photo_id: str
    score: float
    sort_values: tuple = Field(description="Opaque values for search_after.")
    matched: tuple[MatchReason, ...] = ()
    semantic_only: bool = False


class FacetValue(_Frozen):
    value: str
    count: int
    label: str | None = Field(default=None, description="Display name when value is an id (people: the name).")


def facet_order(name: str, values: list[FacetValue]) -> tuple[FacetValue, ...]:
    """Both indexes' facet order: years newest first, every other facet by count, then value."""
    if name == "years":
        return tuple(sorted(values, key=lambda f: f.value, reverse=True))
    return tuple(sorted(values, key=lambda f: (-f.count, f.value)))


class SearchResults(_Frozen):
    hits: tuple[SearchHit, ...]
    total: int
    facets: dict[str, tuple[FacetValue, ...]] = Field(default_factory=dict)

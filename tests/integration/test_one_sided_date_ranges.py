"""A date range open on one side (`GET /search?from=` without `to`, or the reverse) answered 500 (issue 13's
review: tantivy refuses an exclusive unbounded side). The local index is searched for real; for OpenSearch, where
no cluster runs here, the request body is checked (a one-sided `range` on sort_time, the end exclusive)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from photo_organizer.adapters.aws.opensearch_requests import search_body
from photo_organizer.adapters.local.search_index import LocalSearchIndex
from photo_organizer.search.models import DateRange, SearchDocument, SearchQuery

T0 = datetime(2023, 6, 1, 12, 0, tzinfo=timezone.utc)
OWNER = "alice"


@pytest.fixture
def index(tmp_path):
    local = LocalSearchIndex(tmp_path / "search")
    local.upsert([
        SearchDocument(owner=OWNER, photo_id=f"p{day}", version=1, uploaded_at=T0 + timedelta(days=day),
                       taken_at=T0 + timedelta(days=day), tags=("beach",))
        for day in range(5)
    ])
    yield local
    local.close()


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (DateRange(start=T0 + timedelta(days=3)), {"p3", "p4"}),
        (DateRange(end=T0 + timedelta(days=2)), {"p0", "p1"}),  # the end stays exclusive
        (DateRange(start=T0 + timedelta(days=1), end=T0 + timedelta(days=3)), {"p1", "p2"}),
    ],
)
def test_local_index_searches_one_sided_and_two_sided_ranges(index, dates, expected):
    for text in ("", "beach"):
        hits = index.search(SearchQuery(owner=OWNER, text=text, dates=dates)).hits
        assert {hit.photo_id for hit in hits} == expected, text


@pytest.mark.parametrize(
    ("dates", "bounds"),
    [
        (DateRange(start=T0), {"gte": "2023-06-01T12:00:00Z"}),
        (DateRange(end=T0), {"lt": "2023-06-01T12:00:00Z"}),
    ],
)
def test_opensearch_one_sided_range_request_body(dates, bounds):
    body = search_body(SearchQuery(owner=OWNER, text="beach", dates=dates), facets=False)
    ranges = [f["range"] for f in body["query"]["bool"]["filter"] if "range" in f]
    assert ranges == [{"sort_time": bounds}]

"""The search ports: the SearchIndex (OpenSearch in the cloud, an embedded index locally, with the same semantics)
and the stream indexer's SearchWriter (versioned bulk writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from photo_organizer.search.models import FacetValue, SearchDocument, SearchQuery, SearchResults
from photo_organizer.search.writes import IndexWrite, WriteResult


class SearchIndex(Protocol):
    """An adapter that cannot store or search vectors sets `supports_vectors = False` (OpenSearch Serverless,
    a SEARCH collection): it drops document embeddings and ignores a query's. Read it through
    `supports_vectors()`, which is True for an adapter that does not say (the local index, the domain)."""

    def upsert(self, documents: list[SearchDocument]) -> list[str]:
        """Writes documents; one whose version is not newer than the stored one is skipped (returns the
        photo ids actually written)."""
        ...

    def delete(self, owner: str, photo_id: str, *, version: int) -> None:
        """Removes a photo's document unless a newer version was written after the delete was decided."""
        ...

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults: ...

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict[str, tuple[FacetValue, ...]]:
        """Tags, people and places of this owner that start with prefix, with counts."""
        ...

    def count(self, owner: str) -> int: ...

    def vocabulary(self, owner: str) -> dict[str, tuple[str, ...]]:
        """{"tags": every tag and weak tag, "places": every city} of the owner's photos (not only the most common,
        as facets): what query understanding may turn into tag and place parts. Optional: the search service
        falls back to the facets."""
        ...

    def forget_owner(self, owner: str) -> int:
        """Account erasure: deletes every live document of the owner; returns how many there were."""
        ...


def supports_vectors(index: object) -> bool:
    """Whether the index keeps embeddings and runs vector (semantic) queries: only an adapter that says
    `supports_vectors = False` does not."""
    return bool(getattr(index, "supports_vectors", True))


class SearchWriter(Protocol):
    """The stream indexer's side of the index: versioned writes in one request, one result per write."""

    def write(self, writes: Sequence[IndexWrite]) -> list[WriteResult]: ...

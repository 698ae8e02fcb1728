"""Versioned writes to a search index, as the stream indexer plans them from the table's change records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from photo_organizer.search.models import SearchDocument


@dataclass(frozen=True)
class IndexWrite:
    """One versioned write: the document, or a tombstone when document is None."""

    owner: str
    photo_id: str
    version: int
    document: SearchDocument | None = None

    @classmethod
    def of(cls, document: SearchDocument) -> IndexWrite:
        return cls(document.owner, document.photo_id, document.version, document)

    @property
    def doc_id(self) -> str:
        return document_id(self.owner, self.photo_id)


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    NOT_NEWER = "not_newer"  # 409: the index already holds this version or a newer one
    RETRYABLE = "retryable"  # 429 / 5xx on this item
    FAILED = "failed"  # anything else (a mapping error): retrying gives the same answer


@dataclass(frozen=True)
class WriteResult:
    write: IndexWrite
    outcome: WriteOutcome
    reason: str = ""


def document_id(owner: str, photo_id: str) -> str:
    return f"{owner}#{photo_id}"

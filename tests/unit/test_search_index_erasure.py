"""Account erasure deletes the owner's documents from the local (tantivy) index itself, not only through each
photo's delete: a document whose photo record was already gone (a crash between the record and the index) used
to stay searchable. The ledger keeps no row of the owner afterwards; another owner's documents stay."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from photo_organizer import bootstrap
from photo_organizer.search.models import SearchDocument

pytest.importorskip("tantivy", reason="the local search index is part of the `local` extra")

LEAVING, STAYING = "leaving-owner", "staying-owner"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def _document(owner: str, photo_id: str) -> SearchDocument:
    return SearchDocument(owner=owner, photo_id=photo_id, version=1, uploaded_at=T0, filename=f"{photo_id}.jpg",
                          tags=("beach",), caption="a beach")


def test_erasure_deletes_the_owners_orphan_documents_and_ledger_rows_from_the_local_index(tmp_path) -> None:
    services = bootstrap.build_services(bootstrap.local_settings(tmp_path))
    index = services.search_index
    index.upsert([_document(LEAVING, "orphan-1"), _document(LEAVING, "orphan-2"), _document(STAYING, "kept")])
    index.delete(LEAVING, "deleted-before", version=1)  # a tombstone row of the owner in the ledger
    assert index.count(LEAVING) == 2

    report = services.account.erase(LEAVING)

    assert report.search_documents == 2 and report.remaining == []
    assert index.count(LEAVING) == 0 and index.count(STAYING) == 1
    ledger = sqlite3.connect(tmp_path / "search" / "ledger.sqlite3")
    assert ledger.execute("SELECT COUNT(*) FROM docs WHERE owner = ?", (LEAVING,)).fetchone()[0] == 0
    assert services.account.erase(LEAVING).search_documents == 0

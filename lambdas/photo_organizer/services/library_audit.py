"""Library audit: one owner's blobs, photo records and search documents compared, to say whether anything was lost
or doubled (the fault suite ends every fault with it; `photo-organizer audit` runs it on a library).

The records are the truth. Per status, what must exist beside a record:
- READY: the original, the preview and the thumbnail, and exactly one live search document at least as new as
  the record (an index that follows the records: a document older than the record's `updated_at` is stale);
- DUPLICATE: its blobs like READY (the user sees it as a duplicate of the holder), no search document;
- PENDING_UPLOAD: at most the uploaded original, no derivatives (derivatives beside a pending record are a
  half-finished ingest: the redelivered event completes it);
- REJECTED: no derivatives, no original (the quarantine copy only when quarantining).
Anything under the owner's prefixes whose photo has no record is an orphan blob, any live document whose photo has
no searchable record an orphaned document, and two READY records with the same content hash are a doubled photo.

Account erasure's audit asks "what of this owner remains anywhere"; this one asks "do the stores agree". Both read
blob keys from photo_organizer.keys, so neither guesses a layout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from photo_organizer.keys import PhotoKeys, check_owner
from photo_organizer.models import PhotoStatus
from photo_organizer.ports.storage import BlobStore, MetadataStore
from photo_organizer.services.indexing import record_version


class Finding(StrEnum):
    BLOB_WITHOUT_RECORD = "blob_without_record"
    MISSING_BLOB = "record_without_blob"
    UNFINISHED_DERIVATIVE = "derivative_of_unfinished_photo"
    LEFTOVER_ORIGINAL = "original_of_rejected_photo"
    NOT_INDEXED = "ready_not_indexed"
    STALE_DOCUMENT = "stale_document"
    ORPHANED_DOCUMENT = "document_without_searchable_record"
    DUPLICATE_CONTENT = "same_content_ready_twice"


@dataclass(frozen=True)
class AuditFinding:
    finding: Finding
    photo_id: str
    detail: str = ""


@dataclass
class LibraryAuditReport:
    owner: str
    records: Counter[str] = field(default_factory=Counter)  # by status
    blobs: int = 0
    documents: int | None = None  # None: no index was asked
    findings: list[AuditFinding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        return dict(Counter(f.finding.value for f in self.findings))

    def lines(self) -> list[str]:
        return [f"{f.finding.value} {f.photo_id} {f.detail}".rstrip() for f in self.findings]


@dataclass
class LibraryAudit:
    metadata: MetadataStore
    originals: BlobStore
    derivatives: BlobStore
    # owner -> {photo_id: version} of the live documents in the search index; None: no index to compare.
    indexed: Callable[[str], Mapping[str, int]] | None = None

    def audit(self, owner: str) -> LibraryAuditReport:
        check_owner(owner)
        report = LibraryAuditReport(owner=owner)
        note = report.findings.append
        photos = {pid: photo for pid in self.metadata.photo_ids(owner) if (photo := self.metadata.get_photo(owner, pid))}
        report.records.update(p.status.value for p in photos.values())
        blobs = self._blobs(owner)
        report.blobs = sum(len(kinds) for kinds in blobs.values())

        for photo_id, kinds in sorted(blobs.items()):
            if photo_id not in photos:
                note(AuditFinding(Finding.BLOB_WITHOUT_RECORD, photo_id, ",".join(sorted(kinds))))
        for photo_id, photo in sorted(photos.items()):
            have = blobs.get(photo_id, set())
            status = photo.status
            if status in (PhotoStatus.READY, PhotoStatus.DUPLICATE):
                for kind in sorted({"original", "preview", "thumbnail"} - have):
                    note(AuditFinding(Finding.MISSING_BLOB, photo_id, f"{status.value} without its {kind}"))
            else:
                for kind in sorted(have & {"preview", "thumbnail"}):
                    note(AuditFinding(Finding.UNFINISHED_DERIVATIVE, photo_id, f"{kind} of a {status.value} photo"))
            if status is PhotoStatus.REJECTED and "original" in have:
                note(AuditFinding(Finding.LEFTOVER_ORIGINAL, photo_id))

        by_hash = Counter(p.metadata.sha256 for p in photos.values() if p.status is PhotoStatus.READY and p.metadata)
        for photo_id, photo in sorted(photos.items()):
            if photo.status is PhotoStatus.READY and photo.metadata and by_hash[photo.metadata.sha256] > 1:
                note(AuditFinding(Finding.DUPLICATE_CONTENT, photo_id, photo.metadata.sha256[:16]))

        if self.indexed is not None:
            documents = dict(self.indexed(owner))
            report.documents = len(documents)
            for photo_id, photo in sorted(photos.items()):
                if photo.status is not PhotoStatus.READY:
                    continue
                if photo_id not in documents:
                    note(AuditFinding(Finding.NOT_INDEXED, photo_id))
                elif documents[photo_id] < record_version(photo):
                    note(AuditFinding(Finding.STALE_DOCUMENT, photo_id,
                                      f"document {documents[photo_id]} < record {record_version(photo)}"))
            for photo_id in sorted(documents):
                photo = photos.get(photo_id)
                if photo is None or photo.status is not PhotoStatus.READY:
                    note(AuditFinding(Finding.ORPHANED_DOCUMENT, photo_id,
                                      photo.status.value if photo is not None else "no record"))
        return report

    def _blobs(self, owner: str) -> dict[str, set[str]]:
        """photo_id -> which of its blobs exist ("original", "quarantine", "preview", "thumbnail")."""
        found: dict[str, set[str]] = {}
        for kind, store, prefix, suffix in PhotoKeys.blob_layout(owner):
            for key in store_of(self, store).keys(prefix):
                photo_id = key[len(prefix):]
                if suffix:
                    photo_id = photo_id.removesuffix(suffix) if photo_id.endswith(suffix) else f"{photo_id} (unknown)"
                found.setdefault(photo_id, set()).add(kind)
        return found


def store_of(audit: LibraryAudit, name: str) -> BlobStore:
    return audit.originals if name == "originals" else audit.derivatives

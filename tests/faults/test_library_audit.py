"""The audit sees what it must: each kind of loss or doubling, made by hand in a clean library of each backend, is
reported (so a clean audit after a fault means something), and another owner's library is never read."""

from __future__ import annotations

from datetime import timedelta

from photo_organizer.keys import PhotoKeys
from photo_organizer.models import PhotoStatus

from fault_library import OTHER, OWNER


def findings(library, owner=OWNER) -> list[tuple[str, str]]:
    return sorted((f.finding.value, f.photo_id) for f in library.audit(owner).findings)


def test_each_kind_of_loss_or_doubling_is_reported(library):
    services = library.services
    lost_blob, orphan, stale, ready = (library.upload(s) for s in ("rocket.jpg", "coffee_exif_gps.jpg",
                                                                    "text.png", "obama2.jpg"))
    library.drain()
    library.assert_clean(ready=4)
    library.assert_clean(OTHER, ready=0)

    services.derivatives.delete(PhotoKeys.for_photo(OWNER, lost_blob).thumbnail)  # a READY photo loses a blob
    orphan_keys = PhotoKeys.for_photo(OWNER, orphan)
    services.metadata.delete_photo(OWNER, orphan)  # the record goes, its blobs stay (and its document)
    photo = services.metadata.get_photo(OWNER, stale)  # the record moves on; the index never hears of it
    if library.kind == "local":
        services.metadata.finish_photo(photo.model_copy(update={"updated_at": photo.updated_at + timedelta(days=1)}),
                                       expected_status=PhotoStatus.READY)
    # A second READY record with the same bytes as `ready` (a doubled photo).
    twin = services.metadata.get_photo(OWNER, ready).model_copy(update={"photo_id": "0" * 32})
    services.metadata.create_photo(twin.model_copy(update={"status": PhotoStatus.PENDING_UPLOAD}),
                                   pending_ttl=timedelta(days=1))
    services.metadata.finish_photo(twin, expected_status=PhotoStatus.PENDING_UPLOAD)
    if library.kind == "aws":
        library.after_drain()  # the stream: the twin is indexed, the deleted record's document tombstoned

    got = findings(library)
    expected = [
        ("blob_without_record", orphan),
        *[("record_without_blob", "0" * 32)] * 3,  # the twin has none of its three blobs
        ("record_without_blob", lost_blob),
        ("same_content_ready_twice", "0" * 32),
        ("same_content_ready_twice", ready),
    ]
    if library.kind == "local":  # the cloud's stream follows every record change; the local index only the service
        expected += [("document_without_searchable_record", orphan), ("ready_not_indexed", "0" * 32),
                     ("stale_document", stale)]
    assert got == sorted(expected)
    assert orphan_keys.preview.endswith(".jpg")
    assert findings(library, OTHER) == []

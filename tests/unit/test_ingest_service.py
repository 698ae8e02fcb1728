"""The ingest use case on the local adapters: state machine, idempotency, crash recovery, rejection handling."""

from dataclasses import replace
from pathlib import Path

import pytest

from photo_organizer.bootstrap import build_services
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.keys import PhotoKeys
from photo_organizer.models import PhotoStatus, UploadRequest
from photo_organizer.services.ingest import IngestOutcome, ObjectCreated
from photo_organizer.settings import RejectedAction, Settings

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OWNER = "owner-1"


@pytest.fixture
def services(tmp_path):
    return build_services(Settings(data_dir=tmp_path))


def uploaded(services, data: bytes, content_type: str = "image/jpeg") -> tuple[str, ObjectCreated]:
    ticket = services.uploads.start(OWNER, UploadRequest(filename="x", content_type=content_type, size=max(len(data), 1)))
    key = PhotoKeys.for_photo(OWNER, ticket.photo_id).original
    services.originals.put(key, data, content_type=content_type)
    return ticket.photo_id, ObjectCreated(bucket="originals", key=key, size=len(data), sequencer="01")


def test_pending_photo_becomes_ready_once_and_a_repeat_changes_nothing(services):
    photo_id, event = uploaded(services, (SAMPLES / "rocket.jpg").read_bytes())
    assert services.ingest.process(event) is IngestOutcome.READY
    first = services.metadata.get_photo(OWNER, photo_id)
    assert services.ingest.process(event) is IngestOutcome.ALREADY_PROCESSED
    assert services.metadata.get_photo(OWNER, photo_id) == first
    assert first.metadata.format == "JPEG" and first.metadata.byte_size == event.size


def test_crash_after_derivatives_before_record_is_redone_on_retry(services, monkeypatch):
    photo_id, event = uploaded(services, (SAMPLES / "chelsea.png").read_bytes(), "image/png")
    real_finish = services.metadata.finish_photo

    def crash(*args, **kwargs):
        raise StorageUnavailableError("connection reset")

    monkeypatch.setattr(services.metadata, "finish_photo", crash)
    with pytest.raises(StorageUnavailableError):
        services.ingest.process(event)
    assert services.metadata.get_photo(OWNER, photo_id).status is PhotoStatus.PENDING_UPLOAD
    monkeypatch.setattr(services.metadata, "finish_photo", real_finish)
    assert services.ingest.process(event) is IngestOutcome.READY
    assert services.metadata.list_photos(OWNER, limit=10, after=None).photos[0].photo_id == photo_id


def test_second_copy_of_the_same_bytes_is_a_duplicate_of_the_first(services):
    data = (SAMPLES / "rocket.jpg").read_bytes()
    first_id, first = uploaded(services, data)
    second_id, second = uploaded(services, data)
    services.ingest.process(first)
    assert services.ingest.process(second) is IngestOutcome.DUPLICATE
    duplicate = services.metadata.get_photo(OWNER, second_id)
    assert duplicate.status is PhotoStatus.DUPLICATE and duplicate.duplicate_of == first_id


def test_after_deleting_the_first_copy_a_new_upload_is_ready_again(services):
    data = (SAMPLES / "rocket.jpg").read_bytes()
    first_id, first = uploaded(services, data)
    services.ingest.process(first)
    services.photos.delete(OWNER, first_id)
    _, again = uploaded(services, data)
    assert services.ingest.process(again) is IngestOutcome.READY


def test_event_for_a_deleted_pending_photo_removes_the_orphan_original(services):
    photo_id, event = uploaded(services, (SAMPLES / "rocket.jpg").read_bytes())
    services.metadata.delete_photo(OWNER, photo_id)
    assert services.ingest.process(event) is IngestOutcome.ORPHAN_REMOVED
    assert not services.originals.exists(event.key)


def test_rejected_bytes_are_quarantined_when_configured(tmp_path):
    services = build_services(Settings(data_dir=tmp_path, rejected_action=RejectedAction.QUARANTINE))
    photo_id, event = uploaded(services, b"GIF89a" + b"\x00" * 64)
    assert services.ingest.process(event) is IngestOutcome.REJECTED
    keys = PhotoKeys.for_photo(OWNER, photo_id)
    assert not services.originals.exists(keys.original) and services.originals.exists(keys.quarantine)
    photo = services.metadata.get_photo(OWNER, photo_id)
    assert photo.status is PhotoStatus.REJECTED and photo.rejection_reason == "unsupported_format"
    services.photos.delete(OWNER, photo_id)
    assert not services.originals.exists(keys.quarantine)


def test_file_larger_than_the_limit_is_rejected_even_if_the_policy_was_bypassed(tmp_path):
    services = build_services(Settings(data_dir=tmp_path))
    small = replace(services.settings, max_upload_bytes=1000)
    services.ingest.settings = small
    photo_id, event = uploaded(services, (SAMPLES / "rocket.jpg").read_bytes())
    assert services.ingest.process(event) is IngestOutcome.REJECTED
    assert services.metadata.get_photo(OWNER, photo_id).rejection_reason == "file_too_large"


def test_zero_byte_upload_is_rejected_as_empty(services):
    photo_id, event = uploaded(services, b"")
    assert services.ingest.process(event) is IngestOutcome.REJECTED
    assert services.metadata.get_photo(OWNER, photo_id).rejection_reason == "empty_file"

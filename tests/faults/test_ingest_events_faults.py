"""Ingest faults on both backends: duplicate and out-of-order events, a poison message in a batch, a crash between
the derivatives and the record. Each ends with the library audit: nothing lost, nothing doubled."""

from __future__ import annotations

import json

import pytest

from photo_organizer.models import PhotoStatus

from fault_library import OTHER, OWNER, SMALL


class Crash(BaseException):
    """The process dying at this point: nothing in the product catches a BaseException that is not an Exception."""


def test_every_event_delivered_three_times_and_in_reverse_order_makes_each_photo_once(library):
    events = [library.start_upload(sample) for sample in SMALL]
    for _ in range(3):
        for _, event in reversed(events):
            library.queue.send(event)
    library.drain()
    assert {library.status(photo_id) for photo_id, _ in events} == {"READY"}
    assert library.queue.dead_letters() == []
    library.assert_clean(ready=len(SMALL))


def test_the_same_bytes_uploaded_twice_become_one_ready_photo_and_one_duplicate(library):
    first = library.upload("rocket.jpg")
    second = library.upload("rocket.jpg")
    library.drain()
    statuses = sorted([library.status(first), library.status(second)])
    assert statuses == ["DUPLICATE", "READY"]
    library.assert_clean(ready=1)


def test_an_event_that_arrives_after_its_photo_was_deleted_leaves_nothing(library):
    photo_id, event = library.start_upload("rocket.jpg")
    library.queue.send(event)
    library.drain()
    library.services.photos.delete(OWNER, photo_id)
    library.queue.send(event)  # a late redelivery of the first event
    library.drain()
    report = library.assert_clean(ready=0)
    assert report.blobs == 0 and sum(report.records.values()) == 0


def test_a_poison_message_fails_alone_and_goes_to_the_dead_letter_queue(library):
    good = [library.start_upload(sample) for sample in SMALL[:3]]
    library.queue.send(good[0][1])
    library.queue.send("this is not an S3 notification")
    library.queue.send({"detail-type": "Object Created", "detail": {"object": {"key": "originals/../x"}}})
    for _, event in good[1:]:
        library.queue.send(event)
    library.drain()
    assert [library.status(photo_id) for photo_id, _ in good] == ["READY"] * 3
    dead = library.queue.dead_letters()
    assert len(dead) == 2 and all("originals/" not in d["body"] or "../" in d["body"] for d in dead)
    assert library.queue.depth() == 0
    library.assert_clean(ready=3)


def test_a_crash_between_the_derivatives_and_the_record_is_completed_by_the_redelivery(library, monkeypatch):
    photo_id, event = library.start_upload("coffee_exif_gps.jpg")
    finish = library.services.metadata.finish_photo

    def crash_once(photo, *, expected_status):
        monkeypatch.setattr(library.services.metadata, "finish_photo", finish)
        raise Crash("killed after the derivatives were written")

    monkeypatch.setattr(library.services.metadata, "finish_photo", crash_once)
    library.queue.send(event)
    with pytest.raises(Crash):
        library.queue.run_once()
    # What the crash left: the derivatives beside a record still pending (the audit says so), message not acked.
    assert library.status(photo_id) == PhotoStatus.PENDING_UPLOAD.value
    assert [f.finding.value for f in library.audit().findings] == ["derivative_of_unfinished_photo"] * 2
    assert library.queue.depth() == 1
    library.drain()  # the redelivery (a fresh process would receive the same message)
    assert library.status(photo_id) == "READY"
    library.assert_clean(ready=1)


def test_a_photo_deleted_between_the_crash_and_the_redelivery_leaves_no_orphan(library, monkeypatch):
    photo_id, event = library.start_upload("rocket.jpg")

    def crash(photo, *, expected_status):
        raise Crash("killed after the derivatives were written")

    with monkeypatch.context() as patch:
        patch.setattr(library.services.metadata, "finish_photo", crash)
        library.queue.send(event)
        with pytest.raises(Crash):
            library.queue.run_once()
    library.services.photos.delete(OWNER, photo_id)  # the owner gave up on the pending upload
    library.drain()
    report = library.assert_clean(ready=0)
    assert report.blobs == 0


def test_two_owners_events_interleaved_and_repeated_stay_in_their_own_libraries(library):
    mine = [library.start_upload(s) for s in SMALL[:2]]
    theirs = [library.start_upload(s, owner=OTHER) for s in SMALL[:2]]  # same bytes, another owner: not a duplicate
    for (_, a), (_, b) in zip(mine, theirs):
        library.queue.send(json.dumps(b))
        library.queue.send(a)
        library.queue.send(b)
    library.drain()
    library.assert_clean(ready=2)
    library.assert_clean(OTHER, ready=2)

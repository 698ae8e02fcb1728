"""Account erasure takes the owner's upload events from the local queue (queued and dead-lettered): a dead letter
otherwise keeps the owner's key for ever. Other owners' events and poison messages stay."""

from __future__ import annotations

import json

from photo_organizer import bootstrap
from photo_organizer.keys import PhotoKeys, new_photo_id
from photo_organizer.local_stack.events import object_created_event
from photo_organizer.local_stack.queue import QUEUE_FILE, LocalEventQueue

LEAVING, STAYING = "leaving-owner", "staying-owner"


def _upload_event(owner: str) -> dict:
    key = PhotoKeys.for_photo(owner, new_photo_id()).original
    return object_created_event("originals", key, size=3, etag="e", sequencer="01")


def _failing(event, context):
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


def _queue_with_events(data_dir) -> LocalEventQueue:
    dead = LocalEventQueue(data_dir / QUEUE_FILE, _failing, max_receives=1, visibility_seconds=0)
    dead.send(_upload_event(LEAVING))
    dead.send(_upload_event(STAYING))
    dead.send({"detail-type": "not an upload"})
    while dead.run_once():
        pass  # all three dead-lettered
    dead.send(_upload_event(LEAVING))
    dead.send(_upload_event(STAYING))  # and two queued
    return dead


def test_erasure_deletes_the_owners_queued_and_dead_lettered_upload_events_only(tmp_path) -> None:
    queue = _queue_with_events(tmp_path)
    account = bootstrap.build_services(bootstrap.local_settings(tmp_path)).account
    assert ("queued upload events", 2) in [(r.store, r.count) for r in account.audit(LEAVING)]

    report = account.erase(LEAVING)

    assert report.queued_uploads == 2 and report.remaining == []
    assert queue.owner_events(LEAVING) == 0 and queue.owner_events(STAYING) == 2
    kept = [json.loads(d["body"]) for d in queue.dead_letters()]
    assert {"detail-type": "not an upload"} in kept and len(kept) == 2
    assert queue.depth() == 1
    assert account.erase(LEAVING).queued_uploads == 0

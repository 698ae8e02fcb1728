"""What feedback does to a photo's tags and caption (feedback.effects), the stored overlay form, the cloud
document builder reading the photo item's `feedback` map and `suggestions`, and the local dataset files."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone

import pytest

from photo_organizer.adapters.aws.stream_documents import document_from_item
from photo_organizer.adapters.local.feedback_files import FileFeedbackDataset
from photo_organizer.analysis.models import Label
from photo_organizer.feedback.effects import (
    CaptionContext,
    apply_feedback,
    overlay_document,
    overlay_from_document,
    shown_suggestions,
    suggestions_from_items,
    suppressed_tags,
)
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagOverlay, TagSuggestion, new_feedback_id
from photo_organizer.learning.datasets import read_feedback

TAKEN = datetime(2024, 7, 2, 12, 0, tzinfo=timezone.utc)
LABELS = [Label(name="Dog", confidence=96, parents=("Animal",)), Label(name="Cat", confidence=91, parents=("Animal",)),
          Label(name="Beach", confidence=88)]
CONTEXT = CaptionContext(people_names=[], place_name="Lagos, Portugal", taken_at=TAKEN)
COMPOSED = "A dog on a beach in Lagos, Portugal · July 2024"


def test_a_rejected_label_keeps_parents_another_label_brings_and_the_user_tags_are_added():
    after = apply_feedback(LABELS, COMPOSED, TagOverlay(rejected=frozenset({"dog"}), added=frozenset({"school trip"})),
                           context=CONTEXT)
    assert after.tags == ["Animal", "Cat", "Beach", "school trip"]
    assert after.caption == "A cat on a beach in Lagos, Portugal · July 2024"


@pytest.mark.parametrize(
    ("caption", "rejected", "expected"),
    [
        (COMPOSED, "beach", "A dog in Lagos, Portugal · July 2024"),  # named by its phrase "on a beach"
        (COMPOSED, "cat", COMPOSED),  # a composed caption never used the cat: unchanged
        ("Two dogs playing in the sand", "dog",
         "A cat on a beach in Lagos, Portugal · July 2024"),  # a model caption naming the tag (plural) falls back
        ("Sunny afternoon by the water", "dog", "Sunny afternoon by the water"),  # does not name it: kept
    ],
    ids=["scene-phrase", "unused-label", "model-caption-plural", "model-caption-silent"],
)
def test_the_caption_changes_only_when_it_names_what_left(caption, rejected, expected):
    overlay = TagOverlay(rejected=frozenset({rejected}))
    assert apply_feedback(LABELS, caption, overlay, context=CONTEXT).caption == expected


def test_a_rejected_caption_is_empty_whatever_else():
    overlay = TagOverlay(caption_rejected=True, added=frozenset({"x"}))
    after = apply_feedback(LABELS, COMPOSED, overlay, context=CONTEXT)
    assert after.caption == "" and "x" in after.tags


def test_suppression_hides_a_doubted_analysis_tag_unless_the_user_confirmed_it():
    suggestions = [TagSuggestion(tag="Beach", confidence=0.1, on_photo=True),
                   TagSuggestion(tag="dog", confidence=0.9, on_photo=True),
                   TagSuggestion(tag="garden", confidence=0.7), TagSuggestion(tag="park", confidence=0.4)]
    suppressed = suppressed_tags(suggestions)
    assert suppressed == {"beach"}
    assert "Beach" not in apply_feedback(LABELS, COMPOSED, TagOverlay(), suppressed, CONTEXT).tags
    assert apply_feedback(LABELS, COMPOSED, TagOverlay(), suppressed, CONTEXT).caption == (
        "A dog in Lagos, Portugal · July 2024")
    confirmed = TagOverlay(confirmed=frozenset({"beach"}))
    assert "Beach" in apply_feedback(LABELS, COMPOSED, confirmed, suppressed, CONTEXT).tags
    assert [s.tag for s in shown_suggestions(suggestions, TagOverlay())] == ["garden"]
    assert shown_suggestions(suggestions, TagOverlay(rejected=frozenset({"garden"}))) == []


def test_the_stored_overlay_round_trips_and_a_malformed_one_reads_as_empty():
    overlay = TagOverlay(added=frozenset({"b", "a"}), rejected=frozenset({"cat"}), caption_rejected=True,
                         irrelevant_queries=frozenset({"beach"}))
    assert overlay_document(overlay)["added"] == ["a", "b"]
    assert overlay_from_document(overlay_document(overlay)) == overlay
    assert overlay_from_document({"added": "not-a-list", "rejected": None}) == TagOverlay()
    assert overlay_from_document(None) == TagOverlay()
    assert suggestions_from_items([{"tag": "a", "confidence": 0.5}, {"tag": "b"}, "x", {"confidence": 1}]) == [
        TagSuggestion(tag="a", confidence=0.5)]


def _photo_item(**extra) -> dict:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc).isoformat()
    return {
        "entity": "photo", "owner": "ana", "photo_id": "p1", "status": "READY", "created_at": now,
        "updated_at": now, "caption": COMPOSED, "local_taken_at": TAKEN.isoformat(),
        "place": {"city": "Lagos", "country": "Portugal", "lat": 37.1, "lon": -8.67},
        "analysis": {"labels": [{"name": l.name, "confidence": l.confidence, "parents": list(l.parents)}
                                for l in LABELS], "faces": []},
        **extra,
    }


def test_the_cloud_document_reads_the_overlay_and_suggestions_of_the_photo_item():
    plain = document_from_item(_photo_item())
    assert plain.tags == ("animal", "beach", "cat", "dog") and plain.caption == COMPOSED
    item = _photo_item(
        feedback={"added": ["school trip"], "rejected": ["dog"], "confirmed": [], "caption_rejected": False,
                  "irrelevant_queries": []},
        suggestions=[{"tag": "beach", "confidence": 0.05, "on_photo": True}, {"tag": "junk"}],
    )
    document = document_from_item(item)
    assert document.tags == ("animal", "cat", "school trip")
    assert document.caption == "A cat in Lagos, Portugal · July 2024"
    rejected = document_from_item(_photo_item(feedback={"caption_rejected": True}))
    assert rejected.caption == "" and rejected.tags == plain.tags


# ---- the local dataset files -----------------------------------------------------------------------------------


def _record(minutes: int, **fields) -> FeedbackRecord:
    return FeedbackRecord(feedback_id=new_feedback_id(), owner="ana", type=FeedbackType.TAG_ADDED,
                          created_at=datetime(2026, 12, 1, 23, 58, tzinfo=timezone.utc) + timedelta(minutes=minutes),
                          photo_id="p1", tag="x", **fields)


def test_dataset_lines_go_to_their_date_partition_and_read_back_once_per_id(tmp_path):
    dataset = FileFeedbackDataset(tmp_path)
    first, second = _record(0), _record(5)  # 23:58 and 00:03 the next day
    dataset.append([first])
    dataset.append([second, first])  # a record appended twice is read once
    assert [p.relative_to(tmp_path).as_posix() for p in dataset.files()] == [
        "feedback/date=2026-12-01/events.jsonl", "feedback/date=2026-12-02/events.jsonl"]
    assert [line["feedback_id"] for line in read_feedback(tmp_path)] == [first.feedback_id, second.feedback_id]
    assert os.stat(dataset.files()[0]).st_mode & 0o077 == 0, "the user's corrections are readable by them only"


def test_concurrent_appends_never_interleave_inside_a_line(tmp_path):
    dataset = FileFeedbackDataset(tmp_path)
    records = [_record(0, query="q" * 2000) for _ in range(200)]

    def write(chunk):
        for record in chunk:
            FileFeedbackDataset(tmp_path).append([record])  # separate objects: the lock does not serialise them

    threads = [threading.Thread(target=write, args=(records[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {line["feedback_id"] for line in read_feedback(tmp_path)} == {r.feedback_id for r in records}
    assert len(dataset.files()) == 1


def test_a_part_name_cannot_leave_its_partition(tmp_path):
    from photo_organizer.errors import ValidationError

    with pytest.raises(ValidationError):
        FileFeedbackDataset(tmp_path).append([_record(0)], part="../../escape")


def test_a_feedback_item_on_the_stream_is_not_a_search_write_and_reads_back_as_its_record():
    from photo_organizer.adapters.aws.dynamodb_analysis import to_attribute
    from photo_organizer.adapters.aws.dynamodb_feedback import record_from_item
    from photo_organizer.adapters.aws.stream_documents import plan_write

    record = _record(0, origin="review")
    image = {name: to_attribute(value) for name, value in record.model_dump(mode="json", exclude_none=True).items()}
    image.update(PK={"S": "OWNER#ana"}, SK={"S": f"FEEDBACK#{record.feedback_id}"}, entity={"S": "feedback"})
    assert plan_write({"eventName": "INSERT", "dynamodb": {"NewImage": image, "SequenceNumber": "1"}}) is None
    assert record_from_item(image) == record

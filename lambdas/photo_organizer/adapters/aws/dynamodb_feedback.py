"""FeedbackStore on the single table, in the owner's partition (`PK=OWNER#{owner}`).

Items:
- Event: `SK=FEEDBACK#{feedback_id}`, `entity="feedback"`, the FeedbackRecord's fields as native attributes
  (times ISO-8601), `undone_at` once undone. Feedback ids start with their millisecond time, so the range is in
  time order. The table stream hands these INSERTs to the feedback Lambda (MlStack), which appends the dataset.
- Overlay: the photo item's `feedback` map (feedback.effects.overlay_document: added, confirmed, rejected,
  caption_rejected, irrelevant_queries), removed when empty. Its writes move the photo's `updated_at` forward,
  so the stream indexer re-indexes the photo with the overlay (stream_documents reads the map).

An event and its photo's overlay (record), or an undo, the `undone_at` mark on the event it undoes and the
overlay (record_undo), are one TransactWriteItems: the event is conditional on not existing yet (a retried
record changes nothing), the mark on the event not being undone yet (a second undo is refused), the overlay on
the photo item existing and being READY (a deleted photo is never resurrected; its feedback is refused).

- Search marks: `SK=IRRELEVANT#{query digest}#{photo_id}`, `entity="search_mark"`, one per photo the owner marked
  irrelevant for a query and has not marked relevant again (the overlay's irrelevant_queries, kept beside it in the
  same transaction), so that every text search asks one short key range instead of reading the owner's events.

for_photo reads the owner's FEEDBACK# range with a filter (the table has no index by photo for events): ~300 bytes
per event read, consistent, i.e. ~75 read units for a library with 1,000 events; only an undo needs it (a new
event is folded onto the stored overlay).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, from_attribute, key, to_attribute
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk, photo_sk
from photo_organizer.errors import ConflictError, FeedbackConflictError, PhotoNotFoundError, ValidationError
from photo_organizer.feedback.effects import overlay_document, overlay_from_document
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagOverlay
from photo_organizer.models import PhotoStatus, utcnow

FEEDBACK_PREFIX = "FEEDBACK#"
FEEDBACK_ENTITY = "feedback"
SEARCH_MARK_PREFIX = "IRRELEVANT#"
SEARCH_MARK_ENTITY = "search_mark"
_ITEM_ONLY = frozenset({"PK", "SK", "entity"})
_FAILED = "ConditionalCheckFailed"


def feedback_sk(feedback_id: str) -> str:
    return f"{FEEDBACK_PREFIX}{feedback_id}"


def search_mark_prefix(query: str) -> str:
    """The key range of one normalised query's marks: a digest, since a query may hold any character."""
    return f"{SEARCH_MARK_PREFIX}{hashlib.sha256(query.encode()).hexdigest()[:32]}#"


class DynamoDbFeedbackStore:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)

    # ---- writes ---------------------------------------------------------------------------------------------

    def record(self, record: FeedbackRecord, *, overlay: TagOverlay | None = None) -> None:
        items = [self._put_event(record)]
        if overlay is not None:
            items.append(self._overlay_update(record, overlay))
            items += self._search_mark(record, overlay)
        codes = self._table.transact(items)
        if codes is None or codes[0] == _FAILED:
            return  # committed, or recorded before (a retry): the event and its overlay went in together then
        raise PhotoNotFoundError(record.photo_id or "")

    def record_undo(self, undo: FeedbackRecord, *, undone_at: datetime, overlay: TagOverlay | None = None) -> None:
        if not undo.undoes:
            raise ValidationError("an undo event names the event it undoes")
        items = [
            self._put_event(undo),
            {
                "Update": {
                    "TableName": self._table.name,
                    "Key": key(owner_pk(undo.owner), feedback_sk(undo.undoes)),
                    "UpdateExpression": "SET #undone = :undone",
                    "ConditionExpression": "attribute_exists(SK) AND attribute_not_exists(#undone)",
                    "ExpressionAttributeNames": {"#undone": "undone_at"},
                    "ExpressionAttributeValues": {":undone": {"S": _json_time(undone_at)}},
                }
            },
        ]
        if overlay is not None:
            items.append(self._overlay_update(undo, overlay))
            items += self._search_mark(undo, overlay)
        codes = self._table.transact(items)
        if codes is None:
            return
        if codes[1] == _FAILED or codes[0] == _FAILED:
            raise FeedbackConflictError(FeedbackConflictError.ALREADY_UNDONE, "this feedback is already undone")
        raise PhotoNotFoundError(undo.photo_id or "")

    def forget_photo(self, owner: str, photo_id: str) -> None:
        sks = [
            item["SK"]["S"]
            for item in self._events(owner, "photo_id = :photo", {":photo": {"S": photo_id}}, projection="PK, SK")
        ]
        sks += [search_mark_prefix(query) + photo_id for query in self.overlay(owner, photo_id).irrelevant_queries]
        self._table.batch_write([{"DeleteRequest": {"Key": key(owner_pk(owner), sk)}} for sk in sks])
        try:  # the photo item itself (and the map with it) is deleted by the metadata store right after
            self._table.call(
                "update_item",
                Key=key(owner_pk(owner), photo_sk(photo_id)),
                UpdateExpression="SET #updated = :now REMOVE #feedback",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#feedback": "feedback", "#updated": "updated_at"},
                ExpressionAttributeValues={":now": {"S": _json_time(utcnow())}},
            )
        except ConflictError:
            pass  # already gone

    def forget_owner(self, owner: str) -> int:
        """Every event and search-mark item of the owner (the overlays live on the photo items, deleted with
        them); returns how many events went."""
        sks = [item["SK"]["S"] for item in self._events(owner, projection="PK, SK")]
        marks = [
            item["SK"]["S"]
            for item in self._table.items(
                "query",
                KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
                ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}, ":prefix": {"S": SEARCH_MARK_PREFIX}},
                ProjectionExpression="PK, SK",
                ConsistentRead=True,
            )
        ]
        self._table.batch_write([{"DeleteRequest": {"Key": key(owner_pk(owner), sk)}} for sk in sks + marks])
        return len(sks)

    # ---- reads -------------------------------------------------------------------------------------------------

    def get(self, owner: str, feedback_id: str) -> FeedbackRecord | None:
        item = self._table.call(
            "get_item", Key=key(owner_pk(owner), feedback_sk(feedback_id)), ConsistentRead=True
        ).get("Item")
        return record_from_item(item) if item and item.get("entity", {}).get("S") == FEEDBACK_ENTITY else None

    def for_photo(self, owner: str, photo_id: str) -> list[FeedbackRecord]:
        items = self._events(
            owner, "photo_id = :photo AND #type <> :undo",
            {":photo": {"S": photo_id}, ":undo": {"S": FeedbackType.UNDO.value}}, names={"#type": "type"},
        )
        return _oldest_first(record_from_item(item) for item in items)

    def events(self, owner: str, *, since: datetime | None = None) -> list[FeedbackRecord]:
        if since is None:
            items = self._events(owner)
        else:
            records = (record_from_item(item) for item in self._events(owner))
            return _oldest_first(r for r in records if r.created_at >= since)
        return _oldest_first(record_from_item(item) for item in items)

    def overlay(self, owner: str, photo_id: str) -> TagOverlay:
        item = self._table.call(
            "get_item",
            Key=key(owner_pk(owner), photo_sk(photo_id)),
            ProjectionExpression="#feedback",
            ExpressionAttributeNames={"#feedback": "feedback"},
            ConsistentRead=True,
        ).get("Item") or {}
        return overlay_from_document(from_attribute(item["feedback"])) if "feedback" in item else TagOverlay()

    def overlays(self, owner: str) -> dict[str, TagOverlay]:
        items = self._table.items(
            "query",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            FilterExpression="attribute_exists(#feedback)",
            ProjectionExpression="SK, #feedback",
            ExpressionAttributeNames={"#feedback": "feedback"},
            ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}, ":prefix": {"S": "PHOTO#"}},
            ConsistentRead=True,
        )
        return {
            item["SK"]["S"].removeprefix("PHOTO#"): overlay_from_document(from_attribute(item["feedback"]))
            for item in items
        }

    def irrelevant_photos(self, owner: str, query: str) -> set[str]:
        prefix = search_mark_prefix(query)
        items = self._table.items(
            "query",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}, ":prefix": {"S": prefix}},
            ProjectionExpression="SK",
            ConsistentRead=True,
        )
        return {item["SK"]["S"].removeprefix(prefix) for item in items}

    # ---- helpers ------------------------------------------------------------------------------------------------

    def _put_event(self, record: FeedbackRecord) -> dict[str, Any]:
        document = record.model_dump(mode="json", exclude_none=True)
        item = {name: to_attribute(value) for name, value in document.items()}
        item.update(key(owner_pk(record.owner), feedback_sk(record.feedback_id)), entity={"S": FEEDBACK_ENTITY})
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(SK)",
            }
        }

    def _search_mark(self, record: FeedbackRecord, overlay: TagOverlay) -> list[dict[str, Any]]:
        """The mark of the record's query on its photo, put or deleted to agree with the photo's new overlay."""
        if not record.query or not record.photo_id:
            return []
        mark = key(owner_pk(record.owner), search_mark_prefix(record.query) + record.photo_id)
        if record.query in overlay.irrelevant_queries:
            item = {**mark, "entity": {"S": SEARCH_MARK_ENTITY}, "photo_id": {"S": record.photo_id}}
            return [{"Put": {"TableName": self._table.name, "Item": item}}]
        return [{"Delete": {"TableName": self._table.name, "Key": mark}}]

    def _overlay_update(self, record: FeedbackRecord, overlay: TagOverlay) -> dict[str, Any]:
        if not record.photo_id:
            raise ValidationError("an overlay belongs to a photo: the record names none")
        names = {"#feedback": "feedback", "#updated": "updated_at", "#status": "status"}
        values: dict[str, Any] = {":now": {"S": _json_time(utcnow())}, ":ready": {"S": PhotoStatus.READY.value}}
        if overlay.empty:
            expression = "SET #updated = :now REMOVE #feedback"
        else:
            expression = "SET #feedback = :feedback, #updated = :now"
            values[":feedback"] = to_attribute(overlay_document(overlay))
        return {
            "Update": {
                "TableName": self._table.name,
                "Key": key(owner_pk(record.owner), photo_sk(record.photo_id)),
                "UpdateExpression": expression,
                # The stream indexer versions documents by updated_at: every overlay change moves it forward.
                "ConditionExpression": "attribute_exists(PK) AND #status = :ready",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _events(
        self,
        owner: str,
        condition: str = "",
        values: dict[str, Any] | None = None,
        *,
        names: dict[str, str] | None = None,
        projection: str | None = None,
    ) -> Iterable[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": owner_pk(owner)}, ":prefix": {"S": FEEDBACK_PREFIX}, **(values or {})
            },
            "ConsistentRead": True,
        }
        if condition:
            kwargs["FilterExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if projection:
            kwargs["ProjectionExpression"] = projection
        return self._table.items("query", **kwargs)


def record_from_item(item: dict[str, Any]) -> FeedbackRecord:
    """A FEEDBACK# item (low-level attribute values, as get_item or a stream record's NewImage holds them)."""
    return FeedbackRecord.model_validate(
        {name: from_attribute(value) for name, value in item.items() if name not in _ITEM_ONLY}
    )


def _oldest_first(records: Iterable[FeedbackRecord]) -> list[FeedbackRecord]:
    return sorted(records, key=lambda r: (r.created_at, r.feedback_id))


def _json_time(moment: datetime) -> str:
    return TypeAdapter(datetime).dump_python(moment, mode="json")

"""AnalysisStore on the photo items of the single table (see dynamodb_metadata for the table and the photo item).

Attributes this adapter adds to a photo item (`PK=OWNER#{owner}`, `SK=PHOTO#{photo_id}`), so that one item is
one search document and the stream that feeds the search index sees a photo whole:

- `analysis_version` (N); `analysis` (M: labels, faces, text_lines, moderation_labels, dominant_colours,
  sensitive_threshold, analysed_at, source, copied_from); `sensitive` (BOOL); `caption` (S); `place` (M);
  `local_taken_at` (S, ISO-8601 with the place's offset); `time_zone` (S, IANA name).
- Search fields, flattened: `label_names` (L of S: label names and every ancestor, case-folded, sorted; a list
  rather than a string set because a set may not be empty) and `ocr_text` (S, at most OCR_TEXT_MAX_CHARS).
- `analysis_failure` (M: version, reason, attempts, last_failed_at) while the latest attempt failed.
- `embedding` (B: 384 little-endian float32, 1536 bytes) when the analysis carries one: the vector of the photo's
  search description. A save without one removes a stored one (it described an older analysis). Write-only here:
  the stream indexer reads it; `get` does not.

Every write is an UpdateItem conditional on the photo item existing and being READY, so a photo deleted meanwhile
is never resurrected as a bare analysis item; `save` is also conditional on the stored analysis_version being
older, so a late or repeated write never replaces newer results.

`pending(owner=None)` scans the table: photos come oldest id first within an owner, owners in the table's own
(hash) order. DynamoDB applies a FilterExpression after Limit, so each call reads pages until it holds `limit`
matching photos (plus one, to know whether another page exists) or reaches the end.

Caveat for writers of the photo item: DynamoDbMetadataStore.finish_photo replaces the whole item (PutItem); it
runs before a photo is READY, i.e. before analysis, so it never drops these attributes today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.dynamodb_metadata import DYNAMODB_CLIENT_CONFIG, owner_pk, photo_sk
from photo_organizer.adapters.aws.errors import error_code, translate
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.analysis.store import (
    AnalysisFailure,
    PendingPage,
    PhotoAnalysis,
    analysis_from_parts,
    decode_pending_cursor,
    encode_pending_cursor,
    label_terms,
    ocr_text,
    result_document,
)
from photo_organizer.errors import ConflictError, StorageUnavailableError, ValidationError
from photo_organizer.models import PhotoStatus, utcnow

MAX_PAGE_SIZE = 1000
_MIN_READ = 100  # items read per request at least: a filter that rejects most items must not mean tiny requests
_FAILURE_ATTEMPTS = 4
_PHOTO_PREFIX = "PHOTO#"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# ---- shared with dynamodb_people ------------------------------------------------------------------------------


def to_attribute(value: Any) -> dict[str, Any]:
    """A JSON-ready value as a DynamoDB attribute value (floats as Decimal)."""
    return _serializer.serialize(_to_dynamo(value))


def from_attribute(value: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as plain Python (numbers as int/float, binary as bytes)."""
    return _from_dynamo(_deserializer.deserialize(value))


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


class DynamoDbTable:
    """The calls the adapters make, with errors translated at this boundary."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any] | None) -> None:
        self.name = table_name
        self._client = LazyClient(client_factory or (lambda: boto3.client("dynamodb", config=DYNAMODB_CLIENT_CONFIG)))

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """ConditionalCheckFailed surfaces as ConflictError, everything else through errors.translate."""
        what = f"{operation} on {self.name}"
        if operation not in ("transact_write_items", "batch_write_item"):
            kwargs["TableName"] = self.name
        try:
            return getattr(self._client(), operation)(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise ConflictError(f"{what}: condition failed") from exc
            if code == "TransactionCanceledException":
                # Our transactions carry no conditions: a cancellation is a conflict with another writer.
                raise StorageUnavailableError(f"{what}: transaction cancelled, try again") from exc
            raise translate(exc, what=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what=what) from exc

    def transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """TransactWriteItems with conditions: None when it committed; when a condition failed, each item's
        cancellation code ("ConditionalCheckFailed", or "None" for an item that was fine). Any other cancellation
        (a conflict with another writer) is retryable."""
        what = f"transact_write_items on {self.name}"
        try:
            self._client().transact_write_items(TransactItems=items)
            return None
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                codes = [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []]
                if "ConditionalCheckFailed" in codes:
                    return codes
                raise StorageUnavailableError(f"{what}: transaction cancelled, try again") from exc
            raise translate(exc, what=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what=what) from exc

    def items(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of a query or scan, following LastEvaluatedKey."""
        while True:
            response = self.call(operation, **kwargs)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def batch_write(self, requests: list[dict[str, Any]]) -> None:
        """PutRequest/DeleteRequest entries, 25 per call, unprocessed ones resent (the client backs off)."""
        for start in range(0, len(requests), 25):
            pending = {self.name: requests[start : start + 25]}
            for _ in range(8):
                unprocessed = self.call("batch_write_item", RequestItems=pending).get("UnprocessedItems", {})
                if not unprocessed:
                    break
                pending = unprocessed
            else:
                raise StorageUnavailableError(f"batch_write_item on {self.name}: items left unprocessed")


# ---- the adapter ----------------------------------------------------------------------------------------------

_RECORD_NAMES = {
    "#status": "status",
    "#entity": "entity",
    "#v": "analysis_version",
    "#meta": "metadata",
    "#sha": "sha256",
    "#phash": "phash",
}
_RECORD_PROJECTION = "PK, SK, #status, #meta.#sha, #meta.#phash, #v"
_PHOTO_FILTER = "#entity = :photo AND #status = :ready"
_ANALYSIS_ATTRIBUTES = (
    "analysis_version",
    "analysis",
    "sensitive",
    "caption",
    "place",
    "local_taken_at",
    "time_zone",
    "label_names",
    "ocr_text",
    "analysis_failure",
)


class DynamoDbAnalysisStore:
    def __init__(
        self, table_name: str, *, client_factory: Callable[[], Any] | None = None, read_page_size: int | None = None
    ) -> None:
        """read_page_size: items read per request while filtering (default max(limit + 1, 100))."""
        self._table = DynamoDbTable(table_name, client_factory)
        self._read_page_size = read_page_size

    # ---- AnalysisStore ----------------------------------------------------------------------------------------

    def pending(
        self, current_version: int, *, owner: str | None = None, limit: int = 500, after: str | None = None
    ) -> PendingPage:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        values = {
            ":photo": {"S": "photo"},
            ":ready": {"S": PhotoStatus.READY.value},
            ":v": {"N": str(current_version)},
            ":prefix": {"S": _PHOTO_PREFIX},
        }
        kwargs: dict[str, Any] = {
            "ExpressionAttributeNames": _RECORD_NAMES,
            "ProjectionExpression": _RECORD_PROJECTION,
            "Limit": self._read_page_size or max(limit + 1, _MIN_READ),
        }
        condition = f"{_PHOTO_FILTER} AND (attribute_not_exists(#v) OR #v < :v)"
        if owner is not None:
            operation = "query"
            kwargs["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :prefix)"
            kwargs["ConsistentRead"] = True
            values[":pk"] = {"S": owner_pk(owner)}
        else:
            operation = "scan"
            condition += " AND begins_with(SK, :prefix)"
        kwargs["FilterExpression"] = condition
        kwargs["ExpressionAttributeValues"] = values
        if after is not None:
            last_owner, last_photo = decode_pending_cursor(owner, after)
            # A per-owner cursor was checked to be that owner's: the partition always is the caller's.
            kwargs["ExclusiveStartKey"] = key(owner_pk(last_owner), photo_sk(last_photo))

        records: list[PhotoRecord] = []
        for item in self._table.items(operation, **kwargs):
            records.append(_record_from_item(item))
            if len(records) > limit:  # one more than asked: another page exists
                break
        next_key = None
        if len(records) > limit:
            records = records[:limit]
            next_key = encode_pending_cursor(owner, records[-1].owner, records[-1].photo_id)
        return PendingPage(photos=records, next_key=next_key)

    def analysed(self, owner: str, *, min_version: int) -> list[PhotoRecord]:
        items = self._table.items(
            "query",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            FilterExpression=f"{_PHOTO_FILTER} AND #v >= :v",
            ProjectionExpression=_RECORD_PROJECTION,
            ExpressionAttributeNames=_RECORD_NAMES,
            ExpressionAttributeValues={
                ":pk": {"S": owner_pk(owner)},
                ":prefix": {"S": _PHOTO_PREFIX},
                ":photo": {"S": "photo"},
                ":ready": {"S": PhotoStatus.READY.value},
                ":v": {"N": str(min_version)},
            },
        )
        return [_record_from_item(item) for item in items]

    def save(self, analysis: PhotoAnalysis) -> bool:
        result = analysis.result
        sets: dict[str, Any] = {
            "analysis_version": result.analysis_version,
            "analysis": result_document(result),
            "sensitive": result.sensitive,
            "caption": analysis.caption,
            "label_names": label_terms(result),
            # The search indexer orders writes by updated_at (OpenSearch external version): every change moves it.
            "updated_at": _json_time(utcnow()),
        }
        optional: dict[str, Any] = {
            "ocr_text": ocr_text(result) or None,
            "place": analysis.place.model_dump(mode="json", exclude_none=True) if analysis.place else None,
            "local_taken_at": analysis.local_taken_at.isoformat() if analysis.local_taken_at else None,
            "time_zone": analysis.time_zone,
            "embedding": analysis.embedding,
        }
        sets.update({name: value for name, value in optional.items() if value is not None})
        removes = [name for name, value in optional.items() if value is None] + ["analysis_failure"]
        names = {f"#a{i}": name for i, name in enumerate([*sets, *removes])}
        aliases = {name: alias for alias, name in names.items()}
        values = {f":a{i}": to_attribute(value) for i, value in enumerate(sets.values())}
        expression = "SET " + ", ".join(f"{aliases[name]} = :a{i}" for i, name in enumerate(sets))
        expression += " REMOVE " + ", ".join(aliases[name] for name in removes)
        try:
            self._table.call(
                "update_item",
                Key=key(owner_pk(analysis.owner), photo_sk(analysis.photo_id)),
                UpdateExpression=expression,
                # Never on a deleted (or not READY) photo; never over the same or a newer version.
                ConditionExpression=(
                    "attribute_exists(PK) AND #status = :ready AND "
                    f"(attribute_not_exists({aliases['analysis_version']}) OR {aliases['analysis_version']} < :a0)"
                ),
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={**values, ":ready": {"S": PhotoStatus.READY.value}},
            )
        except ConflictError:
            return False
        return True

    def get(self, owner: str, photo_id: str) -> PhotoAnalysis | None:
        item = self._table.call("get_item", Key=key(owner_pk(owner), photo_sk(photo_id)), ConsistentRead=True).get(
            "Item"
        )
        if item is None or "analysis_version" not in item or "analysis" not in item:
            return None
        plain = {name: from_attribute(item[name]) for name in _ANALYSIS_ATTRIBUTES if name in item}
        return analysis_from_parts(
            owner,
            photo_id,
            int(plain["analysis_version"]),
            plain["analysis"],
            caption=plain.get("caption", ""),
            place=plain.get("place"),
            local_taken_at=plain.get("local_taken_at"),
            time_zone=plain.get("time_zone"),
        )

    def record_failure(self, owner: str, photo_id: str, *, analysis_version: int, reason: str) -> int:
        """Returns the attempts counted for this version; 0 when nothing was recorded (the photo is gone, not
        READY, or already analysed at this version or later)."""
        photo_key = key(owner_pk(owner), photo_sk(photo_id))
        now = utcnow().isoformat()
        base_condition = "attribute_exists(PK) AND #status = :ready AND (attribute_not_exists(#v) OR #v < :v)"
        names = {"#status": "status", "#v": "analysis_version", "#failure": "analysis_failure"}
        values = {
            ":ready": {"S": PhotoStatus.READY.value},
            ":v": {"N": str(analysis_version)},
            ":reason": {"S": reason},
            ":now": {"S": now},
        }
        for _ in range(_FAILURE_ATTEMPTS):
            try:  # another failure of this version: count it
                response = self._table.call(
                    "update_item",
                    Key=photo_key,
                    UpdateExpression=(
                        "SET #failure.attempts = #failure.attempts + :one, #failure.reason = :reason, "
                        "#failure.last_failed_at = :now"
                    ),
                    ConditionExpression=f"{base_condition} AND #failure.version = :v",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={**values, ":one": {"N": "1"}},
                    ReturnValues="UPDATED_NEW",
                )
                return int(response["Attributes"]["analysis_failure"]["M"]["attempts"]["N"])
            except ConflictError:
                pass
            try:  # the first failure of this version
                self._table.call(
                    "update_item",
                    Key=photo_key,
                    UpdateExpression="SET #failure = :failure",
                    ConditionExpression=f"{base_condition} AND (attribute_not_exists(#failure) OR #failure.version <> :v)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={
                        **{k: v for k, v in values.items() if k in (":ready", ":v")},
                        ":failure": to_attribute(
                            {"version": analysis_version, "reason": reason, "attempts": 1, "last_failed_at": now}
                        ),
                    },
                )
                return 1
            except ConflictError:
                pass
            # Neither condition held: the photo is gone or analysed, or another worker raced us between the two.
            item = self._table.call("get_item", Key=photo_key, ConsistentRead=True).get("Item")
            if item is None or item.get("status", {}).get("S") != PhotoStatus.READY.value:
                return 0
            if int(item.get("analysis_version", {}).get("N", "0")) >= analysis_version:
                return 0
        raise StorageUnavailableError(f"failure record of photo {photo_id} kept changing; try again")

    def failures(self, owner: str | None = None) -> list[AnalysisFailure]:
        kwargs: dict[str, Any] = {
            "FilterExpression": "attribute_exists(#failure) AND begins_with(SK, :prefix)",
            "ProjectionExpression": "PK, SK, #failure",
            "ExpressionAttributeNames": {"#failure": "analysis_failure"},
            "ExpressionAttributeValues": {":prefix": {"S": _PHOTO_PREFIX}},
        }
        if owner is None:
            items = self._table.items("scan", **kwargs)
        else:
            kwargs["KeyConditionExpression"] = "PK = :pk"
            kwargs["ExpressionAttributeValues"][":pk"] = {"S": owner_pk(owner)}
            items = self._table.items("query", **kwargs)
        failures = []
        for item in items:
            failure = from_attribute(item["analysis_failure"])
            failures.append(
                AnalysisFailure(
                    owner=_owner_of(item),
                    photo_id=item["SK"]["S"].removeprefix(_PHOTO_PREFIX),
                    analysis_version=int(failure["version"]),
                    reason=failure["reason"],
                    attempts=int(failure["attempts"]),
                    last_failed_at=datetime.fromisoformat(failure["last_failed_at"]),
                )
            )
        return sorted(failures, key=lambda f: (f.owner, f.photo_id))

    def delete(self, owner: str, photo_id: str) -> None:
        names = {f"#a{i}": name for i, name in enumerate(_ANALYSIS_ATTRIBUTES)}
        try:
            self._table.call(
                "update_item",
                Key=key(owner_pk(owner), photo_sk(photo_id)),
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression="attribute_exists(PK)",  # a gone photo stays gone
                ExpressionAttributeNames=names,
            )
        except ConflictError:
            pass


def _owner_of(item: dict[str, Any]) -> str:
    return item["PK"]["S"].removeprefix("OWNER#")


def _record_from_item(item: dict[str, Any]) -> PhotoRecord:
    metadata = item.get("metadata", {}).get("M", {})
    return PhotoRecord(
        owner=_owner_of(item),
        photo_id=item["SK"]["S"].removeprefix(_PHOTO_PREFIX),
        status=PhotoStatus(item["status"]["S"]),
        sha256=metadata.get("sha256", {}).get("S"),
        phash=metadata.get("phash", {}).get("S"),
        analysis_version=int(item.get("analysis_version", {}).get("N", "0")),
    )


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo(v) for v in value]
    return value


def _json_time(moment: datetime) -> str:
    """The same ISO-8601 text the photo record uses for its datetimes (pydantic's JSON form)."""
    return TypeAdapter(datetime).dump_python(moment, mode="json")

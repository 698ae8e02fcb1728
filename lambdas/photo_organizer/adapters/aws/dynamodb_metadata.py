"""MetadataStore on one DynamoDB table (single-table design).

Table (the storage stack creates it with exactly these names):

- Keys: `PK` (S, partition), `SK` (S, sort). Billing on demand. Streams: NEW_AND_OLD_IMAGES.
- GSI `ByTime`: `GSI1PK` (S, partition), `GSI1SK` (S, sort), projection ALL.
- TTL attribute: `expires_at` (epoch seconds, N).

Items:

- Photo: `PK=OWNER#{owner}`, `SK=PHOTO#{photo_id}`, `entity="photo"`, then every Photo field as a native
  attribute (datetimes as ISO-8601 strings, `metadata` as a map, floats as Decimal, None fields omitted) so the
  stream can be indexed field by field.
  `GSI1PK=OWNER#{owner}#READY` and `GSI1SK={sort_time as UTC 'YYYY-MM-DDTHH:MM:SS.ffffffZ'}#{photo_id}` exist
  only while the status is READY: the sparse index is the library listing.
  `expires_at` exists only while PENDING_UPLOAD (created_at + pending_ttl); DynamoDB deletes the item within
  about two days after that, and until then this adapter treats it as gone.
- Content claim: `PK=OWNER#{owner}`, `SK=SHA256#{sha256}`, `entity="content_claim"`, `photo_id`.

Listing cursors: see photo_organizer.adapters.records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import error_code, translate
from photo_organizer.adapters.records import (
    before_bound,
    decode_cursor,
    encode_cursor,
    listing_sort_key,
    month_of_sort_key,
    photo_document,
    photo_from_document,
    photo_id_of_sort_key,
)
from photo_organizer.errors import ConflictError, StorageUnavailableError, ValidationError
from photo_organizer.models import Photo, PhotoStatus, utcnow
from photo_organizer.ports.storage import PhotoPageResult

LISTING_INDEX = "ByTime"
TTL_ATTRIBUTE = "expires_at"
MAX_PAGE_SIZE = 1000
_CLAIM_ATTEMPTS = 4
DYNAMODB_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def table_definition(table_name: str) -> dict[str, Any]:
    """create_table arguments for this design (tests and a moto-backed local stack; CDK mirrors it)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK", "GSI1PK", "GSI1SK")
        ],
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": LISTING_INDEX,
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def owner_pk(owner: str) -> str:
    return f"OWNER#{owner}"


def photo_sk(photo_id: str) -> str:
    return f"PHOTO#{photo_id}"


def claim_sk(sha256: str) -> str:
    return f"SHA256#{sha256}"


def listing_pk(owner: str) -> str:
    return f"OWNER#{owner}#READY"


class DynamoDbMetadataStore:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = table_name
        self._client = LazyClient(client_factory or (lambda: boto3.client("dynamodb", config=DYNAMODB_CLIENT_CONFIG)))

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Calls the client; ConditionalCheckFailed surfaces as ConflictError, everything else translated."""
        try:
            return getattr(self._client(), operation)(TableName=self._table, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(f"{operation} on {self._table}: condition failed") from exc
            raise translate(exc, what=f"{operation} on {self._table}") from exc
        except BotoCoreError as exc:
            raise translate(exc, what=f"{operation} on {self._table}") from exc

    # ---- MetadataStore ----------------------------------------------------------------------------------

    def create_photo(self, photo: Photo, *, pending_ttl: timedelta) -> None:
        expires_at = _epoch(photo.created_at + pending_ttl)
        item = _photo_item(photo, expires_at=expires_at)
        try:
            self._call(
                "put_item",
                Item=item,
                # An expired pending record that TTL has not swept yet counts as gone.
                ConditionExpression="attribute_not_exists(PK) OR (attribute_exists(expires_at) AND expires_at <= :now)",
                ExpressionAttributeValues={":now": {"N": str(_epoch(utcnow()))}},
            )
        except ConflictError as exc:
            raise ConflictError(f"photo {photo.photo_id} already exists") from exc

    def get_photo(self, owner: str, photo_id: str) -> Photo | None:
        item = self._get_item(owner_pk(owner), photo_sk(photo_id))
        if item is None or _expired(item):
            return None
        return _photo_from_item(item)

    def finish_photo(self, photo: Photo, *, expected_status: PhotoStatus) -> None:
        expires_at: int | None = None
        if photo.status is PhotoStatus.PENDING_UPLOAD:
            # Still pending: keep the expiry the record was created with.
            current = self._get_item(owner_pk(photo.owner), photo_sk(photo.photo_id))
            if current is not None and TTL_ATTRIBUTE in current:
                expires_at = int(current[TTL_ATTRIBUTE]["N"])
        try:
            self._call(
                "put_item",
                Item=_photo_item(photo, expires_at=expires_at),
                ConditionExpression="#status = :expected AND (attribute_not_exists(expires_at) OR expires_at > :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":expected": {"S": expected_status.value},
                    ":now": {"N": str(_epoch(utcnow()))},
                },
            )
        except ConflictError as exc:
            raise ConflictError(
                f"photo {photo.photo_id} is no longer {expected_status.value} (or no longer exists)"
            ) from exc

    def list_photos(
        self, owner: str, *, limit: int, after: str | None, before: datetime | None = None
    ) -> PhotoPageResult:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        kwargs: dict[str, Any] = {
            "IndexName": LISTING_INDEX,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": listing_pk(owner)}},
            "ScanIndexForward": False,
            # One extra item tells whether another page exists, so the last page never hands out a cursor
            # that leads to an empty page.
            "Limit": limit + 1,
        }
        if before is not None:
            kwargs["KeyConditionExpression"] = "GSI1PK = :pk AND GSI1SK < :before"
            kwargs["ExpressionAttributeValues"][":before"] = {"S": before_bound(before)}
        sort_key = decode_cursor(owner, after) if after is not None else None
        if sort_key is not None and (before is None or sort_key < before_bound(before)):
            # A cursor above the bound (from an unbounded listing) would be outside the key condition, which
            # DynamoDB rejects; the bound alone then says where to start, as in SQLite.
            # Built from the caller's owner only: the cursor never chooses the partition.
            kwargs["ExclusiveStartKey"] = {
                "PK": {"S": owner_pk(owner)},
                "SK": {"S": photo_sk(photo_id_of_sort_key(sort_key))},
                "GSI1PK": {"S": listing_pk(owner)},
                "GSI1SK": {"S": sort_key},
            }
        response = self._call("query", **kwargs)
        items = response.get("Items", [])
        next_key: str | None = None
        if len(items) > limit:
            items = items[:limit]
            next_key = encode_cursor(owner, items[-1]["GSI1SK"]["S"])
        elif "LastEvaluatedKey" in response and items:
            # The 1 MB page limit cut the query short.
            next_key = encode_cursor(owner, response["LastEvaluatedKey"]["GSI1SK"]["S"])
        photos = [_photo_from_item(item) for item in items if item.get("PK", {}).get("S") == owner_pk(owner)]
        return PhotoPageResult(photos=photos, next_key=next_key)

    def photo_months(self, owner: str) -> list[tuple[str, int]]:
        """Queries the whole listing index partition projecting only GSI1SK, paginated, and counts in Python.

        Cost: DynamoDB bills a Query by the size of the items it reads, not the attributes it returns, and the
        index projects ALL; so this costs what reading every READY photo record once costs (0.5 read units per
        4 KB, eventually consistent: about 2,500 read units, a few hundredths of a cent, for 10,000 photos of
        ~2 KB), and one round trip per 1 MB read. The projection only saves the bytes sent back. A library
        large enough for that to matter would keep per-month counters on the stream instead.
        """
        counts: dict[str, int] = {}
        kwargs: dict[str, Any] = {
            "IndexName": LISTING_INDEX,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": listing_pk(owner)}},
            "ProjectionExpression": "GSI1SK",
            "ScanIndexForward": False,
        }
        while True:
            response = self._call("query", **kwargs)
            for item in response.get("Items", []):
                month = month_of_sort_key(item["GSI1SK"]["S"])
                counts[month] = counts.get(month, 0) + 1
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(counts.items(), reverse=True)

    def photo_ids(self, owner: str) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": owner_pk(owner)}, ":prefix": {"S": photo_sk("")}},
            "ProjectionExpression": "SK",
            "ConsistentRead": True,
        }
        while True:
            response = self._call("query", **kwargs)
            ids += [item["SK"]["S"][len(photo_sk("")) :] for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete_photo(self, owner: str, photo_id: str) -> None:
        item = self._get_item(owner_pk(owner), photo_sk(photo_id))
        if item is None:
            return
        sha256 = _sha256_of(item)
        # Photo first: a claim left behind by a failure here points at a missing photo, which claim_content
        # takes over; the reverse order could leave a READY photo whose content nobody claims.
        self._call("delete_item", Key=_key(owner_pk(owner), photo_sk(photo_id)))
        if sha256:
            try:
                self._call(
                    "delete_item",
                    Key=_key(owner_pk(owner), claim_sk(sha256)),
                    ConditionExpression="photo_id = :photo_id",
                    ExpressionAttributeValues={":photo_id": {"S": photo_id}},
                )
            except ConflictError:
                pass  # the claim is missing or belongs to another photo: leave it

    def claim_content(self, owner: str, sha256: str, photo_id: str) -> str:
        claim = {
            "PK": {"S": owner_pk(owner)},
            "SK": {"S": claim_sk(sha256)},
            "entity": {"S": "content_claim"},
            "photo_id": {"S": photo_id},
            "claimed_at": {"S": utcnow().isoformat()},
        }
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                self._call("put_item", Item=claim, ConditionExpression="attribute_not_exists(PK)")
                return photo_id
            except ConflictError:
                pass
            current = self._get_item(owner_pk(owner), claim_sk(sha256))
            if current is None:
                continue  # released between our two calls: try to claim again
            holder = current["photo_id"]["S"]
            if holder == photo_id:
                return photo_id
            if _holder_keeps_claim(self.get_photo(owner, holder)):
                return holder
            try:
                self._call(
                    "put_item",
                    Item=claim,
                    ConditionExpression="photo_id = :holder",
                    ExpressionAttributeValues={":holder": {"S": holder}},
                )
                return photo_id
            except ConflictError:
                continue  # someone else took it over first: look again
        raise StorageUnavailableError(f"content claim for {sha256} kept changing; try again")

    # ---- helpers ----------------------------------------------------------------------------------------

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self._call("get_item", Key=_key(pk, sk), ConsistentRead=True).get("Item")


def _holder_keeps_claim(holder: Photo | None) -> bool:
    """A READY holder keeps its claim, and so does a live pending one (its ingest is in flight: taking over
    would let two uploads of the same bytes both become READY). Gone, expired, REJECTED or DUPLICATE holders
    lose it."""
    return holder is not None and holder.status in (PhotoStatus.READY, PhotoStatus.PENDING_UPLOAD)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _expired(item: dict[str, Any]) -> bool:
    return TTL_ATTRIBUTE in item and int(item[TTL_ATTRIBUTE]["N"]) <= _epoch(utcnow())


def _photo_item(photo: Photo, *, expires_at: int | None) -> dict[str, Any]:
    attributes: dict[str, Any] = _to_dynamo(photo_document(photo))
    item = {name: _serializer.serialize(value) for name, value in attributes.items()}
    item.update(
        PK={"S": owner_pk(photo.owner)},
        SK={"S": photo_sk(photo.photo_id)},
        entity={"S": "photo"},
    )
    if photo.status is PhotoStatus.READY:
        item["GSI1PK"] = {"S": listing_pk(photo.owner)}
        item["GSI1SK"] = {"S": listing_sort_key(photo)}
    if photo.status is PhotoStatus.PENDING_UPLOAD and expires_at is not None:
        item[TTL_ATTRIBUTE] = {"N": str(expires_at)}
    return item


_ITEM_ONLY = frozenset({"PK", "SK", "entity", "GSI1PK", "GSI1SK", TTL_ATTRIBUTE})


def _photo_from_item(item: dict[str, Any]) -> Photo:
    document = {
        name: _from_dynamo(_deserializer.deserialize(value)) for name, value in item.items() if name not in _ITEM_ONLY
    }
    return photo_from_document(document)


def _sha256_of(item: dict[str, Any]) -> str | None:
    return item.get("metadata", {}).get("M", {}).get("sha256", {}).get("S")


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value

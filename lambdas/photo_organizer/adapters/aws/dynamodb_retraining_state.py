"""RetrainingTriggerStore on the single table: one item, `PK=ML#retraining`, `SK=STATE` (`entity="ml_state"`).

Attributes: `pending` (N, events counted since the last start), `total` (N, every event ever counted),
`last_batch` (S, the part name of the last counted batch: a retried batch is not counted twice), `lock_holder` (S) and
`lock_until` (N, epoch seconds) while an invocation decides, `execution` (S) and `started_at` (S) of the last start.
Every change is one conditional UpdateItem, so concurrent batches (several shards) never lose a count or share the
lock. Not a photo, so the stream indexer ignores it; the feedback Lambda's filter (entity = feedback) skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, key
from photo_organizer.errors import ConflictError

STATE_PK = "ML#retraining"
STATE_SK = "STATE"
STATE_ENTITY = "ml_state"


# Placeholders for every attribute: several of them (total, execution) are DynamoDB reserved words.
_ATTRIBUTES = {"pending": "pending", "total": "total", "last": "last_batch", "entity": "entity",
               "holder": "lock_holder", "until": "lock_until", "execution": "execution", "at": "started_at"}


def _names(*short: str) -> dict[str, str]:
    return {f"#{name}": _ATTRIBUTES[name] for name in short}


class DynamoDbRetrainingState:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)
        self._key = key(STATE_PK, STATE_SK)

    def count(self, events: int, *, batch: str) -> int:
        try:
            response = self._table.call(
                "update_item", Key=self._key,
                UpdateExpression="ADD #pending :n, #total :n SET #last = :batch, #entity = :entity",
                ConditionExpression="attribute_not_exists(#last) OR #last <> :batch",
                ExpressionAttributeNames=_names("pending", "total", "last", "entity"),
                ExpressionAttributeValues={":n": {"N": str(events)}, ":batch": {"S": batch},
                                           ":entity": {"S": STATE_ENTITY}},
                ReturnValues="ALL_NEW")
            return int(response["Attributes"]["pending"]["N"])
        except ConflictError:  # this batch was counted already (a retry): report the count as it stands
            return self.pending()

    def pending(self) -> int:
        item = self._table.call("get_item", Key=self._key, ConsistentRead=True).get("Item") or {}
        return int(item.get("pending", {}).get("N", "0"))

    def acquire(self, holder: str, *, now: datetime, lease: timedelta) -> bool:
        epoch = int(now.timestamp())
        try:
            self._table.call(
                "update_item", Key=self._key,
                UpdateExpression="SET #holder = :holder, #until = :until",
                ConditionExpression="attribute_not_exists(#until) OR #until < :now OR #holder = :holder",
                ExpressionAttributeNames=_names("holder", "until"),
                ExpressionAttributeValues={":holder": {"S": holder}, ":until": {"N": str(epoch + int(lease.total_seconds()))},
                                           ":now": {"N": str(epoch)}})
        except ConflictError:
            return False
        return True

    def started(self, holder: str, *, execution: str, consumed: int, now: datetime) -> None:
        self._table.call(
            "update_item", Key=self._key,
            UpdateExpression="SET #execution = :execution, #at = :at ADD #pending :minus REMOVE #holder, #until",
            ConditionExpression="#holder = :holder",
            ExpressionAttributeNames=_names("execution", "at", "pending", "holder", "until"),
            ExpressionAttributeValues={":execution": {"S": execution}, ":at": {"S": now.isoformat()},
                                       ":minus": {"N": str(-consumed)}, ":holder": {"S": holder}})

    def release(self, holder: str) -> None:
        try:
            self._table.call("update_item", Key=self._key, UpdateExpression="REMOVE #holder, #until",
                             ConditionExpression="#holder = :holder", ExpressionAttributeNames=_names("holder", "until"),
                             ExpressionAttributeValues={":holder": {"S": holder}})
        except ConflictError:  # the lease ran out and someone else holds it now: theirs to release
            pass

"""TrainingOwners on the single table: the owners with at least one feedback event (`SK=FEEDBACK#...`, written by
the API's FeedbackStore). Only they can have a model trained; the export step reads their partitions only.

One Scan per export (the table has no index of owners; the feedback Lambda's counter sees events, not owners),
reading keys only: ~100 bytes per item of the whole table. The same cost as the clustering job's consent scan,
paid once per pipeline execution, which the trigger starts after at least `retrain_min_feedback` new events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable

FEEDBACK_PREFIX = "FEEDBACK#"  # dynamodb_feedback's event items
_OWNER_PREFIX = "OWNER#"


class DynamoDbTrainingOwners:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)

    def owners(self) -> list[str]:
        items = self._table.items(
            "scan",
            FilterExpression="begins_with(SK, :feedback)",
            ProjectionExpression="PK",
            ExpressionAttributeValues={":feedback": {"S": FEEDBACK_PREFIX}},
        )
        return sorted({item["PK"]["S"].removeprefix(_OWNER_PREFIX) for item in items
                       if item["PK"]["S"].startswith(_OWNER_PREFIX)})

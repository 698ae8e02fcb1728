"""FaceMatcherStore on the single table: the owner's promoted face matcher (learning.faces.FaceMatcher JSON).

One item per owner, `PK=OWNER#{owner}`, `SK=SETTINGS#face_matcher`, `entity="settings"`:
- `matcher` (S): the matcher document as JSON text (a string, not a map: DynamoDB maps turn every float into a
  Decimal and would not give back the exact document; a cloud matcher is a few hundred bytes, since Rekognition
  gives no descriptors for a projection head);
- `promoted_at` (S, ISO-8601), `digest` (S: sha256 of the canonical JSON, which the clustering job puts in its
  inputs' digest, so a newly promoted matcher re-clusters the owner).
Written by the retraining's re-application (PutItem: the newest promotion wins), read by the cluster_faces job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, key
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.errors import ValidationError
from photo_organizer.models import utcnow
from photo_organizer.people.runs import matcher_digest

FACE_MATCHER_SK = "SETTINGS#face_matcher"
MAX_DOCUMENT_BYTES = 350_000  # DynamoDB's item limit is 400 KB


class DynamoDbFaceMatcherStore:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)

    def promoted(self, owner: str) -> dict[str, Any] | None:
        item = self._table.call("get_item", Key=key(owner_pk(owner), FACE_MATCHER_SK), ConsistentRead=True,
                                ProjectionExpression="matcher").get("Item")
        if item is None or "matcher" not in item:
            return None
        return json.loads(item["matcher"]["S"])

    def promote(self, owner: str, document: dict[str, Any]) -> None:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        if len(text.encode()) > MAX_DOCUMENT_BYTES:
            raise ValidationError(f"a face matcher document of {len(text.encode())} bytes does not fit one item")
        self._table.call("put_item", Item={
            **key(owner_pk(owner), FACE_MATCHER_SK),
            "entity": {"S": "settings"},
            "matcher": {"S": text},
            "digest": {"S": matcher_digest(document)},
            "promoted_at": {"S": utcnow().isoformat()},
        })

    def forget(self, owner: str) -> bool:
        old = self._table.call("delete_item", Key=key(owner_pk(owner), FACE_MATCHER_SK), ReturnValues="ALL_OLD")
        return bool(old.get("Attributes"))

"""FeatureStore and SuggestionStore on the photo items of the single table (see dynamodb_metadata).

Attributes on the photo item (`PK=OWNER#{owner}`, `SK=PHOTO#{photo_id}`):
- `image_embedding` (B: 1280 little-endian float16, 2.5 KB): the label model's pooled penultimate layer, written
  by the analysis job (Glue) beside the analysis, read by the training export.
- `suggestions` (L of M: `tag` S, `confidence` N, `on_photo` BOOL), most confident first: the approved tagging
  model's beliefs, written by re-application; the stream indexer (stream_documents) and the photo view read
  them. An empty list removes the attribute.

Every write is an UpdateItem conditional on the photo item existing (a deleted photo is never resurrected as a
bare item) and moves `updated_at`, the search index's external version: a write that left it alone would be
indexed as "not newer" and skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from photo_organizer.analysis.store import image_embedding_bytes, image_embedding_from_bytes
from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, _json_time, from_attribute, key, to_attribute
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk, photo_sk
from photo_organizer.errors import ConflictError
from photo_organizer.feedback.models import TagSuggestion
from photo_organizer.models import utcnow

_PHOTO_PREFIX = "PHOTO#"



def suggestions_from_attribute(value: dict[str, Any] | None) -> list[TagSuggestion]:
    """The `suggestions` attribute (raw DynamoDB form) as models; [] when absent. stream_documents may use it."""
    if not value:
        return []
    return [TagSuggestion.model_validate(entry) for entry in from_attribute(value)]


class _PhotoAttributes:
    def __init__(self, table_name: str, client_factory: Callable[[], Any] | None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)

    def _set(self, owner: str, photo_id: str, name: str, value: Any | None) -> bool:
        """SET (or REMOVE, for None) one attribute and `updated_at`; False when the photo does not exist."""
        values = {":now": to_attribute(_json_time(utcnow()))}
        if value is None:
            expression = "SET #updated = :now REMOVE #attr"
        else:
            expression = "SET #attr = :value, #updated = :now"
            values[":value"] = value
        try:
            self._table.call(
                "update_item",
                Key=key(owner_pk(owner), photo_sk(photo_id)),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#attr": name, "#updated": "updated_at"},
                ExpressionAttributeValues=values,
            )
        except ConflictError:
            return False
        return True

    def _get(self, owner: str, photo_id: str, name: str) -> dict[str, Any] | None:
        item = self._table.call(
            "get_item",
            Key=key(owner_pk(owner), photo_sk(photo_id)),
            ProjectionExpression="#attr",
            ExpressionAttributeNames={"#attr": name},
            ConsistentRead=True,
        ).get("Item")
        return item.get(name) if item else None

    def _all(self, owner: str, name: str) -> dict[str, dict[str, Any]]:
        items = self._table.items(
            "query",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            FilterExpression="attribute_exists(#attr)",
            ProjectionExpression="SK, #attr",
            ExpressionAttributeNames={"#attr": name},
            ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}, ":prefix": {"S": _PHOTO_PREFIX}},
        )
        return {item["SK"]["S"][len(_PHOTO_PREFIX) :]: item[name] for item in items}

    def _remove_all(self, owner: str, name: str) -> int:
        """Account erasure: REMOVEs the attribute from every photo item of the owner that has it."""
        return sum(self._set(owner, photo_id, name, None) for photo_id in self._all(owner, name))


class DynamoDbFeatureStore(_PhotoAttributes):
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(table_name, client_factory)

    def save_image_embedding(self, owner: str, photo_id: str, embedding: np.ndarray) -> None:
        self._set(owner, photo_id, "image_embedding", {"B": image_embedding_bytes(embedding)})

    def image_embedding(self, owner: str, photo_id: str) -> np.ndarray | None:
        value = self._get(owner, photo_id, "image_embedding")
        return image_embedding_from_bytes(value["B"]) if value else None

    def image_embeddings(self, owner: str) -> dict[str, np.ndarray]:
        return {
            photo_id: image_embedding_from_bytes(value["B"])
            for photo_id, value in sorted(self._all(owner, "image_embedding").items())
        }

    def forget_owner(self, owner: str) -> int:
        return self._remove_all(owner, "image_embedding")


class DynamoDbSuggestionStore(_PhotoAttributes):
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(table_name, client_factory)

    def replace_suggestions(self, owner: str, photo_id: str, suggestions: Sequence[TagSuggestion]) -> None:
        by_tag = {s.tag: s for s in suggestions}
        ordered = sorted(by_tag.values(), key=lambda s: (-s.confidence, s.tag))
        value = to_attribute([s.model_dump(mode="json") for s in ordered]) if ordered else None
        self._set(owner, photo_id, "suggestions", value)

    def suggestions(self, owner: str, photo_id: str) -> list[TagSuggestion]:
        return suggestions_from_attribute(self._get(owner, photo_id, "suggestions"))

    def all_suggestions(self, owner: str) -> dict[str, list[TagSuggestion]]:
        return {
            photo_id: suggestions_from_attribute(value)
            for photo_id, value in sorted(self._all(owner, "suggestions").items())
        }

    def forget_owner(self, owner: str) -> int:
        return self._remove_all(owner, "suggestions")

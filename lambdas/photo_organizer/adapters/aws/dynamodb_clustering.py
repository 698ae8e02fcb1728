"""What the cluster_faces Glue job keeps between runs, in the owner's partition of the single table.

- On each face item (`SK=FACE#{face_id}`) a `search` map: `searched_at`, `threshold`, `max_faces` and `matches`
  (Rekognition FaceId -> similarity 0..1). Kept on the face so that it goes wherever the face goes: a deleted
  photo's faces (PeopleStore.delete_faces_of_photo) and a consent withdrawal (forget_biometrics) take their
  searches with them, and no similarity graph outlives the faces it is about. A face saved again (PutItem)
  loses its search and is simply searched again.
- `SK=SETTINGS#clustering`: the digest of the last clustering's inputs, when a full clustering last ran and the
  digest of the promoted face matcher it ran with (`matcher_digest`, absent for the fixed threshold). It holds no
  biometric data.

Consenting owners are found by a Scan filtered on the consent items (`SK=SETTINGS#biometrics`): one read of the
table per run, like the analysis job's listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, from_attribute, key, to_attribute
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.adapters.aws.dynamodb_people import CONSENT_SK, FACE_PREFIX, face_sk
from photo_organizer.errors import ConflictError
from photo_organizer.people.searches import ClusteringMark, FaceSearch

CLUSTERING_SK = "SETTINGS#clustering"


class DynamoDbClusteringState:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)

    def consenting_owners(self) -> list[str]:
        items = self._table.items(
            "scan",
            FilterExpression="SK = :sk AND biometric_consent = :yes",
            ProjectionExpression="PK",
            ExpressionAttributeValues={":sk": {"S": CONSENT_SK}, ":yes": {"BOOL": True}},
        )
        return sorted(item["PK"]["S"].removeprefix("OWNER#") for item in items)

    def searches(self, owner: str) -> dict[str, FaceSearch]:
        """face id -> its last search, for the owner's faces that have one."""
        found = {}
        for item in self._face_items(owner):
            if "search" in item:
                search = from_attribute(item["search"])
                found[item["SK"]["S"].removeprefix(FACE_PREFIX)] = FaceSearch(
                    searched_at=datetime.fromisoformat(search["searched_at"]),
                    threshold=float(search["threshold"]),
                    max_faces=int(search["max_faces"]),
                    matches={face: float(similarity) for face, similarity in search["matches"].items()},
                )
        return found

    def record_search(self, owner: str, face_id: str, search: FaceSearch) -> bool:
        """False when the face is gone (deleted meanwhile): nothing is written."""
        document = {
            "searched_at": search.searched_at.isoformat(),
            "threshold": search.threshold,
            "max_faces": search.max_faces,
            "matches": dict(search.matches),
        }
        try:
            self._table.call(
                "update_item",
                Key=key(owner_pk(owner), face_sk(face_id)),
                UpdateExpression="SET #search = :search",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#search": "search"},
                ExpressionAttributeValues={":search": to_attribute(document)},
            )
        except ConflictError:
            return False
        return True

    def last_clustering(self, owner: str) -> ClusteringMark | None:
        item = self._table.call("get_item", Key=key(owner_pk(owner), CLUSTERING_SK), ConsistentRead=True).get("Item")
        if item is None:
            return None
        last_full = item.get("last_full_at", {}).get("S")
        return ClusteringMark(
            digest=item["digest"]["S"],
            clustered_at=datetime.fromisoformat(item["clustered_at"]["S"]),
            last_full_at=datetime.fromisoformat(last_full) if last_full else None,
            matcher_digest=item.get("matcher_digest", {}).get("S"),
        )

    def forget_clustering(self, owner: str) -> bool:
        old = self._table.call("delete_item", Key=key(owner_pk(owner), CLUSTERING_SK), ReturnValues="ALL_OLD")
        return bool(old.get("Attributes"))

    def record_clustering(self, owner: str, mark: ClusteringMark) -> None:
        item = {
            **key(owner_pk(owner), CLUSTERING_SK),
            "entity": {"S": "settings"},
            "digest": {"S": mark.digest},
            "clustered_at": {"S": mark.clustered_at.isoformat()},
        }
        if mark.last_full_at is not None:
            item["last_full_at"] = {"S": mark.last_full_at.isoformat()}
        if mark.matcher_digest is not None:
            item["matcher_digest"] = {"S": mark.matcher_digest}
        self._table.call("put_item", Item=item)

    def _face_items(self, owner: str) -> Iterator[dict[str, Any]]:
        return self._table.items(
            "query",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ProjectionExpression="SK, #search",
            ExpressionAttributeNames={"#search": "search"},
            ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}, ":prefix": {"S": FACE_PREFIX}},
            ConsistentRead=True,
        )

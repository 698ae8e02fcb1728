"""PeopleStore and UserSettings on the single table, in the owner's partition (`PK=OWNER#{owner}`).

Items:
- Face: `SK=FACE#{face_id}`, `entity="face"`, the StoredFace fields as native attributes (`box` a map,
  `created_at` ISO-8601), `descriptor` (B, 512 bytes) only for local faces, `rekognition_face_id` for cloud ones.
- Person: `SK=PERSON#{person_id}`, `entity="person"`, the Person fields, `face_ids` as a sorted list. A person
  whose face ids would not fit one item (400 KB) continues in `SK=PERSON#{person_id}#PART#{n:04d}` items
  (`entity="person_part"`, `face_ids`); `parts` on the person item says how many.
- Correction: `SK=CONSTRAINT#{created_at UTC stamp}#{constraint_id}`, `entity="constraint"`, `constraint` (map).
- Consent: `SK=SETTINGS#biometrics`, `entity="settings"`, `biometric_consent` (BOOL), `updated_at`.
- Erasure mark: `SK=SETTINGS#erasure`, `entity="settings"`, `started_at`: an account erasure under way. While it
  exists the owner has no consent (erasure deletes the consent item before it removes the mark).

faces_of_photo reads the owner's FACE# range with a filter on photo_id (the table has no index by photo for
faces): about 1 KB per face read, so ~10 MB for a 10,000-face library; called on photo deletion only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, from_attribute, key, to_attribute
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.models import utcnow
from photo_organizer.people.models import Constraint, OwnerMismatchError, Person
from photo_organizer.people.store import (
    ForgottenBiometrics,
    StoredFace,
    constraint_document,
    constraint_from_document,
    constraint_id,
    constraint_sort_key,
    face_document,
    face_from_document,
    person_document,
    person_from_document,
)

FACE_PREFIX = "FACE#"
PERSON_PREFIX = "PERSON#"
CONSTRAINT_PREFIX = "CONSTRAINT#"
CONSENT_SK = "SETTINGS#biometrics"
ERASURE_SK = "SETTINGS#erasure"  # present while an account erasure runs (or crashed half-way)
_PART = "#PART#"
_PART_BYTES = 300_000  # face ids per item, in bytes: well under the 400 KB item limit with the other attributes
_TRANSACTION_ITEMS = 100  # TransactWriteItems limit
_TRANSACTION_BYTES = 3_500_000  # of its 4 MB limit
_ITEM_ONLY = frozenset({"PK", "SK", "entity", "descriptor", "parts"})


def face_sk(face_id: str) -> str:
    return f"{FACE_PREFIX}{face_id}"


def person_sk(person_id: str) -> str:
    return f"{PERSON_PREFIX}{person_id}"


class DynamoDbPeopleStore:
    def __init__(
        self, table_name: str, *, client_factory: Callable[[], Any] | None = None, default_consent: bool = False
    ) -> None:
        """default_consent: what biometric_consent answers for a user who never chose (off in the cloud)."""
        self._table = DynamoDbTable(table_name, client_factory)
        self._default_consent = default_consent

    # ---- faces ------------------------------------------------------------------------------------------------

    def save_faces(self, faces: Iterable[StoredFace]) -> None:
        unique = {(face.owner, face.face_id): face for face in faces}  # a batch may not name one key twice
        self._table.batch_write([{"PutRequest": {"Item": _face_item(face)}} for face in unique.values()])

    def faces(self, owner: str) -> list[StoredFace]:
        return [_face_from_item(item) for item in self._range(owner, FACE_PREFIX)]

    def faces_of_photo(self, owner: str, photo_id: str) -> list[StoredFace]:
        items = self._range(
            owner,
            FACE_PREFIX,
            FilterExpression="photo_id = :photo",
            ExpressionAttributeValues={":photo": {"S": photo_id}},
        )
        return [_face_from_item(item) for item in items]

    def delete_faces_of_photo(self, owner: str, photo_id: str) -> list[str]:
        faces = self.faces_of_photo(owner, photo_id)
        self._table.batch_write([{"DeleteRequest": {"Key": key(owner_pk(owner), face_sk(f.face_id))}} for f in faces])
        return [face.face_id for face in faces]

    # ---- people -----------------------------------------------------------------------------------------------

    def replace_people(self, owner: str, people: Iterable[Person]) -> None:
        wanted = {person.person_id: person for person in people}
        if any(person.owner != owner for person in wanted.values()):
            raise OwnerMismatchError("replace_people got a person of another owner")
        stored = self._stored_people(owner)
        puts: list[dict[str, Any]] = []
        keep: set[str] = set()
        for person_id, person in wanted.items():
            items = _person_items(person)
            keep.update(item["SK"]["S"] for item in items)
            previous = stored.get(person_id)
            if previous is None or previous[0] != person:
                puts.extend(items)
        deletes = [sk for _, sks in stored.values() for sk in sks if sk not in keep]
        if not puts and not deletes:
            return
        size = sum(len(str(item)) for item in puts)
        if len(puts) + len(deletes) <= _TRANSACTION_ITEMS and size <= _TRANSACTION_BYTES:
            self._table.call(
                "transact_write_items",
                TransactItems=[{"Put": {"TableName": self._table.name, "Item": item}} for item in puts]
                + [{"Delete": {"TableName": self._table.name, "Key": key(owner_pk(owner), sk)}} for sk in deletes],
            )
            return
        # Too big for one transaction: new and changed first, removed last (see PeopleStore.replace_people).
        self._table.batch_write([{"PutRequest": {"Item": item}} for item in puts])
        self._table.batch_write([{"DeleteRequest": {"Key": key(owner_pk(owner), sk)}} for sk in deletes])

    def save_person(self, person: Person) -> None:
        items = _person_items(person)
        stale = self._stored_people(person.owner, person.person_id).get(person.person_id, (None, []))[1]
        new_sks = {item["SK"]["S"] for item in items}
        self._table.batch_write([{"PutRequest": {"Item": item}} for item in items])
        self._table.batch_write(
            [{"DeleteRequest": {"Key": key(owner_pk(person.owner), sk)}} for sk in stale if sk not in new_sks]
        )

    def people(self, owner: str) -> list[Person]:
        return [person for person, _ in sorted(self._stored_people(owner).values(), key=lambda p: p[0].person_id)]

    def person(self, owner: str, person_id: str) -> Person | None:
        found = self._stored_people(owner, person_id).get(person_id)
        return found[0] if found else None

    # ---- corrections ------------------------------------------------------------------------------------------

    def add_constraint(self, owner: str, constraint: Constraint) -> str:
        self._table.call(
            "put_item",
            Item={
                **key(owner_pk(owner), f"{CONSTRAINT_PREFIX}{constraint_sort_key(constraint)}"),
                "entity": {"S": "constraint"},
                "constraint": to_attribute(constraint_document(constraint)),
            },
        )
        return constraint_id(constraint)

    def remove_constraint(self, owner: str, constraint_id: str) -> bool:
        # The sort key starts with the correction's time, which the caller does not know: find it in the range.
        suffix = f"#{constraint_id}"
        found = [
            item["SK"]["S"]
            for item in self._range(owner, CONSTRAINT_PREFIX, ProjectionExpression="PK, SK")
            if item["SK"]["S"].endswith(suffix)
        ]
        for sk in found:
            self._table.call("delete_item", Key=key(owner_pk(owner), sk))
        return bool(found)

    def constraints(self, owner: str) -> list[Constraint]:
        return [
            constraint_from_document(from_attribute(item["constraint"]))
            for item in self._range(owner, CONSTRAINT_PREFIX)
        ]

    # ---- consent ----------------------------------------------------------------------------------------------

    def biometric_consent(self, owner: str) -> bool:
        # One query reads the choice and the erasure mark (their sort keys bound a range that holds one more small
        # SETTINGS# item, the clustering mark): an account being erased has no consent, whatever it chose.
        found = {
            item["SK"]["S"]: item
            for item in self._table.items(
                "query",
                KeyConditionExpression="PK = :pk AND SK BETWEEN :consent AND :erasure",
                ExpressionAttributeValues={
                    ":pk": {"S": owner_pk(owner)}, ":consent": {"S": CONSENT_SK}, ":erasure": {"S": ERASURE_SK}
                },
                ProjectionExpression="SK, biometric_consent",
                ConsistentRead=True,
            )
        }
        if ERASURE_SK in found:
            return False
        item = found.get(CONSENT_SK)
        return self._default_consent if item is None else item["biometric_consent"]["BOOL"]

    def set_biometric_consent(self, owner: str, consent: bool) -> None:
        self._table.call(
            "put_item",
            Item={
                **key(owner_pk(owner), CONSENT_SK),
                "entity": {"S": "settings"},
                "biometric_consent": {"BOOL": consent},
                "updated_at": {"S": utcnow().isoformat()},
            },
        )

    def stored_settings(self, owner: str) -> int:
        item = self._table.call("get_item", Key=key(owner_pk(owner), CONSENT_SK), ConsistentRead=True).get("Item")
        return int(item is not None)

    def forget_settings(self, owner: str) -> int:
        deleted = self._table.call("delete_item", Key=key(owner_pk(owner), CONSENT_SK), ReturnValues="ALL_OLD")
        return int("Attributes" in deleted)

    def account_erasing(self, owner: str) -> bool:
        item = self._table.call("get_item", Key=key(owner_pk(owner), ERASURE_SK), ConsistentRead=True).get("Item")
        return item is not None

    def set_account_erasing(self, owner: str, erasing: bool) -> None:
        if not erasing:
            self._table.call("delete_item", Key=key(owner_pk(owner), ERASURE_SK))
            return
        self._table.call("put_item", Item={
            **key(owner_pk(owner), ERASURE_SK), "entity": {"S": "settings"}, "started_at": {"S": utcnow().isoformat()},
        })

    def forget_biometrics(self, owner: str) -> ForgottenBiometrics:
        projection = {"ProjectionExpression": "PK, SK"}
        faces = [item["SK"]["S"] for item in self._range(owner, FACE_PREFIX, **projection)]
        people = [item["SK"]["S"] for item in self._range(owner, PERSON_PREFIX, **projection)]
        constraints = [item["SK"]["S"] for item in self._range(owner, CONSTRAINT_PREFIX, **projection)]
        self._table.batch_write(
            [{"DeleteRequest": {"Key": key(owner_pk(owner), sk)}} for sk in (*faces, *people, *constraints)]
        )
        return ForgottenBiometrics(
            faces=len(faces), people=sum(1 for sk in people if _PART not in sk), constraints=len(constraints)
        )

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _range(self, owner: str, prefix: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
        values = {
            ":pk": {"S": owner_pk(owner)},
            ":prefix": {"S": prefix},
            **kwargs.pop("ExpressionAttributeValues", {}),
        }
        return self._table.items(
            "query",
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues=values,
            ConsistentRead=True,
            **kwargs,
        )

    def _stored_people(self, owner: str, person_id: str = "") -> dict[str, tuple[Person, list[str]]]:
        """person id -> (the person, the sort keys of all its items)."""
        heads: dict[str, dict[str, Any]] = {}
        parts: dict[str, list[tuple[str, list[str]]]] = {}
        for item in self._range(owner, person_sk(person_id)):
            sk = item["SK"]["S"]
            head_sk, _, _ = sk.partition(_PART)
            pid = head_sk.removeprefix(PERSON_PREFIX)
            if person_id and pid != person_id:
                continue  # begins_with also matched a longer id
            if _PART in sk:
                parts.setdefault(pid, []).append((sk, from_attribute(item["face_ids"])))
            else:
                heads[pid] = item
        stored = {}
        for pid, item in heads.items():
            document = {name: from_attribute(value) for name, value in item.items() if name not in _ITEM_ONLY}
            extra = sorted(parts.get(pid, []))
            document["face_ids"] = [*document.get("face_ids", []), *(f for _, ids in extra for f in ids)]
            stored[pid] = (person_from_document(document), [item["SK"]["S"], *(sk for sk, _ in extra)])
        return stored


def _face_item(face: StoredFace) -> dict[str, Any]:
    item = {name: to_attribute(value) for name, value in face_document(face).items()}
    item.update(key(owner_pk(face.owner), face_sk(face.face_id)), entity={"S": "face"})
    if face.descriptor is not None:
        item["descriptor"] = {"B": face.descriptor}
    return item


def _face_from_item(item: dict[str, Any]) -> StoredFace:
    document = {name: from_attribute(value) for name, value in item.items() if name not in _ITEM_ONLY}
    descriptor = from_attribute(item["descriptor"]) if "descriptor" in item else None
    return face_from_document(document, descriptor)


def _person_items(person: Person) -> list[dict[str, Any]]:
    """The person item, plus part items when its face ids do not fit one item."""
    document = person_document(person)
    chunks: list[list[str]] = [[]]
    size = 0
    for face_id in document.pop("face_ids"):
        if size + len(face_id) + 8 > _PART_BYTES and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(face_id)
        size += len(face_id) + 8
    pk = owner_pk(person.owner)
    head = {name: to_attribute(value) for name, value in document.items()}
    head.update(key(pk, person_sk(person.person_id)), entity={"S": "person"})
    head["face_ids"] = to_attribute(chunks[0])
    head["parts"] = {"N": str(len(chunks) - 1)}
    items = [head]
    for n, chunk in enumerate(chunks[1:], start=1):
        items.append(
            {
                **key(pk, f"{person_sk(person.person_id)}{_PART}{n:04d}"),
                "entity": {"S": "person_part"},
                "face_ids": to_attribute(chunk),
            }
        )
    return items

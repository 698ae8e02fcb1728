"""Who is in a photo, written onto the photo item for the stream indexer (see adapters.aws.stream_documents).

`people` (L of M: `person_id`, and `name` once the person is named), sorted by person id, on the photo item
(`PK=OWNER#{owner}`, `SK=PHOTO#{photo_id}`): the owner's people who are not hidden and have a face in the photo.
Absent when there is nobody to show (no faces, all hidden, consent withdrawn).

Every write also sets `updated_at`, the index's external version: a write that left it alone would be indexed as
"not newer" and skipped. Writes are UpdateItems conditional on the photo item existing, so a photo deleted
meanwhile is never resurrected as a bare `people` item.

The values come from the people store (`people_by_photo`), so a write is last-writer-wins: two corrections racing
on the same photo may leave the earlier one's view until the next change of those photos.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, _json_time, key, to_attribute
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk, photo_sk
from photo_organizer.errors import ConflictError
from photo_organizer.models import utcnow
from photo_organizer.ports.people import PeopleStore

PersonInPhoto = tuple[str, str | None]  # (person_id, name); name None while the person is unnamed
# Up to this many photos, one query per photo (FACE# items of that photo); beyond it, one read of all the
# owner's faces is fewer requests (a rename of somebody in 2,000 photos must not make 2,000 queries).
_PER_PHOTO_READS = 20
_SERIAL_WRITES = 8  # up to this many photos, no threads
_WRITE_THREADS = 10  # botocore's default connection pool: more threads would only wait for a connection


def people_by_photo(store: PeopleStore, owner: str, photo_ids: Iterable[str]) -> dict[str, list[PersonInPhoto]]:
    """photo id -> the owner's non-hidden people with a face in it (what SearchService.document indexes locally);
    every asked photo is a key, with [] when nobody is to be shown."""
    wanted = set(photo_ids)
    if len(wanted) <= _PER_PHOTO_READS:
        faces = [face for photo_id in sorted(wanted) for face in store.faces_of_photo(owner, photo_id)]
    else:
        faces = [face for face in store.faces(owner) if face.photo_id in wanted]
    photo_of = {face.face_id: face.photo_id for face in faces}
    found: dict[str, list[PersonInPhoto]] = {photo_id: [] for photo_id in wanted}
    for person in store.people(owner):
        if person.hidden:
            continue
        for photo_id in {photo_of[face_id] for face_id in person.face_ids if face_id in photo_of}:
            found[photo_id].append((person.person_id, person.name))
    return {photo_id: sorted(people, key=lambda p: p[0]) for photo_id, people in found.items()}


class DynamoDbPhotoPeople:
    def __init__(self, table_name: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self._table = DynamoDbTable(table_name, client_factory)

    def write_people(
        self, owner: str, photo_ids: Iterable[str], people_by_photo: Mapping[str, Sequence[PersonInPhoto]]
    ) -> int:
        """Sets each photo's `people` (a photo missing from people_by_photo gets nobody); returns how many photos
        were written. A photo that no longer exists is skipped. Storage errors propagate (RetryableError).

        UpdateItem has no batch form, so a rename of somebody in thousands of photos runs the writes on a few
        threads (the client is thread-safe): ~10 ms each one after the other would outlast the API's 30 s."""
        ordered = sorted(set(photo_ids))
        if len(ordered) <= _SERIAL_WRITES:
            return sum(self._write_one(owner, photo_id, people_by_photo) for photo_id in ordered)
        with ThreadPoolExecutor(max_workers=_WRITE_THREADS, thread_name_prefix="people-writes") as pool:
            return sum(pool.map(lambda photo_id: self._write_one(owner, photo_id, people_by_photo), ordered))

    def _write_one(self, owner: str, photo_id: str, people_by_photo: Mapping[str, Sequence[PersonInPhoto]]) -> bool:
        names = dict(people_by_photo.get(photo_id, ()))
        entries = [
            {"person_id": person_id, **({"name": names[person_id]} if names[person_id] else {})}
            for person_id in sorted(names)
        ]
        values = {":now": to_attribute(_json_time(utcnow()))}
        if entries:
            expression = "SET #people = :people, #updated = :now"
            values[":people"] = to_attribute(entries)
        else:
            expression = "SET #updated = :now REMOVE #people"
        try:
            self._table.call(
                "update_item",
                Key=key(owner_pk(owner), photo_sk(photo_id)),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(PK)",  # a deleted photo stays deleted
                ExpressionAttributeNames={"#people": "people", "#updated": "updated_at"},
                ExpressionAttributeValues=values,
            )
        except ConflictError:
            return False
        return True

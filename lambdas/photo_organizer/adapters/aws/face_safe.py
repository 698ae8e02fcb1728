"""Exactly-once IndexFaces for the analysis Glue job: a Rekognition collection keeps whatever was indexed, so a
photo indexed again (a retried task, a killed worker) must first lose the faces an earlier attempt left there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbTable, key
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.adapters.aws.dynamodb_people import face_sk
from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer
from photo_organizer.analysis.models import AnalysisPlan, AnalysisResult, ApiCall, FaceDetection


class FaceSafeAnalyzer:
    """Keeps IndexFaces exactly-once per photo. Before the first IndexFaces of an owner in this task, one ListFaces
    walk (`faces_by_photo`: one call per 4096 faces of the owner) lists what the collection already holds; a photo
    about to be indexed that has faces there has them deleted first, by id, with no further walk. That covers a
    failure after IndexFaces (DetectText gave up), an older version whose faces the people store no longer holds,
    and a worker killed between IndexFaces and the save, which leaves faces but no failure record. Walking only
    owners with a photo to index keeps the cost at zero for runs without faces; owners never span tasks, so nobody
    else indexes them meanwhile.

    Stray faces leave the people store before the collection: killed in between, the next walk still finds them.
    """

    def __init__(self, inner: RekognitionAnalyzer, forget_stored_faces: Callable[[str, list[str]], None]) -> None:
        self._inner = inner
        self._forget_stored_faces = forget_stored_faces
        self._in_collection: dict[str, dict[str, list[str]]] = {}  # owner -> photo id -> face ids, walked once
        self.collection_walks = 0
        self.faces_deleted = 0

    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan) -> AnalysisResult:
        if plan.includes(ApiCall.INDEX_FACES):
            by_photo = self._in_collection.get(plan.owner)
            if by_photo is None:
                by_photo = self._in_collection[plan.owner] = self._inner.faces_by_photo(plan.owner)
                self.collection_walks += 1
            strays = by_photo.get(plan.photo_id)
            if strays:
                self._forget_stored_faces(plan.owner, strays)
                self.faces_deleted += self._inner.delete_faces_of_photo(plan.owner, plan.photo_id, face_ids=strays)
                del by_photo[plan.photo_id]
        return self._inner.analyze(preview_jpeg, plan)


def stored_faces_forgetter(table_name: str, client_factory: Callable[[], Any]) -> Callable[[str, list[str]], None]:
    """Deletes FACE# items by id: in the cloud a stored face's id is its Rekognition FaceId (PeopleService.
    record_faces), so the items of stray faces are known without reading the owner's faces."""
    table = DynamoDbTable(table_name, client_factory)

    def forget(owner: str, face_ids: list[str]) -> None:
        table.batch_write([{"DeleteRequest": {"Key": key(owner_pk(owner), face_sk(f))}} for f in face_ids])

    return forget


def consent_checked_face_recorder(
    consent: Callable[[str], bool],
    record_faces: Callable[[str, str, Sequence[FaceDetection]], None],
    rekognition: RekognitionAnalyzer,
) -> Callable[[str, str, Sequence[FaceDetection]], None]:
    def record(owner: str, photo_id: str, faces: Sequence[FaceDetection]) -> None:
        if consent(owner):
            record_faces(owner, photo_id, faces)
            return
        # Consent was withdrawn after this photo was planned (the withdrawal deleted the collection, which
        # IndexFaces then created again): the collection must not keep these faces either.
        handles = [face.face_handle for face in faces if face.face_handle]
        if handles:
            rekognition.delete_faces_of_photo(owner, photo_id, face_ids=handles)

    return record

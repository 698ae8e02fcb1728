"""Where faces, people, the user's corrections and the biometric consent live: the ports both backends implement.

aws: items in the single table, in the owner's partition (`PK=OWNER#{owner}`): `FACE#{face_id}`,
`PERSON#{person_id}`, `CONSTRAINT#{created_at}#{constraint_id}`, `SETTINGS#biometrics`. local: tables beside the
photos table in the same SQLite file.

Consent (`UserSettings`): face processing is opt-in per user. The default for a user who never chose is an
argument of the adapter (off in the cloud, on in the local demo), never a global. Turning consent off is a
service-level sequence: `set_biometric_consent(owner, False)` first (so the analysis job plans no IndexFaces for
the owner from then on), then delete the owner's Rekognition collection, then `forget_biometrics(owner)`, whose
returned counts and a following `faces(owner) == people(owner) == constraints(owner) == []` are the proof.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from photo_organizer.analysis.models import BoundingBox
from photo_organizer.people.models import Constraint, FaceRef, Person

DESCRIPTOR_DIMENSIONS = 128
DESCRIPTOR_BYTES = DESCRIPTOR_DIMENSIONS * 4  # little-endian float32

CONSTRAINT_ADAPTER: TypeAdapter[Constraint] = TypeAdapter(Annotated[Constraint, Field(discriminator="kind")])


class StoredFace(BaseModel):
    """One detected face of one photo and its identity handle: a local dlib descriptor or a Rekognition FaceId."""

    model_config = ConfigDict(frozen=True)

    face_id: str = Field(min_length=1, pattern=r"^[^#\x00]+$")
    owner: str = Field(min_length=1)
    photo_id: str = Field(min_length=1)
    box: BoundingBox
    quality: float = Field(ge=0.0, le=1.0)
    created_at: datetime
    descriptor: bytes | None = Field(default=None, description="local: 128 little-endian float32 (512 bytes).")
    rekognition_face_id: str | None = Field(default=None, description="aws: the FaceId in the user's collection.")

    @model_validator(mode="after")
    def _descriptor_size(self) -> StoredFace:
        if self.descriptor is not None and len(self.descriptor) != DESCRIPTOR_BYTES:
            raise ValueError(f"descriptor must be {DESCRIPTOR_BYTES} bytes, got {len(self.descriptor)}")
        return self

    @staticmethod
    def pack_descriptor(vector: np.ndarray) -> bytes:
        array = np.asarray(vector, dtype="<f4").reshape(-1)
        if array.size != DESCRIPTOR_DIMENSIONS:
            raise ValueError(f"descriptor must have {DESCRIPTOR_DIMENSIONS} values, got {array.size}")
        return array.tobytes()

    def vector(self) -> np.ndarray | None:
        """The descriptor as a (128,) float32 array, or None for a face known only to Rekognition."""
        return None if self.descriptor is None else np.frombuffer(self.descriptor, dtype="<f4").astype(np.float32)

    def ref(self) -> FaceRef:
        return FaceRef(
            face_id=self.face_id,
            photo_id=self.photo_id,
            owner=self.owner,
            quality=self.quality,
            created_at=self.created_at,
        )


@dataclass(frozen=True)
class ForgottenBiometrics:
    """What forget_biometrics deleted."""

    faces: int
    people: int
    constraints: int


def constraint_id(constraint: Constraint) -> str:
    """The same correction made twice (same kind, faces, people and time) is stored once."""
    canonical = json.dumps(constraint_document(constraint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# ---- what both adapters share: documents and the constraint order --------------------------------------------

_OLDEST_STAMP = "0000-00-00T00:00:00.000000Z"


def face_document(face: StoredFace) -> dict[str, Any]:
    """The face as JSON-ready values, without the descriptor (binary: stored as a blob/B attribute beside it)."""
    return face.model_dump(mode="json", exclude={"descriptor"}, exclude_none=True)


def face_from_document(document: dict[str, Any], descriptor: bytes | None) -> StoredFace:
    return StoredFace.model_validate({**document, "descriptor": descriptor})


def person_document(person: Person) -> dict[str, Any]:
    document = person.model_dump(mode="json", exclude={"named"}, exclude_none=True)
    document["face_ids"] = sorted(person.face_ids)
    return document


def person_from_document(document: dict[str, Any]) -> Person:
    return Person.model_validate(document)


def constraint_document(constraint: Constraint) -> dict[str, Any]:
    document = CONSTRAINT_ADAPTER.dump_python(constraint, mode="json", exclude_none=True)
    if "face_ids" in document:  # a frozenset: its order changes from one process to the next
        document["face_ids"] = sorted(document["face_ids"])
    return document


def constraint_from_document(document: dict[str, Any]) -> Constraint:
    return CONSTRAINT_ADAPTER.validate_python(document)


def constraint_sort_key(constraint: Constraint) -> str:
    """`{created_at as UTC stamp}#{constraint_id}`: oldest first, undated ones before every dated one."""
    moment = constraint.created_at
    if moment is None:
        stamp = _OLDEST_STAMP
    else:
        moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
        stamp = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"
    return f"{stamp}#{constraint_id(constraint)}"

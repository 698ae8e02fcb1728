"""People: faces grouped into persons, the user's corrections, and biometric consent.

Corrections (rename, hide, merge, move a face, "not this person") take effect at once on the stored people and
are also recorded as constraints, so every later clustering run keeps them. Face processing is opt-in per
user; withdrawing consent deletes the collection (cloud) or the descriptors (local), and every face, person and
correction of that user. Face boxes stay in the photos' analyses (they hold no biometric template): the photo
still counts as showing people.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from photo_organizer.analysis.models import FaceDetection
from photo_organizer.ports.analysis import AnalysisStore
from photo_organizer.errors import NotFoundError, ValidationError
from photo_organizer.feedback.models import refuse_control_characters
from photo_organizer.models import utcnow
from photo_organizer.people import (
    ClusteringResult,
    Person,
    cluster_people,
    merge_people,
    move_face,
    nearest_edges,
    not_this_person,
)
from photo_organizer.people.models import DEFAULT_THRESHOLD, CannotLink
from photo_organizer.people.store import ForgottenBiometrics, StoredFace
from photo_organizer.people.store import constraint_id as constraint_id_of
from photo_organizer.ports.people import PeopleStore, UserSettings

MIN_PERSON_FACES = 2  # a face seen once is not yet somebody; naming it makes it a person anyway


class FaceMatcher(Protocol):
    """A promoted face matcher (learning.faces.FaceMatcher): a projection of the descriptors and the similarity,
    on people.models' common scale, from which two faces are the same person."""

    @property
    def threshold(self) -> float: ...

    def project(self, descriptors: np.ndarray) -> np.ndarray: ...


class PersonNotFoundError(NotFoundError):
    pass


class FaceNotFoundError(NotFoundError):
    pass


class PersonView(BaseModel):
    person_id: str
    name: str | None
    hidden: bool
    face_count: int
    photo_count: int
    cover_face_id: str | None
    cover_photo_id: str | None


class ConsentView(BaseModel):
    biometric_consent: bool
    forgotten: dict[str, int] | None = None


@dataclass
class PeopleService:
    people: PeopleStore
    user_settings: UserSettings
    analysis: AnalysisStore
    forget_collection: Callable[[str], None] | None = None  # aws: delete the owner's Rekognition collection
    on_people_changed: Callable[[str, set[str]], None] | None = None  # (owner, photo ids): local search reindex
    # owner -> the owner's promoted face matcher (local: the model registry's approved faces model), if any
    face_matcher: Callable[[str], FaceMatcher | None] | None = None

    # ---- faces from analysis ----------------------------------------------------------------------------

    def record_faces(self, owner: str, photo_id: str, faces: Sequence[FaceDetection]) -> None:
        if not self.user_settings.biometric_consent(owner):
            return  # consent withdrawn while a run was under way: keep nothing
        now = utcnow()
        stored = [
            StoredFace(
                face_id=face.face_handle,
                owner=owner,
                photo_id=photo_id,
                box=face.box,
                quality=round((face.quality.sharpness or 50.0) / 100.0, 4),
                created_at=now,
                descriptor=face.descriptor,
                rekognition_face_id=None if face.descriptor is not None else face.face_handle,
            )
            for face in faces
            if face.face_handle
        ]
        if stored:
            self.people.save_faces(stored)

    def recluster(self, owner: str, matcher: FaceMatcher | None = None) -> ClusteringResult:
        """Local backend: exact nearest neighbours on the descriptors, then constrained clustering.

        With a matcher (given, or the owner's promoted one from `face_matcher`), the descriptors are projected by
        its head first and edges are cut at its threshold instead of the fixed one. Names, merges, moves and
        not-this-person links are constraints: they hold whatever the matcher says."""
        if matcher is None and self.face_matcher is not None:
            matcher = self.face_matcher(owner)
        faces = [f for f in self.people.faces(owner) if f.descriptor is not None]
        threshold = DEFAULT_THRESHOLD if matcher is None else float(matcher.threshold)
        edges = []
        if faces:
            vectors = np.stack([f.vector() for f in faces])
            if matcher is not None:
                vectors = np.asarray(matcher.project(vectors), dtype=np.float64)
            edges = nearest_edges([f.face_id for f in faces], vectors, threshold=threshold)
        result = cluster_people(
            owner,
            [f.ref() for f in faces],
            edges,
            self.people.people(owner),
            self.people.constraints(owner),
            threshold=threshold,
            min_cluster_size=MIN_PERSON_FACES,
        )
        self.people.replace_people(owner, result.people)
        self._changed(owner, {f.face_id for f in faces})
        return result

    def forget_photo(self, owner: str, photo_id: str) -> None:
        """The photo is being deleted: its faces leave their people (and the store)."""
        removed = set(self.people.delete_faces_of_photo(owner, photo_id))
        if not removed:
            return
        kept = []
        for person in self.people.people(owner):
            faces = person.face_ids - removed
            cover = person.cover_face_id if person.cover_face_id in faces else (min(faces) if faces else None)
            if faces or person.named or person.hidden:
                kept.append(person.model_copy(update={"face_ids": faces, "cover_face_id": cover}))
        self.people.replace_people(owner, kept)

    # ---- reading -----------------------------------------------------------------------------------------

    def list(self, owner: str, *, include_hidden: bool = False) -> list[PersonView]:
        photo_of = {f.face_id: f.photo_id for f in self.people.faces(owner)}
        views = [
            PersonView(
                person_id=p.person_id,
                name=p.name,
                hidden=p.hidden,
                face_count=len(p.face_ids),
                photo_count=len({photo_of[f] for f in p.face_ids if f in photo_of}),
                cover_face_id=p.cover_face_id,
                cover_photo_id=photo_of.get(p.cover_face_id) if p.cover_face_id else None,
            )
            for p in self.people.people(owner)
            if include_hidden or not p.hidden
        ]
        return sorted(views, key=lambda v: (v.name is None, (v.name or "").casefold(), -v.photo_count, v.person_id))

    def photo_ids(self, owner: str, person_id: str) -> list[str]:
        person = self._person(owner, person_id)
        photo_of = {f.face_id: f.photo_id for f in self.people.faces(owner)}
        return sorted({photo_of[f] for f in person.face_ids if f in photo_of}, reverse=True)

    def people_in_photo(self, owner: str, photo_id: str) -> list[Person]:
        faces = {f.face_id for f in self.people.faces_of_photo(owner, photo_id)}
        return [p for p in self.people.people(owner) if p.face_ids & faces]

    def faces_in_photo(self, owner: str, photo_id: str) -> list[tuple[StoredFace, Person | None]]:
        """The photo's stored faces, each with the visible person it is in (None when none or hidden)."""
        faces = self.people.faces_of_photo(owner, photo_id)
        people = [p for p in self.people.people(owner) if not p.hidden]
        return [(f, next((p for p in people if f.face_id in p.face_ids), None)) for f in faces]

    # ---- corrections ---------------------------------------------------------------------------------------

    def update(self, owner: str, person_id: str, *, name: str | None = None, hidden: bool | None = None,
               clear_name: bool = False) -> Person:
        person = self._person(owner, person_id)
        changes: dict = {}
        if clear_name:
            changes["name"] = None
        elif name is not None:
            try:
                refuse_control_characters(name, "a name")
            except ValueError as exc:
                raise ValidationError(str(exc)) from exc
            cleaned = " ".join(name.split())
            if not cleaned or len(cleaned) > 100:
                raise ValidationError("a name is 1 to 100 characters")
            changes["name"] = cleaned
        if hidden is not None:
            changes["hidden"] = hidden
        updated = person.model_copy(update=changes)
        self.people.save_person(updated)
        self._changed(owner, person.face_ids)
        return updated

    def merge(self, owner: str, target_id: str, source_id: str) -> Person:
        if target_id == source_id:
            raise ValidationError("a person cannot be merged into itself")
        target, source = self._person(owner, target_id), self._person(owner, source_id)
        for constraint in merge_people(target, source, at=utcnow()):
            self.people.add_constraint(owner, constraint)
        merged = target.model_copy(
            update={"face_ids": target.face_ids | source.face_ids, "name": target.name or source.name}
        )
        others = [p for p in self.people.people(owner) if p.person_id not in (target_id, source_id)]
        self.people.replace_people(owner, [*others, merged])
        self._changed(owner, merged.face_ids)
        return merged

    def move_face(self, owner: str, face_id: str, to_person_id: str, *, at: datetime | None = None) -> Person:
        """`at`: the correction's time (a feedback event's created_at, so that its undo finds the same
        corrections again)."""
        self._face(owner, face_id)
        target = self._person(owner, to_person_id)
        current = self.person_of_face(owner, face_id)
        corrections = move_face(face_id, current, to_person_id, at=at or utcnow())
        # The same correction stated again replaces the earlier one: a client retrying a move that failed after its
        # corrections were stored (the face's move throttled) stores them once, at the time its undo will use.
        restated = {_statement(c) for c in corrections}
        for stored in self.people.constraints(owner):
            if _statement(stored) in restated:
                self.people.remove_constraint(owner, constraint_id_of(stored))
        for constraint in corrections:
            self.people.add_constraint(owner, constraint)
        return self._reassign(owner, face_id, target)

    def not_this_person(self, owner: str, face_id: str, person_id: str, *, at: datetime | None = None) -> str:
        """Returns the id of the stored correction (what undo removes): not_this_person_id's answer."""
        self._face(owner, face_id)
        person = self._person(owner, person_id)
        stored = self._cannot_link(owner, face_id, person_id)
        constraint_id = constraint_id_of(stored) if stored is not None else \
            self.people.add_constraint(owner, not_this_person(face_id, person_id, at=at or utcnow()))
        if face_id in person.face_ids:
            self._reassign(owner, face_id, None)
        return constraint_id

    def not_this_person_id(self, owner: str, face_id: str, person_id: str, *, at: datetime) -> str:
        """The id of the correction not_this_person(..., at=at) stores or finds, known before it runs (a feedback
        event is recorded first, naming it)."""
        stored = self._cannot_link(owner, face_id, person_id)
        return constraint_id_of(stored if stored is not None else not_this_person(face_id, person_id, at=at))

    def _cannot_link(self, owner: str, face_id: str, person_id: str) -> CannotLink | None:
        # A client retrying a request that failed half-way (the correction stored, the face's move throttled)
        # must not store the same "not this person" twice: the correction holds once, whenever it was made.
        return next((c for c in self.people.constraints(owner) if isinstance(c, CannotLink)
                     and (c.face_id, c.person_id) == (face_id, person_id)), None)

    def face(self, owner: str, face_id: str) -> StoredFace:
        """The owner's face; FaceNotFoundError for a missing face or another owner's."""
        return self._face(owner, face_id)

    def person(self, owner: str, person_id: str) -> Person:
        """The owner's person; PersonNotFoundError for a missing person or another owner's."""
        return self._person(owner, person_id)

    def person_of_face(self, owner: str, face_id: str) -> str | None:
        return next((p.person_id for p in self.people.people(owner) if face_id in p.face_ids), None)

    def undo_move(self, owner: str, face_id: str, from_person_id: str | None, to_person_id: str,
                  *, at: datetime) -> None:
        """Reverses move_face(face_id, to_person_id, at=at) made while the face was in from_person_id: its
        corrections go, and the face goes back where it was if it is still where the move put it (a person that
        no longer exists gets it back only by the next clustering run)."""
        for constraint in move_face(face_id, from_person_id, to_person_id, at=at):
            self.people.remove_constraint(owner, constraint_id_of(constraint))
        if self.person_of_face(owner, face_id) not in (to_person_id, None):
            return  # moved again since: the newer correction stands
        if not any(f.face_id == face_id for f in self.people.faces(owner)):
            return  # the photo was deleted meanwhile
        previous = self.people.person(owner, from_person_id) if from_person_id else None
        self._reassign(owner, face_id, previous)

    def undo_not_this_person(self, owner: str, face_id: str, person_id: str, constraint_id: str,
                             *, was_in_person: bool) -> None:
        """Reverses not_this_person: the correction goes; a face it took out of the person goes back, unless
        the face has found another person since."""
        self.people.remove_constraint(owner, constraint_id)
        if not was_in_person or self.person_of_face(owner, face_id) is not None:
            return
        person = self.people.person(owner, person_id)
        if person is not None and any(f.face_id == face_id for f in self.people.faces(owner)):
            self._reassign(owner, face_id, person)

    # ---- consent --------------------------------------------------------------------------------------------

    def consent(self, owner: str) -> ConsentView:
        return ConsentView(biometric_consent=self.user_settings.biometric_consent(owner))

    def set_consent(self, owner: str, consent: bool) -> ConsentView:
        self.user_settings.set_biometric_consent(owner, consent)
        if consent:
            return ConsentView(biometric_consent=True)
        # Order matters: consent off first (a running job stops keeping faces), then the cloud collection,
        # then every stored face, person and correction.
        if self.forget_collection is not None:
            self.forget_collection(owner)
        photo_ids = {f.photo_id for f in self.people.faces(owner)}
        forgotten: ForgottenBiometrics = self.people.forget_biometrics(owner)
        if self.on_people_changed is not None and photo_ids:
            self.on_people_changed(owner, photo_ids)
        return ConsentView(
            biometric_consent=False,
            forgotten={"faces": forgotten.faces, "people": forgotten.people, "corrections": forgotten.constraints},
        )

    def _changed(self, owner: str, face_ids: Iterable[str]) -> None:
        if self.on_people_changed is None:
            return
        wanted = set(face_ids)
        photo_ids = {f.photo_id for f in self.people.faces(owner) if f.face_id in wanted}
        if photo_ids:
            self.on_people_changed(owner, photo_ids)

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _person(self, owner: str, person_id: str) -> Person:
        person = self.people.person(owner, person_id)
        if person is None:
            raise PersonNotFoundError(person_id)
        return person

    def _face(self, owner: str, face_id: str) -> StoredFace:
        face = next((f for f in self.people.faces(owner) if f.face_id == face_id), None)
        if face is None:
            raise FaceNotFoundError(face_id)
        return face

    def _reassign(self, owner: str, face_id: str, target: Person | None) -> Person | None:
        updated: list[Person] = []
        result = None
        for person in self.people.people(owner):
            faces = person.face_ids - {face_id}
            if target is not None and person.person_id == target.person_id:
                faces = faces | {face_id}
            cover = person.cover_face_id if person.cover_face_id in faces else (min(faces) if faces else None)
            changed = person.model_copy(update={"face_ids": faces, "cover_face_id": cover})
            if changed.face_ids or changed.named or changed.hidden:
                updated.append(changed)
            if target is not None and person.person_id == target.person_id:
                result = changed
        self.people.replace_people(owner, updated)
        self._changed(owner, {face_id})
        return result


def _statement(constraint: object) -> tuple[str, str | None, str | None]:
    """What a face correction says, whenever it was said: its kind, face and person."""
    return type(constraint).__name__, getattr(constraint, "face_id", None), getattr(constraint, "person_id", None)

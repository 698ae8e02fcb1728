"""The people ports: the people store (faces, people, corrections), the users' consent, and what the cloud's
clustering runs keep between runs and ask Rekognition (SearchFaces)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from photo_organizer.analysis.throttling import BackoffStats
from photo_organizer.people.models import Constraint, Person, SimilarityEdge
from photo_organizer.people.searches import ClusteringMark, FaceSearch
from photo_organizer.people.store import ForgottenBiometrics, StoredFace


class PeopleStore(Protocol):
    def save_faces(self, faces: Iterable[StoredFace]) -> None:
        """Idempotent by (owner, face_id): saving a face again replaces it."""
        ...

    def faces(self, owner: str) -> list[StoredFace]:
        """Every face of the owner, by face id."""
        ...

    def faces_of_photo(self, owner: str, photo_id: str) -> list[StoredFace]: ...

    def delete_faces_of_photo(self, owner: str, photo_id: str) -> list[str]:
        """Deletes the photo's faces (the photo is being deleted); returns their ids, so that the caller can
        remove them from the collection and from people. Idempotent."""
        ...

    def replace_people(self, owner: str, people: Iterable[Person]) -> None:
        """Makes `people` the owner's whole set of people (a clustering run's result). Only changed people are
        written. local: one transaction. aws: one transaction up to 100 changed items, beyond that new and
        changed people are written before removed ones are deleted, so a reader may briefly see a face in both
        its old and its new person, never a person missing that exists before and after."""
        ...

    def save_person(self, person: Person) -> None:
        """Writes one person (a rename, hide or cover change), replacing the stored one."""
        ...

    def people(self, owner: str) -> list[Person]:
        """The owner's people, by person id."""
        ...

    def person(self, owner: str, person_id: str) -> Person | None: ...

    def add_constraint(self, owner: str, constraint: Constraint) -> str:
        """Stores a user correction; returns its id. Adding the same correction again changes nothing."""
        ...

    def constraints(self, owner: str) -> list[Constraint]:
        """The owner's corrections, oldest first (created_at None first)."""
        ...

    def remove_constraint(self, owner: str, constraint_id: str) -> bool:
        """Deletes one correction by the id add_constraint returned (its feedback event was undone); False when
        the owner has no such correction. Idempotent."""
        ...

    def forget_biometrics(self, owner: str) -> ForgottenBiometrics:
        """Deletes every face (and descriptor), person and correction of the owner; nothing of other owners."""
        ...


class UserSettings(Protocol):
    def biometric_consent(self, owner: str) -> bool:
        """The owner's choice, or the adapter's default when the owner never chose; False while the account is
        being erased (the erasure deletes the choice itself, so face processing must not fall back to a default)."""
        ...

    def set_biometric_consent(self, owner: str, consent: bool) -> None: ...

    def stored_settings(self, owner: str) -> int:
        """How many settings of the owner are stored (the erasure mark not counted): what account erasure's audit
        lists as "settings"."""
        ...

    def forget_settings(self, owner: str) -> int:
        """Account erasure: deletes the owner's settings (the erasure mark stays); returns how many there were."""
        ...

    def account_erasing(self, owner: str) -> bool:
        """True from the start of an account erasure until it finished: uploads are refused meanwhile."""
        ...

    def set_account_erasing(self, owner: str, erasing: bool) -> None:
        """Marks the start of an erasure; False removes the mark (no record of the owner is left behind)."""
        ...


class ClusteringState(Protocol):
    """Each face's last similarity search and the owner's last clustering (services.clustering)."""

    def consenting_owners(self) -> list[str]: ...

    def searches(self, owner: str) -> dict[str, FaceSearch]:
        """face id -> its last search, for the owner's faces that have one."""
        ...

    def record_search(self, owner: str, face_id: str, search: FaceSearch) -> bool:
        """False when the face is gone (deleted meanwhile): nothing is written."""
        ...

    def last_clustering(self, owner: str) -> ClusteringMark | None: ...

    def record_clustering(self, owner: str, mark: ClusteringMark) -> None: ...

    def forget_clustering(self, owner: str) -> bool:
        """Account erasure: the clustering mark goes (True when there was one). Idempotent."""
        ...


class FaceSearcher(Protocol):
    """Similar faces in the owner's collection; AnalysisRefusedError when the face is not there any more."""

    stats: BackoffStats

    def search_faces(self, owner: str, face_id: str, *, threshold: float, max_faces: int) -> list[SimilarityEdge]: ...


class FaceMatcherStore(Protocol):
    """The owner's promoted face matcher: the learning.faces.FaceMatcher JSON the retraining approved (aws: the
    `SETTINGS#face_matcher` item, written by re-application and read by the clustering job)."""

    def promoted(self, owner: str) -> dict[str, Any] | None:
        """The matcher document, or None while the owner has none (clustering keeps the fixed threshold)."""
        ...

    def promote(self, owner: str, document: dict[str, Any]) -> None:
        """Replaces the owner's matcher with this one."""
        ...

    def forget(self, owner: str) -> bool:
        """Account erasure: the owner's promoted matcher goes (True when there was one). Idempotent."""
        ...

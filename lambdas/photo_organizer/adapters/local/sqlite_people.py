"""PeopleStore and UserSettings in the local stack's SQLite file (beside the photos table).

Tables (created if missing): `faces` (owner, face_id, photo_id, document JSON, descriptor BLOB) indexed by photo,
`people` (owner, person_id, document JSON), `person_constraints` (owner, constraint_id, sort_key, document JSON)
ordered by sort_key (`{created_at UTC}#{id}`, the DynamoDB adapter's sort key), `user_settings` (owner,
biometric_consent, updated_at), `account_erasures` (owner, started_at: an erasure under way, no consent meanwhile).
Every write is one BEGIN IMMEDIATE transaction, so replace_people and forget_biometrics are atomic for readers in any
process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from photo_organizer.adapters.local.sqlite_access import SqliteAccess
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS faces (
    owner      TEXT NOT NULL,
    face_id    TEXT NOT NULL,
    photo_id   TEXT NOT NULL,
    document   TEXT NOT NULL,
    descriptor BLOB,
    PRIMARY KEY (owner, face_id)
);
CREATE INDEX IF NOT EXISTS faces_by_photo ON faces (owner, photo_id);
CREATE TABLE IF NOT EXISTS people (
    owner     TEXT NOT NULL,
    person_id TEXT NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (owner, person_id)
);
CREATE TABLE IF NOT EXISTS person_constraints (
    owner         TEXT NOT NULL,
    constraint_id TEXT NOT NULL,
    sort_key      TEXT NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (owner, constraint_id)
);
CREATE INDEX IF NOT EXISTS person_constraints_order ON person_constraints (owner, sort_key);
CREATE TABLE IF NOT EXISTS account_erasures (
    owner      TEXT PRIMARY KEY,
    started_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_settings (
    owner             TEXT PRIMARY KEY,
    biometric_consent INTEGER NOT NULL,
    updated_at        TEXT NOT NULL
);
"""


class SqlitePeopleStore(SqliteAccess):
    def __init__(self, path: Path | str, *, default_consent: bool = True) -> None:
        """default_consent: what biometric_consent answers for a user who never chose (on in the local demo)."""
        self._default_consent = default_consent
        self._open(path, _SCHEMA)

    # ---- faces ------------------------------------------------------------------------------------------------

    def save_faces(self, faces: Iterable[StoredFace]) -> None:
        rows = [
            (f.owner, f.face_id, f.photo_id, json.dumps(face_document(f), separators=(",", ":")), f.descriptor)
            for f in faces
        ]
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO faces VALUES (?, ?, ?, ?, ?)", rows)

    def faces(self, owner: str) -> list[StoredFace]:
        with self._read() as db:
            rows = db.execute(
                "SELECT document, descriptor FROM faces WHERE owner = ? ORDER BY face_id", (owner,)
            ).fetchall()
        return [face_from_document(json.loads(document), descriptor) for document, descriptor in rows]

    def faces_of_photo(self, owner: str, photo_id: str) -> list[StoredFace]:
        with self._read() as db:
            rows = db.execute(
                "SELECT document, descriptor FROM faces WHERE owner = ? AND photo_id = ? ORDER BY face_id",
                (owner, photo_id),
            ).fetchall()
        return [face_from_document(json.loads(document), descriptor) for document, descriptor in rows]

    def delete_faces_of_photo(self, owner: str, photo_id: str) -> list[str]:
        with self._write() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT face_id FROM faces WHERE owner = ? AND photo_id = ? ORDER BY face_id", (owner, photo_id)
                )
            ]
            db.execute("DELETE FROM faces WHERE owner = ? AND photo_id = ?", (owner, photo_id))
        return ids

    # ---- people -----------------------------------------------------------------------------------------------

    def replace_people(self, owner: str, people: Iterable[Person]) -> None:
        wanted = {person.person_id: person for person in people}
        if any(person.owner != owner for person in wanted.values()):
            raise OwnerMismatchError("replace_people got a person of another owner")
        with self._write() as db:
            stored = {
                person_id: document
                for person_id, document in db.execute(
                    "SELECT person_id, document FROM people WHERE owner = ?", (owner,)
                )
            }
            for person_id in stored.keys() - wanted.keys():
                db.execute("DELETE FROM people WHERE owner = ? AND person_id = ?", (owner, person_id))
            for person_id, person in wanted.items():
                document = _person_json(person)
                if stored.get(person_id) != document:
                    db.execute("INSERT OR REPLACE INTO people VALUES (?, ?, ?)", (owner, person_id, document))

    def save_person(self, person: Person) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO people VALUES (?, ?, ?)", (person.owner, person.person_id, _person_json(person))
            )

    def people(self, owner: str) -> list[Person]:
        with self._read() as db:
            rows = db.execute("SELECT document FROM people WHERE owner = ? ORDER BY person_id", (owner,)).fetchall()
        return [person_from_document(json.loads(row[0])) for row in rows]

    def person(self, owner: str, person_id: str) -> Person | None:
        with self._read() as db:
            row = db.execute(
                "SELECT document FROM people WHERE owner = ? AND person_id = ?", (owner, person_id)
            ).fetchone()
        return person_from_document(json.loads(row[0])) if row else None

    # ---- corrections ------------------------------------------------------------------------------------------

    def add_constraint(self, owner: str, constraint: Constraint) -> str:
        cid = constraint_id(constraint)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO person_constraints VALUES (?, ?, ?, ?)",
                (owner, cid, constraint_sort_key(constraint), json.dumps(constraint_document(constraint))),
            )
        return cid

    def remove_constraint(self, owner: str, constraint_id: str) -> bool:
        with self._write() as db:
            removed = db.execute(
                "DELETE FROM person_constraints WHERE owner = ? AND constraint_id = ?", (owner, constraint_id)
            ).rowcount
        return removed > 0

    def constraints(self, owner: str) -> list[Constraint]:
        with self._read() as db:
            rows = db.execute(
                "SELECT document FROM person_constraints WHERE owner = ? ORDER BY sort_key", (owner,)
            ).fetchall()
        return [constraint_from_document(json.loads(row[0])) for row in rows]

    # ---- consent ----------------------------------------------------------------------------------------------

    def biometric_consent(self, owner: str) -> bool:
        with self._read() as db:
            choice, erasing = db.execute(
                "SELECT (SELECT biometric_consent FROM user_settings WHERE owner = ?),"
                " EXISTS (SELECT 1 FROM account_erasures WHERE owner = ?)",
                (owner, owner),
            ).fetchone()
        if erasing:
            return False
        return self._default_consent if choice is None else bool(choice)

    def set_biometric_consent(self, owner: str, consent: bool) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO user_settings VALUES (?, ?, ?)", (owner, int(consent), utcnow().isoformat())
            )

    def stored_settings(self, owner: str) -> int:
        with self._read() as db:
            return db.execute("SELECT COUNT(*) FROM user_settings WHERE owner = ?", (owner,)).fetchone()[0]

    def forget_settings(self, owner: str) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM user_settings WHERE owner = ?", (owner,)).rowcount

    def account_erasing(self, owner: str) -> bool:
        with self._read() as db:
            return db.execute("SELECT 1 FROM account_erasures WHERE owner = ?", (owner,)).fetchone() is not None

    def set_account_erasing(self, owner: str, erasing: bool) -> None:
        with self._write() as db:
            if erasing:
                db.execute("INSERT OR IGNORE INTO account_erasures VALUES (?, ?)", (owner, utcnow().isoformat()))
            else:
                db.execute("DELETE FROM account_erasures WHERE owner = ?", (owner,))

    def forget_biometrics(self, owner: str) -> ForgottenBiometrics:
        with self._write() as db:
            faces = db.execute("DELETE FROM faces WHERE owner = ?", (owner,)).rowcount
            people = db.execute("DELETE FROM people WHERE owner = ?", (owner,)).rowcount
            constraints = db.execute("DELETE FROM person_constraints WHERE owner = ?", (owner,)).rowcount
        return ForgottenBiometrics(faces=faces, people=people, constraints=constraints)

    # ---- helpers ----------------------------------------------------------------------------------------------



def _person_json(person: Person) -> str:
    return json.dumps(person_document(person), sort_keys=True, separators=(",", ":"))

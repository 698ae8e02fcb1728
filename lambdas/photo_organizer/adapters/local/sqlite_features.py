"""FeatureStore and SuggestionStore in the local stack's SQLite file, beside the photos and their analyses.

Tables (created if missing):
- `features` (owner, photo_id, image_embedding BLOB (1280 little-endian float16: 2.5 KB), saved_at): the label
  model's penultimate layer of each analysed photo, what the tagging model trains on.
- `suggestions` (owner, photo_id, suggestions JSON [{tag, confidence, on_photo}], saved_at): the approved tagging
  model's beliefs per photo, written by re-application (RetrainService), read by the photo view, search and the
  review queue. No row = no suggestions.

As the analysis store: a write needs the photo to exist (a deleted photo never gets features back) and rows of a
photo no longer in `photos` are invisible to every read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from photo_organizer.analysis.store import image_embedding_bytes, image_embedding_from_bytes
from photo_organizer.adapters.local.sqlite_access import SqliteAccess
from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
from photo_organizer.feedback.models import TagSuggestion
from photo_organizer.models import utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    owner           TEXT NOT NULL,
    photo_id        TEXT NOT NULL,
    image_embedding BLOB NOT NULL,
    saved_at        TEXT NOT NULL,
    PRIMARY KEY (owner, photo_id)
);
CREATE TABLE IF NOT EXISTS suggestions (
    owner       TEXT NOT NULL,
    photo_id    TEXT NOT NULL,
    suggestions TEXT NOT NULL,
    saved_at    TEXT NOT NULL,
    PRIMARY KEY (owner, photo_id)
);
"""
_PHOTO_EXISTS = "EXISTS (SELECT 1 FROM photos p WHERE p.owner = ? AND p.photo_id = ?)"



class SqliteFeatureStore(SqliteAccess):
    def __init__(self, path: Path | str) -> None:
        SqliteMetadataStore(path).close()  # the photos table the writes check
        self._open(path, _SCHEMA)

    def save_image_embedding(self, owner: str, photo_id: str, embedding: np.ndarray) -> None:
        data = image_embedding_bytes(embedding)
        with self._write() as db:
            db.execute(
                "INSERT INTO features (owner, photo_id, image_embedding, saved_at) "
                f"SELECT ?, ?, ?, ? WHERE {_PHOTO_EXISTS} "
                "ON CONFLICT (owner, photo_id) DO UPDATE SET image_embedding = excluded.image_embedding, "
                "saved_at = excluded.saved_at",
                (owner, photo_id, data, utcnow().isoformat(), owner, photo_id),
            )

    def image_embedding(self, owner: str, photo_id: str) -> np.ndarray | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT image_embedding FROM features WHERE owner = ? AND photo_id = ? AND {_PHOTO_EXISTS}",
                (owner, photo_id, owner, photo_id),
            ).fetchone()
        return image_embedding_from_bytes(row[0]) if row else None

    def image_embeddings(self, owner: str) -> dict[str, np.ndarray]:
        with self._read() as db:
            rows = db.execute(
                "SELECT f.photo_id, f.image_embedding FROM features f JOIN photos p "
                "ON p.owner = f.owner AND p.photo_id = f.photo_id WHERE f.owner = ? ORDER BY f.photo_id",
                (owner,),
            ).fetchall()
        return {photo_id: image_embedding_from_bytes(data) for photo_id, data in rows}

    def forget_owner(self, owner: str) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM features WHERE owner = ?", (owner,)).rowcount


class SqliteSuggestionStore(SqliteAccess):
    def __init__(self, path: Path | str) -> None:
        SqliteMetadataStore(path).close()
        self._open(path, _SCHEMA)

    def replace_suggestions(self, owner: str, photo_id: str, suggestions: Sequence[TagSuggestion]) -> None:
        body = json.dumps([s.model_dump(mode="json") for s in _ordered(suggestions)], separators=(",", ":"))
        with self._write() as db:
            if not suggestions:
                db.execute("DELETE FROM suggestions WHERE owner = ? AND photo_id = ?", (owner, photo_id))
                return
            db.execute(
                "INSERT INTO suggestions (owner, photo_id, suggestions, saved_at) "
                f"SELECT ?, ?, ?, ? WHERE {_PHOTO_EXISTS} "
                "ON CONFLICT (owner, photo_id) DO UPDATE SET suggestions = excluded.suggestions, "
                "saved_at = excluded.saved_at",
                (owner, photo_id, body, utcnow().isoformat(), owner, photo_id),
            )

    def suggestions(self, owner: str, photo_id: str) -> list[TagSuggestion]:
        with self._read() as db:
            row = db.execute(
                f"SELECT suggestions FROM suggestions WHERE owner = ? AND photo_id = ? AND {_PHOTO_EXISTS}",
                (owner, photo_id, owner, photo_id),
            ).fetchone()
        return _parse(row[0]) if row else []

    def all_suggestions(self, owner: str) -> dict[str, list[TagSuggestion]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT s.photo_id, s.suggestions FROM suggestions s JOIN photos p "
                "ON p.owner = s.owner AND p.photo_id = s.photo_id WHERE s.owner = ? ORDER BY s.photo_id",
                (owner,),
            ).fetchall()
        return {photo_id: _parse(body) for photo_id, body in rows}

    def forget_owner(self, owner: str) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM suggestions WHERE owner = ?", (owner,)).rowcount


def _ordered(suggestions: Sequence[TagSuggestion]) -> list[TagSuggestion]:
    """Most confident first, one entry per tag (the last given wins)."""
    by_tag = {s.tag: s for s in suggestions}
    return sorted(by_tag.values(), key=lambda s: (-s.confidence, s.tag))


def _parse(body: str) -> list[TagSuggestion]:
    return [TagSuggestion.model_validate(entry) for entry in json.loads(body)]

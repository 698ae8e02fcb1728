"""Which presigned upload URLs have been used: one row per key, claimed atomically and kept for good.

Every upload URL pins a key made for it alone, so "this key was claimed" is "this URL was used". The claim is an
INSERT under the key's primary key: of two concurrent POSTs exactly one wins, and a URL whose photo was later
rejected (and its bytes deleted) stays used.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from photo_organizer.adapters.local.sqlite_access import SECURE_DELETE
from photo_organizer.keys import PhotoKeys


class UsedUploadLedger:
    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, kept: opening one per claim (file, schema) and an fsync per commit took ~17 ms of every
        # upload at load (benchmarks/load.py uploads). WAL with synchronous=NORMAL, as the photo records: a commit
        # survives a crash of this process; only a power cut may lose the last claims, and then the photo's stored
        # original still refuses a second POST of the URL (the gateway checks that the key is free).
        self._db = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SECURE_DELETE)
            db.execute("CREATE TABLE IF NOT EXISTS used_uploads (key TEXT PRIMARY KEY, used_at REAL NOT NULL)")

    def claim(self, key: str) -> bool:
        """True for the first claim of `key`, ever; False for every later one."""
        with self._lock, self._db as db:
            inserted = db.execute(
                "INSERT INTO used_uploads (key, used_at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", (key, time.time())
            ).rowcount
        return inserted == 1

    def owner_claims(self, owner: str) -> int:
        with self._lock, self._db as db:
            return sum(db.execute(f"SELECT COUNT(*) FROM used_uploads WHERE {_IN_RANGE}", bounds).fetchone()[0]  # noqa: S608
                       for bounds in _owner_key_ranges(owner))

    def forget_owner(self, owner: str) -> int:
        with self._lock, self._db as db:
            return sum(db.execute(f"DELETE FROM used_uploads WHERE {_IN_RANGE}", bounds).rowcount  # noqa: S608
                       for bounds in _owner_key_ranges(owner))

    def release(self, key: str) -> None:
        """Gives a claimed URL back: only when its bytes could not be stored (a full disk), so the client's retry
        of the same URL is not refused as a reuse. Nothing was stored under the key, so nothing can be replaced."""
        with self._lock, self._db as db:
            db.execute("DELETE FROM used_uploads WHERE key = ?", (key,))


_IN_RANGE = "key >= ? AND key < ?"  # a primary-key range: no LIKE, whose `_` would match any character of an id


def _owner_key_ranges(owner: str) -> list[tuple[str, str]]:
    """[start, end) of the keys under each of the owner's prefixes (`originals/<owner>/`, ...): each prefix ends in
    `/`, so every key under it sorts below the prefix with its `/` replaced by the next character, `0`."""
    prefixes = {prefix.rsplit("/", 1)[0] + "/" for _, _, prefix, _ in PhotoKeys.blob_layout(owner)}
    return [(prefix, prefix[:-1] + "0") for prefix in sorted(prefixes)]

"""Serialised access to one SQLite connection, shared by the local stores (photos, analysis, people)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from photo_organizer.errors import StorageFullError, StorageUnavailableError


class SqliteAccess:
    """Mixin: the store sets `_db`, `_lock` and `_path`; reads and writes go through these context managers, so
    a locked database or a failed statement surfaces as the retryable StorageUnavailableError."""

    _db: sqlite3.Connection
    _lock: threading.Lock | threading.RLock
    _path: str

    def _open(self, path: Path | str, schema: str) -> None:
        """One connection shared by the threads of this process (WAL: readers in other processes never block)."""
        self._path = str(path)
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=10.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.OperationalError as exc:
                raise _unavailable(self._path, exc) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # locked by another process past the timeout
                raise _unavailable(self._path, exc) from exc
            try:
                yield self._db
                # Inside the try: a COMMIT can fail too (SQLITE_FULL, SQLITE_IOERR) and then leaves the
                # transaction open, so every later BEGIN on this shared connection would fail as well.
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise _unavailable(self._path, exc) from exc
                raise


def _unavailable(path: str, exc: sqlite3.OperationalError) -> StorageUnavailableError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StorageFullError(f"sqlite {path}: the disk or the database is full ({exc})")
    return StorageUnavailableError(f"sqlite {path}: {exc}")

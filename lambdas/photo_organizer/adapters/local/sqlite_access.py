"""Serialised access to one SQLite connection, shared by the local stores (photos, analysis, people)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from photo_organizer.errors import StorageFullError, StorageUnavailableError

# Every connection that deletes a user's rows sets this: SQLite otherwise leaves a deleted row's bytes in the page's
# free space and in freelist pages until they are reused, so an erased user could be read back from the file.
# ON (not FAST) zeroes freelist pages too. Cost measured by benchmarks/sqlite_secure_delete.py.
SECURE_DELETE = "PRAGMA secure_delete=ON"


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
            self._db.execute(SECURE_DELETE)
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


def truncate_write_ahead_logs(data_dir: Path) -> list[Path]:
    """Checkpoints every SQLite database under `data_dir` that has a write-ahead log and truncates the log to zero
    bytes: the log keeps the page images written before a delete (the erased user's rows) until it is reset, whatever
    secure_delete did to the database pages. Returns the databases a reader kept from finishing (their log is
    truncated by a later checkpoint; the next erasure or the stack's own checkpoints)."""
    busy = []
    for log in sorted(data_dir.rglob("*-wal")):
        database = log.with_name(log.name.removesuffix("-wal"))
        if not database.is_file():
            continue
        db = sqlite3.connect(database, timeout=2.0)  # waits that long for readers of an older snapshot
        try:
            blocked, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError:
            blocked = 1
        finally:
            db.close()
        if blocked:
            busy.append(database)
    return busy

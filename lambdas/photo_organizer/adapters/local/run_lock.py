"""One holder at a time per library: an advisory lock on a file in the data directory (fcntl.flock). Retraining
takes one; the search index's writer another (the serving process, or a batch `photo-organizer analyze`).

The kernel drops the lock when the process ends, however it ends: a crashed run never leaves the library locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from photo_organizer.errors import ConflictError


class LocalRunLock:
    def __init__(self, path: Path, *, busy_message: str = "a retraining of this library is already running") -> None:
        self.path = Path(path)
        self.busy_message = busy_message

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ConflictError(self.busy_message) from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

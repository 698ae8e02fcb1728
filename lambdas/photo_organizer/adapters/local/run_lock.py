"""One retraining at a time per library: an advisory lock on a file in the data directory (fcntl.flock).

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
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ConflictError("a retraining of this library is already running") from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

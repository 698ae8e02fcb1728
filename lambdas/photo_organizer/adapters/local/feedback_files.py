"""FeedbackDataset as files in the data directory: `<root>/feedback/date=YYYY-MM-DD/<part>.jsonl`.

The local FeedbackService appends each event (part "events") right after the store committed it. A partition's
new lines are one os.write on a file opened O_APPEND, then fsync: concurrent writers (the gateway and a retrain
in another process) never interleave inside a line, and an event the store holds is on disk before the request
answers. A crash between the store commit and the append loses the line only; the local retrain appends every
stored event missing from the files first (readers drop repeated feedback ids).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from photo_organizer.adapters.local.owner_files import write_atomically
from photo_organizer.errors import StorageUnavailableError, ValidationError
from photo_organizer.feedback.dataset import lines_by_partition
from photo_organizer.feedback.models import FeedbackRecord

LOCAL_PART = "events"


class FileFeedbackDataset:
    def __init__(self, root: Path | str) -> None:
        """root: the dataset root (the data directory's `datasets/`); lines go under its `feedback/`."""
        self.root = Path(root)
        self._lock = threading.Lock()

    def append(self, records: Sequence[FeedbackRecord], *, part: str = LOCAL_PART) -> None:
        if not part or "/" in part or part.startswith("."):
            raise ValidationError("a dataset part is a plain file name")
        with self._lock:
            for prefix, text in lines_by_partition(records).items():
                folder = self.root / prefix
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    fd = os.open(folder / f"{part}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    try:
                        os.write(fd, text.encode("utf-8"))
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as exc:
                    raise StorageUnavailableError(f"feedback dataset {prefix}: {exc.strerror}") from exc

    def forget_owner(self, owner: str) -> int:
        """Account erasure: rewrites every part file without the owner's lines (a temporary file flushed to disk, then
        an atomic rename: owner_files.write_atomically); returns how many lines went. Idempotent; other owners'
        lines stay in their order."""
        removed = 0
        with self._lock:
            for path in self.files():
                kept: list[str] = []
                lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
                for text in lines:
                    if text.strip() and json.loads(text).get("owner") == owner:
                        removed += 1
                    else:
                        kept.append(text)
                if len(kept) == len(lines):
                    continue
                try:
                    # flushed to disk before the rename: a crash leaves the old lines or the new, never an empty file
                    write_atomically(path, "".join(kept).encode("utf-8"))
                except OSError as exc:
                    raise StorageUnavailableError(f"feedback dataset {path.parent.name}: {exc.strerror}") from exc
        return removed

    def files(self) -> list[Path]:
        """Every part file, oldest partition first."""
        return sorted((self.root / "feedback").glob("date=*/*.jsonl"))

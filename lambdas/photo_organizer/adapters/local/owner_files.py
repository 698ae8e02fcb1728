"""One owner taken out of local training files that hold many owners (the model registry's versions, the
retraining's feature snapshot), with the transforms the cloud uses on its run files (feedback.erasure).

Each file is rewritten to a temporary file in its folder, flushed and renamed over it: a crash leaves every file as
it was or without the owner, and running the erasure again finishes the rest. A file is rewritten only when the
owner's id is in its bytes as a JSON string or label ("<owner>" or "<owner>/..."), which is also what the audit
looks for: quoted, so that a short id is never found inside another owner's base64 embedding.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

from photo_organizer.feedback.erasure import without_owner, without_owner_lines
from photo_organizer.ports.training import OwnerErasure

LINES_SUFFIX = ".jsonl"


def owner_tokens(owner: str) -> tuple[bytes, bytes]:
    return f'"{owner}"'.encode(), f'"{owner}/'.encode()


def names_owner(path: Path, owner: str) -> bool:
    """Does the file hold the owner's id (as a JSON string, or a label "<owner>/...")? Searched without loading it."""
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return any(data.find(token) >= 0 for token in owner_tokens(owner))
    except FileNotFoundError:
        return False


def strip_file(path: Path, owner: str, outcome: OwnerErasure, *, shown_as: str) -> None:
    """Rewrites the file without the owner (JSON Lines line by line, anything else whole by its name: JSON documents,
    tarballs); a file that still names the owner afterwards is added to outcome.unreadable as `shown_as`."""
    if not names_owner(path, owner):
        return
    removed = _strip_lines(path, owner) if path.name.endswith(LINES_SUFFIX) else _strip_document(path, owner)
    outcome.removed += removed
    outcome.objects += bool(removed)
    if names_owner(path, owner):
        outcome.unreadable.append(shown_as)


def write_atomically(path: Path, data: bytes) -> None:
    """A temporary file next to `path`, flushed to disk and renamed over it: readers see the old bytes or the new."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _strip_document(path: Path, owner: str) -> int:
    stripped = without_owner(path.read_bytes(), owner, path.name)
    if stripped.changed:
        write_atomically(path, stripped.data or b"{}\n")  # a document of nobody stays a readable document
    return stripped.removed


def _strip_lines(path: Path, owner: str) -> int:
    """Streams the lines (a feature snapshot holds every photo's embedding: it need not fit in memory twice)."""
    removed = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out, path.open("rb") as lines:
            for line in lines:
                stripped = without_owner_lines(line, owner)
                removed += stripped.removed
                out.write(stripped.data)
            out.flush()
            os.fsync(out.fileno())
        if removed:
            os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return removed

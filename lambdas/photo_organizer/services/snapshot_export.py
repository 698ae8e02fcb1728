"""The cloud's feature snapshot for one retraining run: services.training_export's rows for every owner who gave
feedback, written as the three JSON Lines files of learning.datasets through a writer the caller gives (the
retraining's export Lambda: `features/<name>` of the run in the dataset bucket).

One owner's rows are held in memory at a time (~4 KB a photo, the image embedding being most of it); they go to
three spooled temporary files (in memory up to a few MB, then on disk: Lambda's /tmp), so a large library never
has to fit in the function's memory, and each file reaches the writer as one stream of lines.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Protocol

from photo_organizer.learning.datasets import (
    FACES_FILE,
    PAIRS_FILE,
    PHOTOS_FILE,
    FaceFeatures,
    FacePair,
    PhotoFeatures,
    to_line,
)
from photo_organizer.ports.training_export import TrainingOwners
from photo_organizer.services.training_export import SnapshotCounts, TrainingExport

# The files' names under the snapshot's features/ folder, in the order they are written.
SNAPSHOT_FILES = tuple(PurePosixPath(path).name for path in (PHOTOS_FILE, FACES_FILE, PAIRS_FILE))
_SPOOL_BYTES = 8 << 20


class SnapshotWriter(Protocol):
    def __call__(self, name: str, lines: Iterable[str]) -> int:
        """Writes `features/<name>` ("photos.jsonl", "faces.jsonl", "pairs.jsonl"), one JSON document per line
        (no newline in `lines`); returns how many lines it wrote."""
        ...


@dataclass(frozen=True)
class SnapshotRows:
    """The snapshot as rows (learning.datasets' PhotoFeatures, FaceFeatures, FacePair), each iterable once: the
    shape of the retraining export step's FeatureSnapshot (services.training_runs)."""

    photos: Iterable[PhotoFeatures]
    faces: Iterable[FaceFeatures]
    pairs: Iterable[FacePair]
    counts: SnapshotCounts


@dataclass
class SnapshotExport:
    export: TrainingExport
    owners: TrainingOwners

    def write_snapshot(self, write: SnapshotWriter) -> SnapshotCounts:
        """Every file written once (an owner-less table writes three empty files: the training then skips, saying
        why). Returns what it wrote, image embeddings counted among the photos."""
        spools, counts = self._spool()
        try:
            for name in SNAPSHOT_FILES:
                write(name, _lines(spools[name]))
            return counts
        finally:
            for spool in spools.values():
                spool.close()

    def feature_snapshot(self) -> SnapshotRows:
        """The same rows for a caller that writes them itself (each iterable read once, in any order)."""
        spools, counts = self._spool()
        photos, faces, pairs = (spools[name] for name in SNAPSHOT_FILES)
        return SnapshotRows(photos=_rows(photos, PhotoFeatures), faces=_rows(faces, FaceFeatures),
                            pairs=_rows(pairs, FacePair), counts=counts)

    def _spool(self) -> tuple[dict[str, IO[str]], SnapshotCounts]:
        spools = {name: tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8")
                  for name in SNAPSHOT_FILES}
        counts = dict.fromkeys(("photos", "faces", "pairs", "embeddings"), 0)
        try:
            for owner in self.owners.owners():
                snapshot = self.export.owner_snapshot(owner)
                for name, rows in zip(SNAPSHOT_FILES, (snapshot.photos, snapshot.faces, snapshot.pairs), strict=True):
                    for row in rows:
                        spools[name].write(to_line(row) + "\n")
                counts["photos"] += len(snapshot.photos)
                counts["faces"] += len(snapshot.faces)
                counts["pairs"] += len(snapshot.pairs)
                counts["embeddings"] += sum(1 for row in snapshot.photos if row.embedding)
        except BaseException:
            for spool in spools.values():
                spool.close()
            raise
        for spool in spools.values():
            spool.seek(0)
        return spools, SnapshotCounts(**counts)


def _lines(spool: IO[str]) -> Iterator[str]:
    for line in spool:
        yield line.rstrip("\n")


def _rows(spool: IO[str], cls: type) -> Iterator:
    with spool:  # closed once read (or when the generator is dropped)
        for line in spool:
            body = json.loads(line)
            body.pop("schema", None)
            yield cls(**body)

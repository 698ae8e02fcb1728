"""Account erasure of the cloud's training data: the feedback dataset's lines and the run files and models of the owner.

The feedback Lambda runs it when the stream brings the REMOVE of the owner's erasure mark (the API clears the mark only
when nothing blocking remains: every feedback event, suggestion and promoted matcher of the owner is already gone from
the table). The API role never touches the dataset bucket: only the writer of the dataset deletes from it, as only
the stream indexer deletes from the search index.

Order: the dataset first (its tombstone stops late stream records of the owner from being written again), then the
run files, whose models are each a map of per-owner models fitted on that owner's examples alone (taking the owner's
entry out leaves every other owner's model as it was). A file naming the owner in a shape that cannot be stripped is
reported as remaining, never deleted blindly: it holds other owners' data too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from photo_organizer.keys import check_owner
from photo_organizer.ports.training import OwnerDataEraser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasedTrainingData:
    dataset_lines: int  # feedback lines of the owner deleted
    model_entries: int  # lines and model entries of the owner taken out of the run files
    files: int  # objects rewritten or deleted
    versions_deleted: int
    remaining: list[str] = field(default_factory=list)  # files still naming the owner (none when it worked)


class TrainingDataErasure:
    def __init__(self, dataset: OwnerDataEraser, runs: OwnerDataEraser | None = None) -> None:
        self._dataset = dataset
        self._runs = runs

    def erase(self, owner: str) -> ErasedTrainingData:
        check_owner(owner)
        lines = self._dataset.erase_owner(owner)
        runs = self._runs.erase_owner(owner) if self._runs is not None else None
        remaining = [*lines.unreadable, *(runs.unreadable if runs else [])]
        if remaining:
            log.warning("erased owner still named by %s training files that cannot be stripped", len(remaining))
        return ErasedTrainingData(
            dataset_lines=lines.removed,
            model_entries=runs.removed if runs else 0,
            files=lines.objects + (runs.objects if runs else 0),
            versions_deleted=lines.versions_deleted + (runs.versions_deleted if runs else 0),
            remaining=remaining,
        )

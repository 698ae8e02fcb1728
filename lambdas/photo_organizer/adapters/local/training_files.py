"""TrainingFiles of the local retraining: what `photo-organizer retrain` keeps on disk that holds several owners.

- the model registry's versions (`<data_dir>/models`): every version's model.json and metrics.json (LocalModelRegistry);
- the feature snapshot of the last run (`<data_dir>/datasets/features/*.jsonl`), rewritten without the owner's lines
  (the feedback lines beside it are the FeedbackDataset's to erase);
- the folder of a run that did not finish (`<data_dir>/retraining/<run>/`: its train/test sets, candidates and
  evaluation; a finished run removes its own). It is scratch no later run reads, so one naming the owner is deleted
  whole.

The erasure holds the retraining's lock: a run under way may have read the owner's data before the erasure and would
register a model of them after it (or lose its folder under it). While one runs, ConflictError: the account's
erasure is not finished and finishes when called again.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from photo_organizer.adapters.local.model_registry import LocalModelRegistry
from photo_organizer.adapters.local.owner_files import names_owner, strip_file
from photo_organizer.keys import check_owner
from photo_organizer.ports.training import OwnerErasure


class LocalTrainingFiles:
    def __init__(self, registry: LocalModelRegistry, *, data_dir: Path, snapshot_dir: Path, work_root: Path,
                 exclusive: Callable[[], AbstractContextManager[Any]]) -> None:
        """data_dir: what the audit's file names are relative to."""
        self._registry = registry
        self._data_dir = Path(data_dir)
        self._snapshot_dir = Path(snapshot_dir)
        self._work_root = Path(work_root)
        self._exclusive = exclusive

    def erase_owner(self, owner: str) -> OwnerErasure:
        check_owner(owner)
        with self._exclusive():
            outcome = self._registry.forget_owner(owner)
            for path in self._snapshot_files():
                strip_file(path, owner, outcome, shown_as=self._shown(path))
            for run in self._unfinished_runs():
                if any(names_owner(path, owner) for path in _files(run)):
                    shutil.rmtree(run)
                    outcome.objects += 1
        return outcome

    def files_naming(self, owner: str) -> list[str]:
        check_owner(owner)
        found = self._registry.files_naming(owner)
        found += [self._shown(path) for path in self._snapshot_files() if names_owner(path, owner)]
        found += [self._shown(path) for run in self._unfinished_runs() for path in _files(run)
                  if names_owner(path, owner)]
        return found

    def _snapshot_files(self) -> list[Path]:
        return _files(self._snapshot_dir)

    def _unfinished_runs(self) -> list[Path]:
        if not self._work_root.is_dir():
            return []
        return [run for run in sorted(self._work_root.iterdir()) if run.is_dir()]

    def _shown(self, path: Path) -> str:
        return str(path.relative_to(self._data_dir)) if path.is_relative_to(self._data_dir) else path.name


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

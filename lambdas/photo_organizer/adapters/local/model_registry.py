"""ModelRegistry on disk: `<data_dir>/models/<kind>/v0001/...`, and `approved.json` naming the approved version.

A version directory is filled under a temporary name and renamed into place (`register` never leaves a half
copied version behind a real name); `approved.json` is written to a temporary file, flushed and renamed over the
old one, last. A crash at any point leaves the previously approved version approved: the pointer either names
the old version or the new, complete one. Versions are never deleted (the history of what was promoted when).

Each version holds the model files and `metrics.json` (the evaluation that judged it).

Account erasure (`forget_owner`) rewrites every version's files without the owner, each atomically (owner_files):
model.json loses the owner's entry (each owner's model is fitted on that owner's examples alone, so the others'
work exactly as before), metrics.json the owner's "<owner>/<tag>" labels and their held-out rows. No version is
renamed and the pointer is not touched, so the approved version stays approved and valid. Leftovers of an
interrupted registration or write (names starting with ".": never read) that hold the owner are deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from photo_organizer.adapters.local.owner_files import names_owner, strip_file, write_atomically
from photo_organizer.errors import ValidationError
from photo_organizer.models import utcnow
from photo_organizer.ports.training import ModelVersion, OwnerErasure

APPROVED_FILE = "approved.json"
METRICS_FILE = "metrics.json"
_VERSION_DIR = re.compile(r"^v(\d{4,})$")
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


class LocalModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def approved(self, kind: str) -> ModelVersion | None:
        pointer = self._kind_dir(kind) / APPROVED_FILE
        try:
            body = json.loads(pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # never written by us half-way (rename), so unreadable means hand-edited: no approval
        version = int(body.get("version", 0))
        path = self._version_dir(kind, version)
        if version < 1 or not path.is_dir():
            return None
        return ModelVersion(kind=kind, version=version, path=path, metrics=_metrics(path), approved=True)

    def versions(self, kind: str) -> list[ModelVersion]:
        approved = self.approved(kind)
        found = []
        directory = self._kind_dir(kind)
        if not directory.is_dir():
            return []
        for child in sorted(directory.iterdir()):
            match = _VERSION_DIR.match(child.name)
            if match and child.is_dir():
                number = int(match.group(1))
                found.append(ModelVersion(kind=kind, version=number, path=child, metrics=_metrics(child),
                                          approved=approved is not None and approved.version == number))
        return found

    def register(self, kind: str, model_dir: Path, metrics: Mapping[str, Any], *, approve: bool) -> ModelVersion:
        directory = self._kind_dir(kind)
        directory.mkdir(parents=True, exist_ok=True)
        number = max((v.version for v in self.versions(kind)), default=0) + 1
        staging = Path(tempfile.mkdtemp(prefix=f".v{number:04d}-", dir=directory))
        try:
            shutil.copytree(model_dir, staging, dirs_exist_ok=True)
            body = {"registered_at": utcnow().isoformat(), **dict(metrics)}
            _write_json(staging / METRICS_FILE, json.dumps(body, indent=2, sort_keys=True, default=str))
            target = self._version_dir(kind, number)
            os.rename(staging, target)  # fails if the name exists: two registrations never share a version
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if approve:
            pointer = {"version": number, "approved_at": utcnow().isoformat()}
            _write_json(directory / APPROVED_FILE, json.dumps(pointer, indent=2))
        return ModelVersion(kind=kind, version=number, path=target, metrics=_metrics(target), approved=approve)

    def forget_owner(self, owner: str) -> OwnerErasure:
        """Every version of every kind without the owner; idempotent (a re-run after a crash finishes the rest).
        Call it while no retraining runs: a registration under way would add a version from before the erasure."""
        outcome = OwnerErasure()
        for path in self._files():
            if _leftover(path.relative_to(self.root)):
                if names_owner(path, owner):
                    path.unlink(missing_ok=True)
                    outcome.objects += 1
                continue
            strip_file(path, owner, outcome, shown_as=self._shown(path))
        for staging in self._staging_dirs():  # emptied of the owner's files above: a crashed registration's shell
            if not any(p.is_file() for p in staging.rglob("*")):
                shutil.rmtree(staging, ignore_errors=True)
        return outcome

    def files_naming(self, owner: str) -> list[str]:
        """The registry's files still holding the owner's id (the erasure audit: none after forget_owner), as
        `models/<kind>/...`."""
        return [self._shown(path) for path in self._files() if names_owner(path, owner)]

    def _shown(self, path: Path) -> str:
        return str(path.relative_to(self.root.parent))

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        kinds = [d for d in sorted(self.root.iterdir()) if d.is_dir() and _KIND.match(d.name)]
        return [path for kind in kinds for path in sorted(kind.rglob("*")) if path.is_file()]

    def _staging_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [d for kind in self.root.iterdir() if kind.is_dir() and _KIND.match(kind.name)
                for d in kind.iterdir() if d.is_dir() and d.name.startswith(".")]

    def _kind_dir(self, kind: str) -> Path:
        if not _KIND.match(kind):
            raise ValidationError(f"not a model kind: {kind!r}")
        return self.root / kind

    def _version_dir(self, kind: str, version: int) -> Path:
        return self._kind_dir(kind) / f"v{version:04d}"


def _metrics(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def _write_json(path: Path, text: str) -> None:
    write_atomically(path, (text + "\n").encode("utf-8"))


def _leftover(relative: Path) -> bool:
    """A staging folder of an interrupted registration or the temporary file of an interrupted write."""
    return any(part.startswith(".") for part in relative.parts)

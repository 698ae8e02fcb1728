"""ModelRegistry on disk: `<data_dir>/models/<kind>/v0001/...`, and `approved.json` naming the approved version.

A version directory is filled under a temporary name and renamed into place (`register` never leaves a half
copied version behind a real name); `approved.json` is written to a temporary file, flushed and renamed over the
old one, last. A crash at any point leaves the previously approved version approved: the pointer either names
the old version or the new, complete one. Versions are never deleted (the history of what was promoted when).

Each version holds the model files and `metrics.json` (the evaluation that judged it).
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

from photo_organizer.errors import ValidationError
from photo_organizer.models import utcnow
from photo_organizer.ports.training import ModelVersion

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
            _write_atomically(staging / METRICS_FILE, json.dumps(body, indent=2, sort_keys=True, default=str))
            target = self._version_dir(kind, number)
            os.rename(staging, target)  # fails if the name exists: two registrations never share a version
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if approve:
            pointer = {"version": number, "approved_at": utcnow().isoformat()}
            _write_atomically(directory / APPROVED_FILE, json.dumps(pointer, indent=2))
        return ModelVersion(kind=kind, version=number, path=target, metrics=_metrics(target), approved=approve)

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


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

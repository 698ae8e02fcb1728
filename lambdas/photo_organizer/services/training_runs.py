"""The retraining pipeline's Lambda steps (cloud): ExportFeatures before the jobs, Reapply<Kind> after a promotion.

ExportFeatures writes the run's feature snapshot (learning.datasets' JSON Lines: features/photos.jsonl, faces.jsonl,
pairs.jsonl) from `snapshot` (the cloud reading of the library: services.training_export over the aws ports, wired in
bootstrap) and stages each kind's currently approved model from the registry, so Evaluate compares candidate and
approved on the same held-out set.

Reapply<Kind> re-applies a promoted model in the Lambda itself, with photo_organizer.learning (numpy only, shipped in
the bundle), instead of an apply_models.py processing job: no extra job to start for a few thousand photos, and the
writes go through the same ports as the local re-application. Tagging: every photo of the snapshot whose owner has a
model gets its suggestions replaced. Faces: each owner's matcher document is promoted (the clustering job reads it).
Limit: one invocation (15 minutes); a library too large for that would move the scoring to apply_models.py in a
Processing step and keep this step as the writer of its suggestions.jsonl/matchers.json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from photo_organizer.errors import ValidationError
from photo_organizer.feedback.models import TagSuggestion
from photo_organizer.learning.datasets import FACES_FILE, PAIRS_FILE, PHOTOS_FILE, to_line
from photo_organizer.ports.feedback import SuggestionStore
from photo_organizer.ports.training import ApprovedModels, RunArtifacts

KINDS = ("tagging", "faces")


@dataclass(frozen=True)
class FeatureSnapshot:
    """learning.datasets rows: PhotoFeatures, FaceFeatures, FacePair."""

    photos: Iterable[Any]
    faces: Iterable[Any] = ()
    pairs: Iterable[Any] = ()


class Suggester(Protocol):
    def suggest(self, photo: Any) -> list[tuple[str, float, bool]]: ...


class FaceMatcherSettings(Protocol):
    def promote(self, owner: str, document: dict[str, Any]) -> None: ...


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class TrainingRunStaging:
    def __init__(self, artifacts: RunArtifacts, approved: ApprovedModels, snapshot: Callable[[], FeatureSnapshot]) -> None:
        self._artifacts = artifacts
        self._approved = approved
        self._snapshot = snapshot

    def stage(self, run: str, groups: Mapping[str, str]) -> dict[str, int]:
        unknown = set(groups) - set(KINDS)
        if unknown:
            raise ValidationError(f"unknown model kinds: {sorted(unknown)}")
        snapshot = self._snapshot()
        counts = {
            "photos": self._artifacts.write_features(run, _name(PHOTOS_FILE), (to_line(r) for r in snapshot.photos)),
            "faces": self._artifacts.write_features(run, _name(FACES_FILE), (to_line(r) for r in snapshot.faces)),
            "pairs": self._artifacts.write_features(run, _name(PAIRS_FILE), (to_line(r) for r in snapshot.pairs)),
        }
        for kind, group in groups.items():
            self._artifacts.stage_approved(run, kind, self._approved.latest_approved(group))
        return counts


class ModelReapplication:
    def __init__(self, artifacts: RunArtifacts, *, suggestions: SuggestionStore | None,
                 matchers: FaceMatcherSettings | None,
                 tagging_models: Callable[[Mapping[str, Any]], Mapping[str, Suggester]],
                 read_photo: Callable[[str], Any],
                 erased: Callable[[Iterable[str]], Iterable[str]] | None = None) -> None:
        """erased(owners) -> those whose account was erased (the dataset's tombstones): a run that was under way
        during an erasure trained on the owner's snapshot; its model's entry for them is never applied."""
        self._artifacts = artifacts
        self._suggestions = suggestions
        self._matchers = matchers
        self._tagging_models = tagging_models
        self._read_photo = read_photo  # a features/photos.jsonl line -> PhotoFeatures
        self._erased = erased

    def reapply(self, kind: str, model_data: str, run: str) -> int:
        """The number of photos (tagging) or owners (faces) updated."""
        document = self._artifacts.model_document(model_data)
        if document.get("kind", kind) != kind:
            raise ValidationError(f"the {kind} step was given a {document.get('kind')} model")
        if kind == "tagging":
            return self._tagging(document, run)
        if kind == "faces":
            return self._faces(document)
        raise ValidationError(f"unknown model kind {kind!r}")

    def _tagging(self, document: Mapping[str, Any], run: str) -> int:
        if self._suggestions is None:
            raise ValidationError("no suggestion store is wired for tagging re-application")
        models = self._without_erased(self._tagging_models(document))
        updated = 0
        for photo in self._photos(run):
            model = models.get(photo.owner)
            if model is None:
                continue
            scores = [TagSuggestion(tag=tag, confidence=min(1.0, max(0.0, float(p))), on_photo=bool(on_photo))
                      for tag, p, on_photo in model.suggest(photo)]
            self._suggestions.replace_suggestions(photo.owner, photo.photo_id, scores)
            updated += 1
        return updated

    def _photos(self, run: str) -> Iterator[Any]:
        for text in self._artifacts.read_features(run, _name(PHOTOS_FILE)):
            yield self._read_photo(text)

    def _faces(self, document: Mapping[str, Any]) -> int:
        if self._matchers is None:
            raise ValidationError("no face matcher store is wired for faces re-application")
        owners = self._without_erased(document.get("owners") or {})
        for owner, matcher in owners.items():
            self._matchers.promote(owner, dict(matcher))
        return len(owners)

    def _without_erased(self, by_owner: Mapping[str, Any]) -> dict[str, Any]:
        gone = set(self._erased(list(by_owner))) if self._erased is not None and by_owner else set()
        return {owner: value for owner, value in by_owner.items() if owner not in gone}

"""Retraining, locally: the SageMaker pipeline's steps with the same scripts, run through the Trainer port.

record (append stored feedback missing from the dataset) -> export (the feature snapshot) -> preprocess (every
labelled example, with its cross-fitting fold) -> train_tagging + train_faces (on all of them) -> evaluate (the
candidate cross-fitted, the approved model and the untrained baseline as they are, on the SAME examples) -> gate
(learning.promotion) -> register (every trained candidate; approved only when it wins) -> apply (the approved models: suggestions for every photo, people regrouped with the promoted matcher)
-> index (the photos whose suggestions or people changed).

A kind with no feedback to learn from is skipped with the reason and never trained; a candidate that trained no
owner, failed, or does not beat the approved model is kept out (the approved one stays). Nothing reaches the
registry before the gate: a crash anywhere before leaves it as it was (and the registry moves its approved pointer
atomically itself).
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photo_organizer.errors import TrainingFailedError
from photo_organizer.feedback.models import FeedbackType, TagSuggestion
from photo_organizer.learning.datasets import read_feedback
from photo_organizer.learning.examples import LABELLED_DIR
from photo_organizer.ports.feedback import FeedbackDataset, FeedbackStore, SuggestionStore
from photo_organizer.ports.training import ModelRegistry, ModelVersion, ScriptRun, Trainer
from photo_organizer.services.people import FaceMatcher, PeopleService
from photo_organizer.services.training_export import TrainingExport

log = logging.getLogger(__name__)

KINDS = ("tagging", "faces")
SCRIPTS = ("preprocess.py", "train_tagging.py", "train_faces.py", "evaluate.py")
STEPS = ("record", "export", "preprocess", "train tagging", "train faces", "evaluate", "register", "apply", "index")
TRAIN_SCRIPT = {"tagging": "train_tagging.py", "faces": "train_faces.py"}
MODEL_FILE = "model.json"
EVALUATION_FILE = "evaluation.json"
_TAG_EVENTS = {FeedbackType.TAG_ADDED, FeedbackType.TAG_CONFIRMED, FeedbackType.TAG_REJECTED}
_FACE_EVENTS = {FeedbackType.FACE_ASSIGNED, FeedbackType.FACE_REJECTED}


@dataclass
class KindOutcome:
    kind: str
    status: str  # "skipped" | "promoted" | "kept"
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)  # the kind's evaluation section
    version: int | None = None  # the registered version (approved when promoted)
    approved_version: int | None = None  # what is approved after the run


@dataclass
class RetrainReport:
    run_id: str
    outcomes: dict[str, KindOutcome] = field(default_factory=dict)
    backfilled_events: int = 0
    backfilled_embeddings: int = 0
    snapshot: dict[str, int] = field(default_factory=dict)
    photos_with_suggestions: int = 0
    suggestions_changed: int = 0
    people_regrouped: int = 0  # owners
    photos_reindexed: int = 0

    @property
    def promoted(self) -> list[str]:
        return [kind for kind, outcome in self.outcomes.items() if outcome.status == "promoted"]


StepCallback = Callable[[str, str], None]  # (step, "start" | "done" | a line of the script's output)


@dataclass
class Appliers:
    """The approved models in use (learning.tagging / learning.faces, loaded from the registry's model.json)."""

    # model.json document -> owner -> model with suggest(PhotoFeatures) -> [(tag, confidence, on_photo)]
    tagging: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    # model.json document -> owner -> FaceMatcher
    faces: Callable[[Mapping[str, Any]], Mapping[str, FaceMatcher]]


def _tagging_models(document: Mapping[str, Any]) -> Mapping[str, Any]:
    from photo_organizer.learning.tagging import models_from_document

    return models_from_document(document)


def _face_matchers(document: Mapping[str, Any]) -> Mapping[str, FaceMatcher]:
    from photo_organizer.learning.faces import matchers_from_document

    return matchers_from_document(document)


def learning_appliers() -> Appliers:
    return Appliers(tagging=_tagging_models, faces=_face_matchers)


def learning_decide(evaluation: Mapping[str, Any], kind: str, margin: float, min_examples: int) -> Any:
    from photo_organizer.learning.promotion import decide

    return decide(evaluation, kind, margin, min_examples)


@dataclass
class RetrainService:
    trainer: Trainer
    registry: ModelRegistry
    export: TrainingExport
    feedback: FeedbackStore
    dataset: FeedbackDataset
    dataset_root: Path  # holds feedback/ (the FeedbackDataset writes there) and features/ (the snapshot)
    work_root: Path  # one scratch folder per run, removed afterwards
    owners: Callable[[], Iterable[str]]
    suggestions: SuggestionStore
    people: PeopleService | None = None
    biometric_consent: Callable[[str], bool] = lambda owner: False  # noqa: E731
    reindex: Callable[[str, set[str]], None] | None = None  # (owner, photo ids): the local search index
    # owner -> how many analysed photos got their missing image embedding (analysed before embeddings existed)
    fill_embeddings: Callable[[str], int] | None = None
    appliers: Appliers = field(default_factory=learning_appliers)
    decide: Callable[[Mapping[str, Any], str, float, int], Any] = learning_decide
    margin: float = 0.01
    min_examples: int = 10
    min_each_answer: int = 10  # judged same/different-person pairs, positive tag labels (learning.promotion)
    # "preprocess" | kind -> {name: value}: the scripts' `--name value` arguments
    hyperparameters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    keep_work: bool = False
    # () -> a context held for the whole run: one retraining at a time (ConflictError for a second one)
    exclusive: Callable[[], AbstractContextManager[Any]] | None = None

    # ---- the run ----------------------------------------------------------------------------------------------

    def run(self, *, on_step: StepCallback | None = None) -> RetrainReport:
        step = on_step or (lambda name, what: None)
        run_id = uuid.uuid4().hex[:12]
        report = RetrainReport(run_id)
        with self.exclusive() if self.exclusive is not None else nullcontext():
            work = self.work_root / run_id
            work.mkdir(parents=True, exist_ok=True)
            try:
                self._run(report, work, step)
            finally:
                if not self.keep_work:
                    shutil.rmtree(work, ignore_errors=True)
        return report

    def _run(self, report: RetrainReport, work: Path, step: StepCallback) -> None:
        owners = sorted(set(self.owners()))

        step("record", "start")
        report.backfilled_events = self.backfill(owners, part=f"retrain-{report.run_id}")
        events = read_feedback(self.dataset_root)
        step("record", "done")

        step("export", "start")
        if self.fill_embeddings is not None:
            report.backfilled_embeddings = sum(self.fill_embeddings(owner) for owner in owners)
        counts = self.export.write(self.dataset_root, owners)
        report.snapshot = {"photos": counts.photos, "faces": counts.faces, "pairs": counts.pairs,
                           "embeddings": counts.embeddings}
        step("export", "done")

        wanted = {kind: reason for kind, reason in self._nothing_to_learn(events).items()}
        trained: dict[str, Path] = {}
        if len(wanted) < len(KINDS):
            examples = work / "examples"
            approved_tagging = self._approved_dir(work, "tagging")
            step("preprocess", "start")
            self._script("preprocess", ScriptRun(
                script="preprocess.py",
                channels={"dataset": self.dataset_root, "approved_tagging": approved_tagging},
                model_dir=work / "preprocess-model",
                output_dir=work / "preprocess-output",
                hyperparameters={**self.hyperparameters.get("preprocess", {}), "input": str(self.dataset_root),
                                 "output": str(examples), "approved-tagging": str(approved_tagging)},
            ), step)
            step("preprocess", "done")
            for kind in KINDS:
                name = f"train {kind}"
                if kind in wanted:
                    step(name, f"skipped: {wanted[kind]}")
                    continue
                step(name, "start")
                candidate = work / "candidate" / kind
                self._script(name, ScriptRun(
                    script=TRAIN_SCRIPT[kind],
                    channels={"train": examples / LABELLED_DIR},
                    model_dir=candidate,
                    output_dir=work / "train-output" / kind,
                    hyperparameters=dict(self.hyperparameters.get(kind, {})),
                ), step)
                trained[kind] = candidate
                step(name, "done")
        else:
            for name in ("preprocess", "train tagging", "train faces"):
                step(name, "skipped: no feedback to learn from")

        evaluation: Mapping[str, Any] = {}
        if trained:
            step("evaluate", "start")
            evaluation = self._evaluate(work, examples / LABELLED_DIR, trained, step)
            step("evaluate", "done")
        else:
            step("evaluate", "skipped: nothing trained")

        step("register", "start")
        for kind in KINDS:
            if kind in wanted:
                approved = self.registry.approved(kind)
                report.outcomes[kind] = KindOutcome(kind, "skipped", wanted[kind],
                                                    approved_version=approved.version if approved else None)
                continue
            report.outcomes[kind] = self._gate(kind, trained[kind], evaluation)
        step("register", "done")

        step("apply", "start")
        changed = self.apply(owners, report)
        step("apply", "done")

        step("index", "start")
        if self.reindex is not None:
            for owner, photo_ids in sorted(changed.items()):
                if photo_ids:
                    self.reindex(owner, photo_ids)
                    report.photos_reindexed += len(photo_ids)
        step("index", "done")

    # ---- steps ---------------------------------------------------------------------------------------------------

    def backfill(self, owners: Iterable[str], *, part: str) -> int:
        """Appends every stored event missing from the dataset (the FeedbackService appends right after its
        store commit; a crash in between leaves an event only in the store). Returns how many were missing."""
        recorded = {body["feedback_id"] for body in read_feedback(self.dataset_root)}
        missing = [event for owner in owners for event in self.feedback.events(owner)
                   if event.feedback_id not in recorded]
        if missing:
            self.dataset.append(missing, part=part)
        return len(missing)

    def _nothing_to_learn(self, events: list[dict]) -> dict[str, str]:
        """kind -> why it is skipped, for kinds with no feedback of theirs in the dataset at all."""
        undone = {e.get("undoes") for e in events if e.get("type") == FeedbackType.UNDO.value}
        active = [e for e in events if e.get("feedback_id") not in undone]
        reasons = {}
        if not any(e.get("type") in {t.value for t in _TAG_EVENTS} for e in active):
            reasons["tagging"] = "no tag feedback yet (confirm, reject or add a tag first)"
        if not any(e.get("type") in {t.value for t in _FACE_EVENTS} for e in active):
            reasons["faces"] = "no face feedback yet (assign a face or mark one as not this person first)"
        return reasons

    def _approved_dir(self, work: Path, kind: str) -> Path:
        """The approved model's directory, or an empty one: the untrained baseline."""
        approved = self.registry.approved(kind)
        if approved is not None:
            return approved.path
        empty = work / "no-approved" / kind
        empty.mkdir(parents=True, exist_ok=True)
        return empty

    def _script(self, name: str, job: ScriptRun, step: StepCallback) -> None:
        self.trainer.run(job, on_line=lambda line: step(name, line))

    def _evaluate(self, work: Path, labelled: Path, trained: Mapping[str, Path],
                  step: StepCallback) -> Mapping[str, Any]:
        channels: dict[str, Path] = {"examples": labelled}
        for kind in KINDS:
            channels[f"approved_{kind}"] = self._approved_dir(work, kind)
            untrained = work / "no-candidate" / kind
            untrained.mkdir(parents=True, exist_ok=True)
            channels[f"candidate_{kind}"] = trained.get(kind, untrained)
        output = work / "evaluation"
        hyperparameters = {name.replace("_", "-"): str(path) for name, path in channels.items()}
        hyperparameters.update({"output": str(output), "margin": str(self.margin),
                                "min-examples": str(self.min_examples),
                                "min-each-answer": str(self.min_each_answer)})
        self._script("evaluate", ScriptRun(script="evaluate.py", channels=channels, model_dir=work / "evaluate-model",
                                           output_dir=output, hyperparameters=hyperparameters), step)
        path = output / EVALUATION_FILE
        if not path.is_file():
            raise TrainingFailedError(f"evaluate.py wrote no {EVALUATION_FILE}")
        return json.loads(path.read_text(encoding="utf-8"))

    def _gate(self, kind: str, candidate: Path, evaluation: Mapping[str, Any]) -> KindOutcome:
        section = dict(evaluation.get(kind) or {})
        decision = self.decide(evaluation, kind, self.margin, self.min_examples)
        before = self.registry.approved(kind)
        document = _model_document(candidate)
        if not (document.get("owners") or {}):
            skipped = document.get("skipped") or {}
            why = "; ".join(f"{reason}" for reason in sorted(set(skipped.values()))) or decision.reason
            return KindOutcome(kind, "skipped", f"no owner had enough feedback: {why}", section,
                               approved_version=before.version if before else None)
        metrics = {**section, "decision": decision.to_json()}
        version: ModelVersion = self.registry.register(kind, candidate, metrics, approve=decision.promote)
        status = "promoted" if decision.promote else "kept"
        after = version.version if decision.promote else (before.version if before else None)
        return KindOutcome(kind, status, decision.reason, section, version=version.version, approved_version=after)

    # ---- re-application ---------------------------------------------------------------------------------------

    def apply(self, owners: Iterable[str], report: RetrainReport | None = None) -> dict[str, set[str]]:
        """The approved models on the library: every photo's suggestions replaced, people regrouped with the
        promoted matcher. Returns owner -> the photos to re-index (suggestions or people changed)."""
        changed: dict[str, set[str]] = {}
        taggers = self._approved_document("tagging", self.appliers.tagging)
        matchers = self._approved_document("faces", self.appliers.faces)
        for owner in sorted(set(owners)):
            touched = changed.setdefault(owner, set())
            model = taggers.get(owner)
            if model is not None:
                before = self.suggestions.all_suggestions(owner)
                for photo in self.export.photo_rows(owner):
                    found = [TagSuggestion(tag=tag, confidence=round(min(1.0, max(0.0, float(p))), 4),
                                           on_photo=bool(on_photo))
                             for tag, p, on_photo in model.suggest(photo)]
                    if report is not None and found:
                        report.photos_with_suggestions += 1
                    if _key(found) != _key(before.get(photo.photo_id, [])):
                        self.suggestions.replace_suggestions(owner, photo.photo_id, found)
                        touched.add(photo.photo_id)
                        if report is not None:
                            report.suggestions_changed += 1
            matcher = matchers.get(owner)
            if matcher is not None and self.people is not None and self.biometric_consent(owner):
                hook = self.people.on_people_changed
                self.people.on_people_changed = lambda _owner, photo_ids: touched.update(photo_ids)
                try:
                    self.people.recluster(owner, matcher=matcher)
                finally:
                    self.people.on_people_changed = hook
                if report is not None:
                    report.people_regrouped += 1
        return changed

    def _approved_document(self, kind: str, load: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Mapping[str, Any]:
        approved = self.registry.approved(kind)
        if approved is None:
            return {}
        return load(_model_document(approved.path))

    def scripts_missing(self, available: Callable[[str], bool]) -> list[str]:
        return [script for script in SCRIPTS if not available(script)]


def _model_document(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_FILE
    if not path.is_file():
        raise TrainingFailedError(f"the model folder holds no {MODEL_FILE}")
    return json.loads(path.read_text(encoding="utf-8"))


def _key(suggestions: Iterable[TagSuggestion]) -> list[tuple[str, float, bool]]:
    return sorted((s.tag, round(s.confidence, 4), s.on_photo) for s in suggestions)

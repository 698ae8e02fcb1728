"""RetrainService on a real local library (bootstrap.local_retraining: SQLite stores, feedback files, the
SubprocessTrainer, the registry under the data directory) with small stand-in scripts written here, so the
orchestration is proven apart from the learning itself: backfill, skip reasons, the gate, a crash mid-run, a
worse candidate, re-application and re-indexing. tests/integration/test_retrain_end_to_end.py runs the real
scripts."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, Label
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.bootstrap import build_services, local_retraining, local_settings
from photo_organizer.errors import TrainingFailedError
from photo_organizer.feedback.models import FeedbackType, TagFeedback, TagSuggestion
from photo_organizer.learning.datasets import read_feedback, read_photos
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.services.retraining import Appliers

OWNER = "ana"

PREPROCESS = """
import argparse, json, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--input", type=pathlib.Path)
parser.add_argument("--output", type=pathlib.Path)
parser.add_argument("--approved-tagging", type=pathlib.Path)
args = parser.parse_args()
photos = (args.input / "features" / "photos.jsonl").read_text().splitlines()
(args.output / "labelled").mkdir(parents=True, exist_ok=True)
(args.output / "labelled" / "tagging.jsonl").write_text("\\n".join(photos) + "\\n")
print(f"approved tagging: {sorted(p.name for p in args.approved_tagging.iterdir())}")
print(f"preprocess: {len(photos)} photos")
"""

# The candidate's quality and what it suggests come from a file the test writes (stands in for learning).
TRAIN = """
import json, os, pathlib
plan = json.loads(pathlib.Path(os.environ["PLAN"]).read_text())
kind = pathlib.Path(__file__).stem.split("_")[1]
if plan.get("crash") == kind:
    raise SystemExit(f"{kind}: out of memory")
owners = plan.get(kind, {})
body = {"kind": kind, "schema": 1, "owners": owners, "skipped": {} if owners else {"ana": "too few examples"}}
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps(body))
print(f"trained {kind} for {sorted(owners)}")
"""

EVALUATE = """
import argparse, json, pathlib
parser = argparse.ArgumentParser()
for name in ("examples", "candidate-tagging", "candidate-faces", "approved-tagging", "approved-faces", "output"):
    parser.add_argument(f"--{name}", type=pathlib.Path)
parser.add_argument("--margin", type=float)
parser.add_argument("--min-examples", type=int)
parser.add_argument("--min-each-answer", type=int)
args = parser.parse_args()

def score(folder, kind):
    path = folder / "model.json"
    if not path.is_file():
        return 0.5  # the untrained baseline
    owners = json.loads(path.read_text())["owners"]
    return max((o["score"] for o in owners.values()), default=None)

metric = {"tagging": "macro_f1", "faces": "pair_f1"}
count = {"tagging": "examples", "faces": "pairs"}
result = {}
for kind in ("tagging", "faces"):
    candidate = getattr(args, f"candidate_{kind}")
    result[kind] = {
        "candidate": {metric[kind]: score(candidate, kind),
                      "owners": len(json.loads((candidate / "model.json").read_text())["owners"])
                      if (candidate / "model.json").is_file() else 0},
        "approved": {metric[kind]: score(getattr(args, f"approved_{kind}"), kind)},
        "baseline": {metric[kind]: 0.5},
        count[kind]: 40,
    }
result["gate"] = {"margin": args.margin, "min_examples": args.min_examples, "min_each_answer": args.min_each_answer}
args.output.mkdir(parents=True, exist_ok=True)
(args.output / "evaluation.json").write_text(json.dumps(result))
"""


@dataclass
class Decision:
    promote: bool
    reason: str

    def to_json(self) -> dict:
        return {"promote": self.promote, "reason": self.reason}


def decide(evaluation, kind, margin, min_examples):
    """The promotion rule's shape (learning.promotion.decide): candidate >= approved + margin."""
    metric = {"tagging": "macro_f1", "faces": "pair_f1"}[kind]
    section = evaluation[kind]
    candidate, approved = section["candidate"][metric], section["approved"][metric]
    if candidate is None:
        return Decision(False, "no candidate score")
    if candidate >= approved + margin:
        return Decision(True, f"candidate {candidate} >= approved {approved} + {margin}")
    return Decision(False, f"candidate {candidate} does not beat approved {approved}")


class StubTagger:
    def __init__(self, body: dict) -> None:
        self.body = body

    def suggest(self, photo):
        return [(tag, p, tag in photo.labels) for tag, p in self.body.get("suggest", {}).items()]


@dataclass
class StubMatcher:
    threshold: float

    def project(self, descriptors):
        return descriptors


STUB_APPLIERS = Appliers(
    tagging=lambda document: {owner: StubTagger(body) for owner, body in document["owners"].items()},
    faces=lambda document: {owner: StubMatcher(body.get("threshold", 0.8)) for owner, body in document["owners"].items()},
)


def add_analysed_photo(services, photo_id: str, labels: list[str]) -> None:
    now = utcnow()
    pending = Photo(owner=OWNER, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{photo_id}.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    services.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=64, height=48, byte_size=10,
                             sha256=photo_id.encode().hex().ljust(64, "0")[:64], phash="0" * 16)
    services.metadata.finish_photo(
        pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata, "original_version": "v1"}),
        expected_status=PhotoStatus.PENDING_UPLOAD)
    result = AnalysisResult(photo_id=photo_id, analysis_version=1,
                            labels=tuple(Label(name=n, confidence=80) for n in labels),
                            analysed_at=datetime(2026, 5, 1, tzinfo=timezone.utc), source=AnalysisSource.LOCAL)
    services.analysis.save(PhotoAnalysis(owner=OWNER, result=result, caption=""))


@pytest.fixture
def library(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, body in (("preprocess.py", PREPROCESS), ("train_tagging.py", TRAIN), ("train_faces.py", TRAIN),
                       ("evaluate.py", EVALUATE)):
        (scripts / name).write_text(textwrap.dedent(body))
    plan = tmp_path / "plan.json"
    monkeypatch.setenv("PLAN", str(plan))
    services = build_services(local_settings(data_dir))
    for photo_id, labels in (("p1", ["Dog"]), ("p2", ["Beach"]), ("p3", ["Cat"])):
        add_analysed_photo(services, photo_id, labels)

    def retrain_service():
        service = local_retraining(data_dir, scripts_dir=scripts)
        service.appliers, service.decide = STUB_APPLIERS, decide
        return service

    def set_plan(**body: Any) -> None:
        plan.write_text(json.dumps(body))

    return services, retrain_service, set_plan, data_dir


def tag(services, photo_id: str, kind: FeedbackType, name: str):
    return services.feedback.submit(OWNER, TagFeedback(type=kind, photo_id=photo_id, tag=name))


def test_without_feedback_both_kinds_are_skipped_with_a_reason_and_nothing_registered(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    set_plan(tagging={OWNER: {"score": 0.9}})
    steps: list[tuple[str, str]] = []
    report = retrain_service().run(on_step=lambda step, what: steps.append((step, what)))
    assert {k: o.status for k, o in report.outcomes.items()} == {"tagging": "skipped", "faces": "skipped"}
    assert "no tag feedback" in report.outcomes["tagging"].reason
    assert ("train tagging", "skipped: no feedback to learn from") in steps
    assert not (data_dir / "models" / "tagging").exists()
    assert report.snapshot["photos"] == 3


def test_a_better_candidate_is_promoted_applied_and_reindexed(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    set_plan(tagging={OWNER: {"score": 0.8, "suggest": {"grandma's house": 0.91, "dog": 0.05}}})
    lines: list[str] = []
    service, reindexed = retrain_service(), []
    index = service.reindex
    service.reindex = lambda owner, photo_ids: (reindexed.append((owner, set(photo_ids))), index(owner, photo_ids))
    report = service.run(on_step=lambda step, what: lines.append(f"{step}: {what}"))
    outcome = report.outcomes["tagging"]
    assert (outcome.status, outcome.version, outcome.approved_version) == ("promoted", 1, 1)
    assert report.outcomes["faces"].status == "skipped"
    assert "train tagging: trained tagging for ['ana']" in lines, "script output streams through on_step"
    assert services.suggestion_store.suggestions(OWNER, "p1") == [
        TagSuggestion(tag="grandma's house", confidence=0.91), TagSuggestion(tag="dog", confidence=0.05, on_photo=True)]
    assert report.suggestions_changed == 3 and report.photos_reindexed == 3
    assert reindexed == [(OWNER, {"p1", "p2", "p3"})]
    # what the index now holds for p1: "dog" (0.05 on the photo) is suppressed, the suggestion not yet a tag
    document = services.search.document(services.metadata.get_photo(OWNER, "p1"))
    assert "dog" not in document.tags and "grandma's house" in document.tags
    registered = json.loads((data_dir / "models" / "tagging" / "approved.json").read_text())
    assert registered["version"] == 1
    metrics = json.loads((data_dir / "models" / "tagging" / "v0001" / "metrics.json").read_text())
    assert metrics["decision"]["promote"] is True and metrics["candidate"]["macro_f1"] == 0.8


def test_a_relative_data_dir_works_though_the_scripts_run_in_their_own_directory(library, monkeypatch) -> None:
    """make demo keeps its library in ".demo": the scripts, run with another working directory, must still find it."""
    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    set_plan(tagging={OWNER: {"score": 0.8, "suggest": {"grandma's house": 0.91}}})
    monkeypatch.chdir(data_dir.parent)
    service = local_retraining(Path(data_dir.name), scripts_dir=data_dir.parent / "scripts")
    service.appliers, service.decide = STUB_APPLIERS, decide
    report = service.run()
    assert report.snapshot["photos"] == 3
    assert report.outcomes["tagging"].status == "promoted"


def test_the_service_gives_evaluate_py_its_gate_settings_and_the_real_rule_reads_them(library) -> None:
    from photo_organizer.learning.promotion import decide as real_decide

    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    set_plan(tagging={OWNER: {"score": 0.8}})
    seen: list[dict] = []
    service = retrain_service()
    service.margin, service.min_examples, service.min_each_answer = 0.05, 7, 3
    service.decide = lambda evaluation, kind, margin, min_examples: (
        seen.append(evaluation), real_decide(evaluation, kind, margin, min_examples))[1]
    report = service.run()
    assert seen[0]["gate"] == {"margin": 0.05, "min_examples": 7, "min_each_answer": 3}
    # the stand-in evaluate.py writes no per-example results: the real rule cannot measure the noise, and refuses
    outcome = report.outcomes["tagging"]
    assert outcome.status == "kept" and "no per-example held-out results" in outcome.reason


def test_a_worse_candidate_is_registered_unapproved_and_the_approved_one_stays_applied(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    set_plan(tagging={OWNER: {"score": 0.8, "suggest": {"grandma's house": 0.91}}})
    retrain_service().run()
    set_plan(tagging={OWNER: {"score": 0.6, "suggest": {"school trip": 0.99}}})
    lines: list[str] = []
    report = retrain_service().run(on_step=lambda step, what: lines.append(f"{step}: {what}"))
    outcome = report.outcomes["tagging"]
    assert (outcome.status, outcome.version, outcome.approved_version) == ("kept", 2, 1)
    # preprocess was handed the approved model (it rebuilds the examples that model was trained on)
    assert "preprocess: approved tagging: ['metrics.json', 'model.json']" in lines
    assert "does not beat" in outcome.reason
    assert services.suggestion_store.suggestions(OWNER, "p1") == [TagSuggestion(tag="grandma's house",
                                                                                confidence=0.91)]
    assert report.suggestions_changed == 0


def test_a_crash_mid_run_leaves_the_registry_and_suggestions_unchanged(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    set_plan(tagging={OWNER: {"score": 0.8, "suggest": {"grandma's house": 0.91}}})
    retrain_service().run()
    before = sorted(p.name for p in (data_dir / "models" / "tagging").iterdir())
    tag(services, "p2", FeedbackType.TAG_REJECTED, "beach")
    set_plan(tagging={OWNER: {"score": 0.99, "suggest": {"school trip": 0.99}}}, crash="tagging")
    with pytest.raises(TrainingFailedError, match="out of memory"):
        retrain_service().run()
    assert sorted(p.name for p in (data_dir / "models" / "tagging").iterdir()) == before
    assert json.loads((data_dir / "models" / "tagging" / "approved.json").read_text())["version"] == 1
    assert services.suggestion_store.suggestions(OWNER, "p1") == [TagSuggestion(tag="grandma's house",
                                                                                confidence=0.91)]
    assert [p.name for p in (data_dir / "retraining").iterdir()] == [".lock"], "the run's scratch folder is removed"


def test_a_candidate_that_trained_nobody_is_skipped_and_the_approved_kept(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    set_plan(tagging={})
    report = retrain_service().run()
    assert report.outcomes["tagging"].status == "skipped"
    assert "too few examples" in report.outcomes["tagging"].reason
    assert not (data_dir / "models" / "tagging").exists()


def test_stored_events_missing_from_the_dataset_are_appended_once(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    recorded = tag(services, "p1", FeedbackType.TAG_ADDED, "grandma's house")
    # an event that reached the store but not the files (a crash between the two writes)
    for path in (data_dir / "datasets" / "feedback").rglob("*.jsonl"):
        path.unlink()
    service = retrain_service()
    set_plan()
    assert service.backfill([OWNER], part="first") == 1
    assert service.backfill([OWNER], part="second") == 0
    assert [body["feedback_id"] for body in read_feedback(data_dir / "datasets")] == [recorded.feedback_id]


def test_the_snapshot_holds_the_feedback_effect(library) -> None:
    services, retrain_service, set_plan, data_dir = library
    tag(services, "p1", FeedbackType.TAG_REJECTED, "dog")
    set_plan()
    retrain_service().run()
    rows = {row.photo_id: row for row in read_photos(data_dir / "datasets")}
    assert rows["p1"].tags == [] and rows["p1"].labels == {"dog": 80.0}


def test_a_second_retraining_of_the_same_library_is_refused_while_one_runs(library) -> None:
    from photo_organizer.errors import ConflictError

    services, retrain_service, set_plan, data_dir = library
    set_plan()
    first, second = retrain_service(), retrain_service()
    with first.exclusive():
        with pytest.raises(ConflictError, match="already running"):
            second.run()
    assert second.run().outcomes["tagging"].status == "skipped", "free again once the first is done"

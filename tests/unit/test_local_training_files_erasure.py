"""Account erasure of the local retraining's files (LocalModelRegistry.forget_owner, LocalTrainingFiles): every
model version and its metrics lose the owner and keep the other owner's model as it was, the approved pointer stays
valid, the feature snapshot loses the owner's lines, an unfinished run's folder naming the owner goes, a rewrite
interrupted half-way is finished by running again, and nothing is touched while a retraining holds the lock.
tests/integration/test_retrain_end_to_end.py does the same after a real retrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photo_organizer.adapters.local import owner_files
from photo_organizer.adapters.local.model_registry import LocalModelRegistry
from photo_organizer.adapters.local.run_lock import LocalRunLock
from photo_organizer.adapters.local.training_files import LocalTrainingFiles
from photo_organizer.errors import ConflictError
from photo_organizer.learning.promotion import decide

ANA, BEN = "0f4c2a1e-ana0-4c8e-a7d6-3e2b1c0f9a84", "5b7d9e3f-ben0-4b2a-9c1d-8e7f6a5b4c3d"


def model_document(kind: str, owners: dict[str, dict]) -> dict:
    return {"kind": kind, "schema": 1, "owners": owners, "skipped": {}, "hyperparameters": {"c": 0.05}}


def tagging_metrics() -> dict:
    """A kind's section of evaluation.json, as RetrainService registers it."""
    labels = [f"{ANA}/cat", f"{BEN}/oval office", f"{ANA}/coffee"]
    per_tag = {label: 0.75 for label in labels}
    rows = [[0, 0, 1.0, 0.0, 0.0], [1, 1, 1.0, 0.0, 0.0], [2, 2, 0.0, 0.0, 1.0], [3, 0, 1.0, 0.0, 0.0]]
    return {"candidate": {"macro_f1": 0.9, "per_tag": per_tag, "owners": 2}, "approved": {"macro_f1": 0.5},
            "examples": 4, "held_out": {"examples": 4, "labels": labels, "answers": {"positive tag labels": 3},
                                        "candidate": rows, "approved": rows[:2]},
            "decision": {"promote": True, "reason": "measured"}}


def register(registry: LocalModelRegistry, tmp_path: Path, kind: str, owners: dict[str, dict], *,
             approve: bool, metrics: dict | None = None):
    folder = tmp_path / "candidates" / f"{kind}-{len(registry.versions(kind)) + 1}"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps(model_document(kind, owners)))
    return registry.register(kind, folder, metrics or tagging_metrics(), approve=approve)


@pytest.fixture
def library(tmp_path):
    """A data folder after three retrains: two tagging versions (the first approved), one faces version, the last
    run's feature snapshot and the folder of a run that crashed."""
    data_dir = tmp_path / "data"
    registry = LocalModelRegistry(data_dir / "models")
    ana_model, ben_model = {"weights": [0.125, -2.5], "tags": ["cat", "coffee"]}, {"weights": [1.0], "tags": ["oval office"]}
    register(registry, tmp_path, "tagging", {ANA: ana_model, BEN: ben_model}, approve=True)
    register(registry, tmp_path, "tagging", {ANA: ana_model, BEN: ben_model}, approve=False)
    register(registry, tmp_path, "faces", {BEN: {"threshold": 0.7}, ANA: {"threshold": 0.6}}, approve=True,
             metrics={"candidate": {"pair_f1": 0.8}, "pairs": 12})
    features = data_dir / "datasets" / "features"
    features.mkdir(parents=True)
    (features / "photos.jsonl").write_text(
        "".join(json.dumps({"owner": o, "photo_id": p, "embedding": "AAEC"}) + "\n"
                for o, p in ((ANA, "a1"), (BEN, "b1"), (ANA, "a2"), (BEN, "b2"))))
    (features / "pairs.jsonl").write_text(json.dumps({"owner": ANA, "a": "f1", "b": "f2"}) + "\n")
    crashed = data_dir / "retraining" / "3f9a2c1d0e4b"
    (crashed / "examples" / "test").mkdir(parents=True)
    (crashed / "examples" / "test" / "tagging.jsonl").write_text(json.dumps({"owner": BEN, "photo_id": "b1"}) + "\n")
    files = LocalTrainingFiles(registry, data_dir=data_dir, snapshot_dir=features, work_root=data_dir / "retraining",
                               exclusive=LocalRunLock(data_dir / "retraining" / ".lock"))
    return data_dir, registry, files, ana_model


def every_file(data_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}


def test_every_version_loses_the_owner_and_the_other_owners_model_and_the_approved_pointer_stay(library) -> None:
    data_dir, registry, files, ana_model = library
    assert sorted(files.files_naming(BEN)) == [
        "datasets/features/photos.jsonl", "models/faces/v0001/model.json", "models/tagging/v0001/metrics.json",
        "models/tagging/v0001/model.json", "models/tagging/v0002/metrics.json", "models/tagging/v0002/model.json",
        "retraining/3f9a2c1d0e4b/examples/test/tagging.jsonl"]
    approved_before = (data_dir / "models" / "tagging" / "approved.json").read_bytes()

    outcome = files.erase_owner(BEN)

    assert files.files_naming(BEN) == [] and outcome.unreadable == []
    for path, data in every_file(data_dir).items():
        assert BEN.encode() not in data and b"oval office" not in data, path
    assert (data_dir / "models" / "tagging" / "approved.json").read_bytes() == approved_before
    approved = registry.approved("tagging")
    assert approved is not None and approved.version == 1
    for version in registry.versions("tagging"):
        document = json.loads((version.path / "model.json").read_text())
        assert document["owners"] == {ANA: ana_model} and document["hyperparameters"] == {"c": 0.05}
        held_out = version.metrics["held_out"]
        assert held_out["labels"] == [f"{ANA}/cat", f"{ANA}/coffee"]
        assert held_out["candidate"] == [[0, 0, 1.0, 0.0, 0.0], [2, 1, 0.0, 0.0, 1.0], [3, 0, 1.0, 0.0, 0.0]]
        judged = decide({"tagging": dict(version.metrics)}, "tagging", 0.01, 1, min_each_answer=1)
        assert judged.resamples > 0, "still evidence the gate can resample"
    faces = registry.approved("faces")
    assert json.loads((faces.path / "model.json").read_text())["owners"] == {ANA: {"threshold": 0.6}}
    snapshot = (data_dir / "datasets" / "features" / "photos.jsonl").read_text().splitlines()
    assert [json.loads(line)["photo_id"] for line in snapshot] == ["a1", "a2"]
    assert not (data_dir / "retraining" / "3f9a2c1d0e4b").exists(), "the crashed run's scratch named the owner"
    # tagging versions: the entry, a per_tag score, a label, a candidate and an approved row each; faces: the entry;
    # the snapshot: two lines. Files: 2 x 2 + 1 rewritten, the snapshot, the crashed run's folder.
    assert (outcome.removed, outcome.objects) == (2 * 5 + 1 + 2, 2 * 2 + 1 + 1 + 1)

    erased = every_file(data_dir)
    again = files.erase_owner(BEN)
    assert (again.removed, again.objects) == (0, 0) and every_file(data_dir) == erased, "a re-run rewrites nothing"


def test_a_rewrite_interrupted_half_way_leaves_whole_files_and_is_finished_by_running_again(library, monkeypatch):
    data_dir, registry, files, ana_model = library
    replace, replaced = owner_files.os.replace, []

    def power_cut_after_two(source, target):
        if len(replaced) == 2:
            raise OSError(28, "No space left on device")
        replace(source, target)
        replaced.append(target)

    monkeypatch.setattr(owner_files.os, "replace", power_cut_after_two)
    with pytest.raises(OSError):
        files.erase_owner(BEN)
    monkeypatch.undo()
    remaining = files.files_naming(BEN)
    assert 0 < len(remaining) < 7, "half-way: the audit lists what is left"
    for path in (data_dir / "models").rglob("*.json"):
        json.loads(path.read_text())  # every file whole: the old bytes or the new
    assert not [p for p in data_dir.rglob(".*") if p.name != ".lock"], "no temporary file left behind"
    assert registry.approved("tagging").version == 1

    outcome = files.erase_owner(BEN)
    assert files.files_naming(BEN) == [] and outcome.objects == 7 - 2
    assert json.loads((registry.approved("tagging").path / "model.json").read_text())["owners"] == {ANA: ana_model}


def test_a_crashed_registrations_leftovers_naming_the_owner_go(library, tmp_path) -> None:
    data_dir, _, files, _ = library
    staging = data_dir / "models" / "tagging" / ".v0003-k2j4"
    staging.mkdir()
    (staging / "model.json").write_text(json.dumps(model_document("tagging", {BEN: {}})))
    temporary = data_dir / "models" / "faces" / "v0001" / ".metrics.json-x1y2"
    temporary.write_text(json.dumps({"per_tag": {f"{BEN}/x": 1.0}}))
    assert {"models/tagging/.v0003-k2j4/model.json", "models/faces/v0001/.metrics.json-x1y2"} <= set(
        files.files_naming(BEN))
    files.erase_owner(BEN)
    assert not staging.exists() and not temporary.exists() and files.files_naming(BEN) == []


def test_nothing_is_touched_while_a_retraining_holds_the_lock(library) -> None:
    data_dir, _, files, _ = library
    with LocalRunLock(data_dir / "retraining" / ".lock")():
        before = every_file(data_dir)
        with pytest.raises(ConflictError):
            files.erase_owner(BEN)
        assert every_file(data_dir) == before
    assert files.erase_owner(BEN).objects > 0


def test_a_file_naming_the_owner_in_a_shape_no_transform_knows_is_reported_and_kept(library) -> None:
    data_dir, _, files, _ = library
    notes = data_dir / "models" / "tagging" / "v0001" / "notes.txt"
    notes.write_text(f'trained for "{BEN}"')
    outcome = files.erase_owner(BEN)
    assert outcome.unreadable == ["models/tagging/v0001/notes.txt"]
    assert files.files_naming(BEN) == ["models/tagging/v0001/notes.txt"] and notes.exists()


def test_an_empty_library_has_nothing_to_erase(tmp_path) -> None:
    files = LocalTrainingFiles(LocalModelRegistry(tmp_path / "models"), data_dir=tmp_path,
                               snapshot_dir=tmp_path / "datasets" / "features", work_root=tmp_path / "retraining",
                               exclusive=LocalRunLock(tmp_path / "retraining" / ".lock"))
    assert files.files_naming(BEN) == [] and files.erase_owner(BEN).objects == 0

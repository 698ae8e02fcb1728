"""The local Trainer (script-mode subprocesses) and the local model registry (atomic approval)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from photo_organizer.adapters.local.model_registry import LocalModelRegistry
from photo_organizer.adapters.local.subprocess_trainer import SubprocessTrainer
from photo_organizer.errors import ConfigurationError, TrainingFailedError
from photo_organizer.ports.training import ScriptRun

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"

ECHO_SCRIPT = """
import argparse, json, os, sys
from photo_organizer.learning.datasets import FEATURES_SCHEMA  # PYTHONPATH holds lambdas
parser = argparse.ArgumentParser()
parser.add_argument("--min-examples", type=int)
parser.add_argument("--c", type=float)
args = parser.parse_args()
for n in range(3):
    print(f"epoch {n}")
seen = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
    json.dump({"env": seen, "args": vars(args), "schema": FEATURES_SCHEMA,
               "train": os.listdir(os.environ["SM_CHANNEL_TRAIN"])}, f)
"""

FAILING_SCRIPT = """
for n in range(40):
    print(f"line {n}")
raise SystemExit("not enough examples for anyone")
"""


def write_script(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(body))


def job(tmp_path: Path, script: str, **hyperparameters: str) -> ScriptRun:
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True, exist_ok=True)
    (train / "tagging.jsonl").write_text("{}\n")
    return ScriptRun(script=script, channels={"train": train}, model_dir=tmp_path / "model",
                     output_dir=tmp_path / "output", hyperparameters=hyperparameters)


def test_script_runs_with_the_script_mode_environment_and_arguments(tmp_path) -> None:
    scripts = tmp_path / "sagemaker"
    write_script(scripts, "train_tagging.py", ECHO_SCRIPT)
    lines: list[str] = []
    SubprocessTrainer(scripts, python_path=LAMBDAS).run(job(tmp_path, "train_tagging.py", **{"min-examples": "5",
                                                                                             "c": "0.5"}),
                                                        on_line=lines.append)
    assert lines == ["epoch 0", "epoch 1", "epoch 2"]
    model = json.loads((tmp_path / "model" / "model.json").read_text())
    assert model["args"] == {"min_examples": 5, "c": 0.5}
    env = model["env"]
    assert env["SM_MODEL_DIR"] == str(tmp_path / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "output")
    assert env["SM_CHANNEL_TRAIN"] == str(tmp_path / "data" / "train")
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert env["SM_HP_MIN_EXAMPLES"] == "5" and json.loads(env["SM_HPS"]) == {"min-examples": "5", "c": "0.5"}
    assert model["train"] == ["tagging.jsonl"]


def test_failing_script_raises_with_its_last_lines(tmp_path) -> None:
    scripts = tmp_path / "sagemaker"
    write_script(scripts, "train_faces.py", FAILING_SCRIPT)
    with pytest.raises(TrainingFailedError) as failure:
        SubprocessTrainer(scripts, python_path=LAMBDAS).run(job(tmp_path, "train_faces.py"))
    message = str(failure.value)
    assert "exited with 1" in message and "not enough examples for anyone" in message
    assert "line 39" in message and "line 5\n" not in message, "only the tail"


def test_missing_script_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="evaluate.py"):
        SubprocessTrainer(tmp_path / "nowhere").run(job(tmp_path, "evaluate.py"))


def test_the_scripts_interpreter_is_the_current_one(tmp_path) -> None:
    scripts = tmp_path / "sagemaker"
    write_script(scripts, "which.py", "import sys, os\nopen(os.environ['SM_MODEL_DIR'] + '/py', 'w').write(sys.executable)\n")
    SubprocessTrainer(scripts).run(job(tmp_path, "which.py"))
    assert (tmp_path / "model" / "py").read_text() == sys.executable


# ---- registry ---------------------------------------------------------------------------------------------------


def model_dir(tmp_path: Path, name: str, body: dict) -> Path:
    folder = tmp_path / "candidates" / name
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps(body))
    return folder


def test_versions_number_up_and_only_an_approved_one_moves_the_pointer(tmp_path) -> None:
    registry = LocalModelRegistry(tmp_path / "models")
    assert registry.approved("tagging") is None
    first = registry.register("tagging", model_dir(tmp_path, "a", {"n": 1}), {"macro_f1": 0.6}, approve=True)
    second = registry.register("tagging", model_dir(tmp_path, "b", {"n": 2}), {"macro_f1": 0.55}, approve=False)
    assert (first.version, second.version) == (1, 2)
    assert first.path == tmp_path / "models" / "tagging" / "v0001"
    approved = registry.approved("tagging")
    assert approved.version == 1 and approved.metrics["macro_f1"] == 0.6
    assert json.loads((approved.path / "model.json").read_text()) == {"n": 1}
    assert [(v.version, v.approved) for v in registry.versions("tagging")] == [(1, True), (2, False)]
    assert registry.approved("faces") is None, "kinds are separate"


def test_crash_while_copying_a_version_leaves_no_version_and_the_approved_one(tmp_path, monkeypatch) -> None:
    registry = LocalModelRegistry(tmp_path / "models")
    registry.register("faces", model_dir(tmp_path, "a", {"n": 1}), {"pair_f1": 0.7}, approve=True)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError):
        registry.register("faces", model_dir(tmp_path, "b", {"n": 2}), {"pair_f1": 0.9}, approve=True)
    monkeypatch.undo()
    assert registry.approved("faces").version == 1
    assert [v.version for v in registry.versions("faces")] == [1]
    assert sorted(p.name for p in (tmp_path / "models" / "faces").iterdir()) == ["approved.json", "v0001"]


def test_crash_while_moving_the_pointer_keeps_the_previous_approval(tmp_path, monkeypatch) -> None:
    registry = LocalModelRegistry(tmp_path / "models")
    registry.register("faces", model_dir(tmp_path, "a", {"n": 1}), {"pair_f1": 0.7}, approve=True)

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        registry.register("faces", model_dir(tmp_path, "b", {"n": 2}), {"pair_f1": 0.9}, approve=True)
    monkeypatch.undo()
    assert registry.approved("faces").version == 1
    assert json.loads((tmp_path / "models" / "faces" / "approved.json").read_text())["version"] == 1
    assert not [p for p in (tmp_path / "models" / "faces").iterdir() if p.name.startswith(".approved")]


def test_the_promoted_face_matcher_is_what_local_regrouping_uses(tmp_path) -> None:
    from photo_organizer.bootstrap import build_services, local_face_matcher, local_model_registry, local_settings
    from photo_organizer.learning import faces

    data_dir = tmp_path / "data"
    matcher_for = local_face_matcher(data_dir)
    assert matcher_for("ana") is None, "nothing promoted yet: the fixed threshold"
    matcher = faces.FaceMatcher.untrained("ana", threshold=0.6)
    folder = model_dir(tmp_path, "faces", faces.document([matcher]))
    local_model_registry(data_dir).register("faces", folder, {"pair_f1": 0.9}, approve=True)
    found = matcher_for("ana")
    assert found is not None and abs(found.threshold - 0.6) < 1e-6
    assert matcher_for("bo") is None, "another owner's matcher is never used"
    services = build_services(local_settings(data_dir))
    assert abs(services.people.face_matcher("ana").threshold - 0.6) < 1e-6

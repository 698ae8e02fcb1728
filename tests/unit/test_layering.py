"""The Glue jobs live outside the package, where import-linter (pyproject's [tool.importlinter]) cannot see them:
these tests hold them to the same layering, and run every module a Glue job imports without Powertools."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
GLUE_JOBS = ROOT / "glue_jobs"
# Reached only through bootstrap, as from a handler: the jobs parse, ask bootstrap, run a service and answer.
FORBIDDEN = ("photo_organizer.adapters", "boto3", "botocore", "opensearchpy", "onnxruntime", "tantivy", "dlib",
             "aws_lambda_powertools")

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
    assert not bad, f"{name} imports {sorted(bad)}: ask photo_organizer.bootstrap"


def test_the_layering_check_sees_a_lazy_adapter_import(tmp_path: Path):
    sample = tmp_path / "job.py"
    sample.write_text("def main():\n    from photo_organizer.adapters.aws.s3_blobs import S3BlobStore\n    import boto3\n")
    assert {m for m in imported_modules(sample) if forbidden(m)} == {"photo_organizer.adapters.aws.s3_blobs", "boto3"}


# ---- Glue 5.0 provides no Powertools: nothing a Glue job imports may need it ---------------------------------------

# Lambda-only code, never reached from a Glue job: the handlers, and the API's cursor-key read (Powertools
# parameters) that bootstrap imports only when it builds the Lambda's services.
LAMBDA_ONLY = ("photo_organizer.handlers", "photo_organizer.adapters.aws.secrets")


def package_module_path(module: str) -> Path | None:
    base = LAMBDAS.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def glue_import_closure() -> list[str]:
    """The package modules the Glue jobs import, following imports at any depth (lazy ones too), plus every
    package a module lives in (importing a module runs its packages' __init__ first)."""
    todo = [m for path in GLUE_FILES for m in imported_modules(path) if m.startswith("photo_organizer")]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen or module.startswith(LAMBDA_ONLY):
            continue
        path = package_module_path(module)
        if path is None:  # `from package import name`: the name is not a module
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [m for m in imported_modules(path) if m.startswith("photo_organizer")]
    return sorted(seen)


BLOCK_POWERTOOLS = textwrap.dedent("""
    import importlib, sys

    class NoPowertools:
        def find_spec(self, name, path=None, target=None):
            if name == "aws_lambda_powertools" or name.startswith("aws_lambda_powertools."):
                raise ImportError(f"No module named {name!r} (AWS Glue 5.0 does not provide it)")
            return None

    sys.meta_path.insert(0, NoPowertools())
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    failed = []
    for name in sys.argv[3:]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            failed.append(f"{name}: {exc}")
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
""")


def test_the_glue_import_closure_holds_the_analysis_service_and_the_jobs_wiring():
    closure = glue_import_closure()
    assert "photo_organizer.analysis" in closure and len(closure) > 20
    assert not any(m.startswith(LAMBDA_ONLY) for m in closure)


def test_every_module_a_glue_job_imports_loads_without_powertools():
    """Glue 5.0's provided modules have no aws_lambda_powertools: the analyze_photos job failed at import."""
    jobs = ["analyze_photos.transforms", "analyze_photos.job", "cluster_faces.transforms", "cluster_faces.job"]
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_POWERTOOLS, str(LAMBDAS), str(GLUE_JOBS), *glue_import_closure(), *jobs],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, f"imports needing Powertools:\n{result.stdout}{result.stderr[-2000:]}"

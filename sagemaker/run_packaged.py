"""Runs one of the packaged scripts inside a SageMaker Processing job: `python3 run_packaged.py SCRIPT [ARGS...]`.

A Processing job gets a single code file; our scripts need their siblings and photo_organizer.learning. So the
pipeline hands the job the source tarball as an input (SOURCE_DIR, the same tarball the training jobs use as their
source_dir) and this file as the code: it extracts the tarball, puts the extracted source first on sys.path and
runs SCRIPT as __main__ with ARGS. (Model inputs stay as SageMaker copies them, model.tar.gz: the scripts read
model.json out of it.)

Standard library only, Python 3.10 (the scikit-learn 1.4-2 container).
"""

from __future__ import annotations

import os
import runpy
import sys
import tarfile
import tempfile
from pathlib import Path

SOURCE_DIR = Path("/opt/ml/processing/input/source")


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.10.12+: refuses links and paths that leave `into`
            tar.extractall(into, filter="data")
        else:
            root = into.resolve()
            for member in tar.getmembers():
                target = (into / member.name).resolve()
                if not (target == root or root in target.parents) or member.issym() or member.islnk():
                    raise ValueError(f"unsafe member in {archive.name}: {member.name}")
            tar.extractall(into)


def prepare(source_dir: Path, workdir: Path) -> Path:
    """Extracts the source tarball(s) of source_dir into workdir/source; returns the folder to run from."""
    source = workdir / "source"
    source.mkdir(parents=True, exist_ok=True)
    archives = sorted(source_dir.glob("*.tar.gz"))
    if not archives:
        raise SystemExit(f"run_packaged: no source tarball in {source_dir}")
    for archive in archives:
        _extract(archive, source)
    return source


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: run_packaged.py SCRIPT [ARGS...]")
    script, args = argv[0], argv[1:]
    source_dir = Path(os.environ.get("PO_SOURCE_DIR", str(SOURCE_DIR)))
    source = prepare(source_dir, Path(tempfile.mkdtemp(prefix="po-source-")))
    path = source / script
    if not path.is_file() or path.parent != source:
        raise SystemExit(f"run_packaged: {script} is not a script of the source tarball")
    sys.path.insert(0, str(source))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH", "")]))
    sys.argv = [str(path), *args]
    runpy.run_path(str(path), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])

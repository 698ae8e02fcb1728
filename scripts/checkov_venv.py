"""Create (or confirm) the venv that holds checkov for the infrastructure gate (tests/infrastructure/test_checkov.py).

checkov lives apart from the project's .venv because it pins an old boto3 (1.35) that would downgrade the app's. The
venv is rebuilt when CHECKOV_PIN changes; otherwise this is a no-op that prints the venv's path. Usage:

    python3 scripts/checkov_venv.py [--venv build/checkov-venv]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / "build" / "checkov-venv"
CHECKOV_PIN = "checkov==3.3.30"


def ensure(venv: Path) -> Path:
    stamp = venv / ".installed"
    checkov = venv / "bin" / "checkov"
    if stamp.exists() and stamp.read_text().strip() == CHECKOV_PIN and checkov.exists():
        stamp.touch()  # newer than this script: make's target is satisfied
        return checkov
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    uv = Path(sys.executable).parent / "uv"  # the project venv's uv (make installs it): resolves in seconds, pip in minutes
    if uv.exists():
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), CHECKOV_PIN], check=True)
    else:
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        CHECKOV_PIN], check=True)
    subprocess.run([str(checkov), "--version"], check=True, capture_output=True)
    stamp.write_text(CHECKOV_PIN + "\n")
    return checkov


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args(argv)
    print(ensure(args.venv.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

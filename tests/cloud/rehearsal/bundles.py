"""The Lambda bundles the rehearsal uses: the host copy built by scripts/build_lambda.py --platform host (stamp-cached,
so a re-run costs the digest only), and the shipped arm64 one when it exists."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_BUNDLE = ROOT / "build" / "lambda"
HOST_BUNDLE = ROOT / "build" / "lambda-host"


@functools.cache
def build_script():
    """scripts/build_lambda.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("build_lambda", ROOT / "scripts" / "build_lambda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_host_bundle(out: Path = HOST_BUNDLE) -> Path:
    """The same bundle as the shipped one (same lock, requirements, file selection) for this Python and machine."""
    build_script().build(out, target="host")
    return out

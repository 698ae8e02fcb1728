"""The Lambda bundles the rehearsal uses: the host copy built by scripts/build_lambda.py --platform host (stamp-cached,
so a re-run costs the digest only), and the shipped arm64 one when it exists."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_BUNDLE = ROOT / "build" / "lambda"
HOST_BUNDLE = ROOT / "build" / "lambda-host"
LOCKS = ROOT / "build" / "rehearsal" / "locks"


@functools.cache
def build_script():
    """scripts/build_lambda.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("build_lambda", ROOT / "scripts" / "build_lambda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def exclusive(name: str):
    """A lock shared by every process of this checkout (pytest-xdist workers): one builds, the others wait for it.
    pytest-xdist's loadgroup does not keep a group on one worker here (pytest 9.2 + xdist 3.8.0: checked with a
    plain six-test file), so two workers may ask for the same build at once."""
    import fcntl

    LOCKS.mkdir(parents=True, exist_ok=True)
    with (LOCKS / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_host_bundle(out: Path = HOST_BUNDLE) -> Path:
    """The same bundle as the shipped one (same lock, requirements, file selection) for this Python and machine."""
    with exclusive("lambda-host"):
        build_script().build(out, target="host")
    return out

"""The cached Glue environment is process-safe (tests/cloud/glue_env.py: cached_build): two processes that want
the same environment at once build it once, and neither ever sees, uses or deletes a half-built one. Before the
lock, the second process found the first one's unfinished folder, deleted it as "interrupted" and built its own,
and the first one's build then failed (under `pytest -n 2` one test of test_glue_as_deployed.py skipped)."""

from __future__ import annotations

import importlib.util
import multiprocessing
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("glue_env", Path(__file__).with_name("glue_env.py"))
glue_env = sys.modules["glue_env"] = importlib.util.module_from_spec(spec)  # as test_glue_as_deployed loads it
spec.loader.exec_module(glue_env)


def _build_slowly(directory: Path, started, release) -> None:
    """A stand-in build: files appear one by one, and it finishes only once the test lets it."""
    directory.mkdir(parents=True)
    (directory / "first").write_text("1")
    started.set()
    release.wait(30)
    (directory / "second").write_text("2")
    (directory / ".complete").write_text("done")
    with open(directory.parent / "builds.log", "a") as log:
        log.write("built\n")


def _want(env_root: str, started, release, answers) -> None:
    try:
        root, built = glue_env.cached_build(Path(env_root), "abc123", lambda d: _build_slowly(d, started, release))
        answers.put((built, sorted(p.name for p in root.iterdir())))
    except BaseException as e:  # reported to the test, not lost in the child
        answers.put(("error", repr(e)))


def test_two_processes_wanting_the_same_environment_build_it_once_and_both_get_it_finished(tmp_path):
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per process, as xdist workers are
    started, release, answers = context.Event(), context.Event(), context.Queue()
    env_root = tmp_path / "glue-env"
    (env_root / "0ld0ld").mkdir(parents=True)  # a finished environment of other inputs: removed after the build
    (env_root / "0ld0ld" / ".complete").write_text("done")
    first = context.Process(target=_want, args=(str(env_root), started, release, answers))
    first.start()
    assert started.wait(60), "the first process never started its build"
    second = context.Process(target=_want, args=(str(env_root), started, release, answers))
    second.start()
    # The second process is now waiting on the lock (or about to): whatever it does meanwhile, it must not touch
    # the first one's build. Let the build finish only after giving it every chance to interfere.
    second.join(2)
    assert second.is_alive(), f"the second process did not wait for the build: {answers.get(timeout=5)}"
    release.set()
    first.join(60)
    second.join(60)
    results = sorted([answers.get(timeout=5), answers.get(timeout=5)], key=str)
    assert results == [(False, [".complete", "first", "second"]), (True, [".complete", "first", "second"])]
    assert (env_root / "builds.log").read_text() == "built\n"
    assert sorted(p.name for p in env_root.iterdir()) == [".lock", "abc123", "builds.log"]


def test_an_interrupted_build_is_started_again_and_never_returned(tmp_path):
    env_root = tmp_path / "glue-env"
    (env_root / ".partial-abc123").mkdir(parents=True)  # a build killed half-way
    (env_root / ".partial-abc123" / "first").write_text("1")
    (env_root / "abc123").mkdir()  # an unfinished one left in place by the earlier, in-place builder
    calls = []

    def build(directory: Path) -> None:
        calls.append(directory.name)
        assert not directory.exists()
        directory.mkdir()
        (directory / ".complete").write_text("done")

    root, built = glue_env.cached_build(env_root, "abc123", build)
    assert (built, calls, sorted(p.name for p in root.iterdir())) == (True, [".partial-abc123"], [".complete"])
    assert glue_env.cached_build(env_root, "abc123", build) == (root, False) and calls == [".partial-abc123"]


def test_the_lock_is_exclusive_between_processes(tmp_path):
    import fcntl

    lock = tmp_path / ".lock"
    with glue_env.exclusive(lock), open(lock, "a") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the block ends

"""Suite-wide collection: xdist groups that really keep their tests on one worker.

Under `--dist loadgroup`, pytest-xdist 3.8.0 marks a grouped test by suffixing its nodeid with "@<group>"; it sets
item._nodeid, which pytest 9.2 no longer reads (the nodeid comes from item._id), so every group was split across
the workers: module- and session-scoped fixtures (the local stack, Spark, the synthesized app, the rehearsal) were
built once per worker and raced on shared build folders. This sets the id pytest 9 reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Hypothesis (under Schemathesis) keeps caches and, unless a test says database=None, examples in .hypothesis/ of the
# working directory: kept under build/ (gitignored) instead, never in the repository's tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(__file__).resolve().parents[1] / "build" / "hypothesis"))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath).replace("\\", "/")
        if "/tests/cloud/" in path and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("cloud"))  # a module with a group of its own ("spark") keeps it
        _keep_group_together(config, item)


def _keep_group_together(config, item) -> None:
    if not getattr(config.option, "loadgroup", False) or "@" in item.nodeid or not hasattr(item, "_id"):
        return
    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                     for m in item.iter_markers("xdist_group")})
    if not groups:
        return
    from _pytest.nodeid import NodeId

    item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")

"""Fixtures of the fault suite (the driver is fault_library.py), and its figure: faults survived / total."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_faults import AwsCalls
from fault_library import REGION, Library, aws_library_in, local_library_in
from moto_env import mocked_aws

@pytest.fixture(params=["local", "aws"])
def library(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Library]:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        yield from aws_library_in(tmp_path)
    else:
        yield from local_library_in(tmp_path)


@pytest.fixture
def local_library(tmp_path: Path) -> Iterator[Library]:
    yield from local_library_in(tmp_path)


@pytest.fixture
def aws_library(tmp_path: Path, aws_env) -> Iterator[Library]:
    yield from aws_library_in(tmp_path)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mocked_aws(monkeypatch, REGION, unset=("PO_OPENSEARCH_ENDPOINT",)):
        yield


@pytest.fixture
def calls(aws_env) -> Iterator[AwsCalls]:
    """The botocore hook (aws_faults): every call recorded, the armed fault answered."""
    installed = AwsCalls().install()
    yield installed
    installed.uninstall()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The suite's figure: fault cases survived (passed, audit clean) out of those run; the audit's own checks
    (test_library_audit) are not faults and not counted."""
    outcomes = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            if "tests/faults/" in nodeid and "test_library_audit" not in nodeid and "inventory" not in nodeid and report.when in ("call", "setup"):
                outcomes.setdefault(report.nodeid, outcome if outcome != "passed" or report.when == "call" else None)
    ran = {nodeid: outcome for nodeid, outcome in outcomes.items() if outcome not in (None, "skipped")}
    if ran:
        survived = sum(outcome == "passed" for outcome in ran.values())
        terminalreporter.write_line(f"faults survived: {survived} / {len(ran)} (audit clean after each)")

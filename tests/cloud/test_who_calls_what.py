"""Which AWS calls each function makes, and the statement of its role that allows each: written to
build/rehearsal/calls.md from the calls recorded in this session (the journey's, when it ran first in the session;
otherwise this test drives a short one itself), and every call must be allowed."""

from __future__ import annotations

import pytest

import re
from pathlib import Path

from .rehearsal.assembly import CACHE
from .rehearsal.journey import upload, validate_all
from .rehearsal.policy import statement_label

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "good" / "gps_exif.jpg"
TABLE = CACHE / "calls.md"
PHOTO_FUNCTIONS = ("Api", "Validator", "Indexer")


def _general(text: str) -> str:
    text = re.sub(r"(?<!key/)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{owner}", text)
    return re.sub(r"\b[0-9a-f]{32}\b", "{photo_id}", text)


def _rows(rehearsal, title: str) -> list[str]:
    rows = []
    for stack, logical in rehearsal.function_ids():
        function = rehearsal.function_by_id(stack, logical)
        seen = set()
        for decision in rehearsal.decisions(function):
            need = decision.need
            row = (logical, _general(need.why), need.action, _general(need.resource),
                   f"{decision.policy}: {statement_label(decision.statement)}" if decision.allowed else "**DENIED**")
            if row not in seen:
                seen.add(row)
                rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return [f"### {title}", "", "| function | call | permission | resource | allowed by (policy: statement) |",
            "|---|---|---|---|---|", *rows, ""]


def test_every_aws_call_of_every_function_is_listed_with_the_statement_that_allows_it(rehearsal, quarantine_rehearsal):
    if not rehearsal.function("Validator").calls:  # run alone: drive a short journey first
        token = rehearsal.sign_in("table-writer")
        upload(rehearsal, token, SAMPLE.read_bytes(), filename=SAMPLE.name)
        validate_all(rehearsal)
        rehearsal.poll_stream(rehearsal.function("Indexer"))
    lines = ["# AWS calls per function in the deploy rehearsal", "",
             "Written by tests/cloud/test_who_calls_what.py from the calls each function made (recorded by a botocore "
             "hook in its worker, OpenSearch requests at the HTTP level, event source polling as Lambda does it) and "
             "the statement of the function's role that allows each (offline evaluator over the synthesized "
             "policies). KMS rows are the permissions S3/SQS/Secrets Manager need from the caller server-side.", ""]
    lines += _rows(rehearsal, "default settings")
    lines += _rows(quarantine_rehearsal, "rejected_action=quarantine")
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text("\n".join(lines))
    text = TABLE.read_text()
    for name in PHOTO_FUNCTIONS:
        assert f"| {rehearsal.function(name).logical_id} |" in text, name
    denied = [line for line in lines if "**DENIED**" in line]
    assert denied == [], denied

"""checkov over every synthesized template of both Apps, run once: no failed check. Each finding that is accepted is
skipped on its resource in the stacks (stacks.shared.checkov_skip -> Metadata.checkov.skip) with its reason, and a
skip that matches no check on its resource fails too.

checkov lives in its own venv (build/checkov-venv, made by scripts/checkov_venv.py, which `make test` runs): it pins
an old boto3 that would downgrade the app's. Without that venv these tests skip, saying so. `--skip-download` keeps
it offline (no guidelines or policies fetched)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.infrastructure

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / "build" / "checkov-venv" / "bin" / "checkov"
MIN_REASON = 40


def _templates(synthesized, synthesized_serverless) -> dict[Path, dict]:
    files = {}
    for app in (synthesized, synthesized_serverless):
        for path in sorted(app.assembly_dir.glob("*.template.json")):
            files[path.resolve()] = json.loads(path.read_text())
    return files


@pytest.fixture(scope="module")
def templates(synthesized, synthesized_serverless) -> dict[Path, dict]:
    return _templates(synthesized, synthesized_serverless)


@pytest.fixture(scope="module")
def checkov_report(templates) -> dict:
    if not CHECKOV.exists():
        pytest.skip(f"checkov's venv is absent ({CHECKOV.relative_to(ROOT)}): create it with "
                    "`python3 scripts/checkov_venv.py` (make test does); it is kept out of .venv on purpose")
    arguments = [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "--output", "json", "--compact"]
    for path in templates:
        arguments += ["--file", str(path)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BC_", "PRISMA_"))}
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=600, env=environment, cwd=ROOT)
    # checkov exits 1 when a check fails: the assertions below say which.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert [r["check_type"] for r in reports] == ["cloudformation"]
    return reports[0]


def _where(check: dict) -> str:
    return f"{Path(check['file_abs_path']).parent.name}/{Path(check['file_abs_path']).name}: {check['resource']}"


def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason(checkov_report, templates):
    summary = checkov_report["summary"]
    failed = sorted(f"{c['check_id']} {_where(c)} ({c['check_name']})"
                    for c in checkov_report["results"]["failed_checks"])
    assert failed == [], "checkov findings: fix them, or skip them on the resource with a reason " \
                         "(stacks.shared.checkov_skip):\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 200
    print(f"\ncheckov {summary['checkov_version']}: {len(templates)} templates, {summary['resource_count']} "
          f"resources, {summary['passed']} passed, {summary['skipped']} skipped with reasons, 0 failed")


def _metadata_skips(templates):
    for path, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                yield path, logical_id, resource["Type"], skip


def test_every_checkov_skip_names_a_check_and_gives_a_reason(templates):
    skips = list(_metadata_skips(templates))
    assert skips
    for path, logical_id, _, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (path.name, logical_id, skip)
        assert len(skip.get("comment", "").strip()) >= MIN_REASON, (path.name, logical_id, skip)
    for template in templates.values():
        assert "checkov" not in template.get("Metadata", {}), "skip on resources, never on a whole template"


def test_every_checkov_skip_names_a_check_that_checkov_ran_on_that_resource(checkov_report, templates):
    """A skip for a check that does not apply to the resource (wrong id, resource type or template) is stale. checkov
    reports a skip as skipped even where the check would pass, so the stacks add a skip only where the finding is
    (e.g. CKV_AWS_115 only without reserved concurrency, CKV_AWS_173 only with an environment)."""
    skipped = {(Path(c["file_abs_path"]).resolve(), c["resource"].split(".", 1)[1], c["check_id"])
               for c in checkov_report["results"]["skipped_checks"]}
    stale = [(path.parent.name, path.name, logical_id, skip["id"])
             for path, logical_id, _, skip in _metadata_skips(templates)
             if (path, logical_id, skip["id"]) not in skipped]
    assert stale == [], "checkov skips that match no check on their resource: remove them"


SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_?KEY", re.IGNORECASE)


def test_lambda_environments_hold_names_and_settings_only(templates):
    """The decision behind every CKV_AWS_173 skip (no customer-managed key for environment variables): no function's
    environment carries a secret - a secret is referred to by its ARN and fetched at run time."""
    seen = 0
    for path, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            for name, value in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
                seen += 1
                if SECRET_NAME.search(name):
                    assert name.endswith("_ARN"), (path.name, logical_id, name)
                if isinstance(value, str):
                    assert len(value) < 200 and not re.fullmatch(r"[A-Za-z0-9+/=_-]{32,}", value), \
                        (path.name, logical_id, name)
    assert seen > 20

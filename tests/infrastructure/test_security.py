"""Cross-cutting checks: cdk-nag findings, suppression hygiene, cfn-lint. IAM wildcards: test_iam_wildcards.py;
checkov: test_checkov.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match

pytestmark = pytest.mark.infrastructure

CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml", "web")
APPS = ("synthesized", "synthesized_serverless")  # conftest's two Apps: their settings differ (search, web, ...)


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("concern", CONCERNS)
def test_no_unsuppressed_cdk_nag_findings(request, app, concern):
    annotations = Annotations.from_stack(getattr(request.getfixturevalue(app).stacks, concern))
    pattern = Match.string_like_regexp("AwsSolutions-.*")
    findings = annotations.find_error("*", pattern) + annotations.find_warning("*", pattern)
    assert [f"{f.id}: {str(f.entry.data)[:160]}" for f in findings] == []


def _suppressions(synthesized):
    for concern in CONCERNS:
        template = synthesized.template_json(concern)
        for logical_id, resource in template["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                yield concern, logical_id, rule
        for rule in template.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            yield concern, "<stack>", rule


def test_every_suppression_gives_a_specific_reason(synthesized):
    suppressions = list(_suppressions(synthesized))
    assert suppressions, "expected the known suppressions (L1, IAM5, S1, SQS3, COG2, APIG4)"
    for concern, logical_id, rule in suppressions:
        assert len(rule["reason"].strip()) >= 20, (concern, logical_id, rule)
    assert not [s for s in suppressions if s[1] == "<stack>"], "suppress on resources, not whole stacks"


def test_wildcard_suppressions_name_the_findings_they_cover(synthesized):
    for concern, logical_id, rule in _suppressions(synthesized):
        if rule["id"] in ("AwsSolutions-IAM5", "AwsSolutions-IAM4"):
            assert rule.get("applies_to"), (concern, logical_id, "IAM suppressions must list applies_to")


def test_public_route_is_the_only_route_without_authorization(synthesized):
    apig4 = [s for s in _suppressions(synthesized) if s[2]["id"] == "AwsSolutions-APIG4"]
    assert [logical_id for _, logical_id, _ in apig4] == [
        lid for lid in synthesized.template_json("api")["Resources"] if lid.startswith("HttpApiGETopenapijson")
        and synthesized.template_json("api")["Resources"][lid]["Type"] == "AWS::ApiGatewayV2::Route"
    ]


def test_cfn_lint_accepts_the_templates(synthesized, synthesized_serverless):
    templates = sorted(str(p) for app in (synthesized, synthesized_serverless)
                       for p in app.assembly_dir.glob("*.template.json"))
    assert len(templates) == 2 * len(CONCERNS)
    # W3005: CDK writes DependsOn that cfn-lint considers redundant with Ref/GetAtt.
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--", *templates],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

"""Log groups a failed or destroyed stack does not strand: seven groups had fixed names and were retained, so a
rolled-back first deploy left them behind and every retry failed with "already exists". Names now end with a
suffix of the stack's id (drawn by CloudFormation per stack creation), keep the app's prefix (the key policy's
condition on log-group ARNs must still match), and a retained group is not retained by a create's rollback."""

from __future__ import annotations

import fnmatch
import json

import pytest

pytestmark = pytest.mark.infrastructure

CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml")
STACK_ID = "arn:aws:cloudformation:eu-west-1:111111111111:stack/{name}/51af3dc0-da77-11e4-872e-{tail}"


def resolve_name(value, stack_id: str) -> str:
    """Evaluates the intrinsic functions a log group name may use, for a given AWS::StackId."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve_name(v, stack_id) for v in value]  # type: ignore[return-value]
    (function, argument), = value.items()
    if function == "Ref":
        assert argument == "AWS::StackId", argument
        return stack_id
    if function == "Fn::Join":
        return argument[0].join(resolve_name(part, stack_id) for part in argument[1])
    if function == "Fn::Split":
        return resolve_name(argument[1], stack_id).split(argument[0])  # type: ignore[return-value]
    if function == "Fn::Select":
        return resolve_name(argument[1], stack_id)[argument[0]]
    raise AssertionError(f"unexpected {function} in a log group name")


def _log_groups(synthesized):
    for concern in CONCERNS:
        for logical_id, resource in synthesized.template_json(concern)["Resources"].items():
            if resource["Type"] == "AWS::Logs::LogGroup":
                yield concern, logical_id, resource


def test_no_log_group_has_a_fixed_name_and_a_new_stack_gets_new_names(synthesized):
    groups = list(_log_groups(synthesized))
    assert len(groups) >= 7
    for concern, logical_id, resource in groups:
        name = resource["Properties"]["LogGroupName"]
        assert not isinstance(name, str), (concern, logical_id, name)
        first = resolve_name(name, STACK_ID.format(name=concern, tail="1234567db123"))
        retry = resolve_name(name, STACK_ID.format(name=concern, tail="89abcdef0123"))
        assert first != retry and first.endswith("-1234567db123"), (logical_id, first)


def test_log_group_names_keep_the_prefix_the_key_policy_allows(synthesized):
    settings = synthesized.stacks.settings
    key = next(iter(synthesized.template("storage").find_resources("AWS::KMS::Key").values()))
    [statement] = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowAppLogGroups"]
    allowed_arns = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    for concern, logical_id, resource in _log_groups(synthesized):
        name = resolve_name(resource["Properties"]["LogGroupName"], STACK_ID.format(name=concern, tail="1234567db123"))
        assert name.startswith(settings.log_group_prefix), name
        arn = f"arn:aws:logs:{settings.region}:{settings.account}:log-group:{name}"
        assert fnmatch.fnmatchcase(arn, allowed_arns), (arn, allowed_arns)
        assert "DataKey" in json.dumps(resource["Properties"]["KmsKeyId"]), logical_id


def test_retained_log_groups_are_not_retained_by_the_rollback_of_a_failed_create(synthesized):
    assert synthesized.stacks.settings.retain
    for concern, logical_id, resource in _log_groups(synthesized):
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate", (concern, logical_id)
        assert resource["UpdateReplacePolicy"] == "Retain", (concern, logical_id)


def test_the_fixed_name_domain_is_not_retained_by_the_rollback_of_a_failed_create(synthesized):
    [domain] = synthesized.template("search").find_resources("AWS::OpenSearchService::Domain").values()
    assert domain["Properties"]["DomainName"] == synthesized.stacks.settings.search_domain_name
    assert domain["DeletionPolicy"] == "RetainExceptOnCreate"

"""Operations: one encrypted, TLS-only alarm topic in the first stack; every alarm notifies it; the alarms the issue
lists exist (validator errors, API 5xx rate, DLQ depths, OpenSearch red/yellow and free storage) and Glue runs that
fail reach the topic through an EventBridge rule; no stack refers to a stack deployed after it."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure

CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml")
TOPIC_ARN = "arn:aws:sns:eu-west-1:111111111111:photo-organizer-dev-alarms"


def _alarms(synthesized):
    for concern in CONCERNS:
        for logical_id, resource in synthesized.template_json(concern)["Resources"].items():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                yield concern, logical_id, resource["Properties"]


def _is_topic_ref(value) -> bool:
    return "AlarmsTopic" in json.dumps(value)


def test_alarm_topic_is_encrypted_tls_only_and_named_as_the_key_policy_expects(synthesized):
    template = synthesized.template("storage")
    [topic] = template.find_resources("AWS::SNS::Topic").values()
    assert topic["Properties"]["TopicName"] == synthesized.stacks.settings.alarm_topic_name
    assert topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("DataKey")
    [policy] = template.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    allowed = {s["Principal"]["Service"]: s["Condition"] for s in statements if s["Effect"] == "Allow"}
    assert allowed["cloudwatch.amazonaws.com"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    assert allowed["events.amazonaws.com"] == {"ArnEquals": {
        "aws:SourceArn": "arn:aws:events:eu-west-1:111111111111:rule/photo-organizer-dev-glue-run-failed"}}
    [key] = template.find_resources("AWS::KMS::Key").values()
    [use] = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowAlarmTopicPublishers"]
    assert use["Condition"] == {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": TOPIC_ARN}}
    assert sorted(use["Principal"]["Service"]) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    assert not template.find_resources("AWS::SNS::Subscription")  # no alarm_email in cdk.json


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(synthesized):
    alarms = list(_alarms(synthesized))
    assert len(alarms) >= 8
    for concern, logical_id, alarm in alarms:
        assert len(alarm.get("AlarmActions", [])) == 1 and _is_topic_ref(alarm["AlarmActions"]), (concern, logical_id)
        assert _is_topic_ref(alarm.get("OKActions")), (concern, logical_id)


def test_the_alarms_the_issue_lists_exist(synthesized):
    by_id = {logical_id: (concern, alarm) for concern, logical_id, alarm in _alarms(synthesized)}

    def one(prefix: str) -> tuple[str, dict]:
        found = [v for k, v in by_id.items() if k.startswith(prefix)]
        assert len(found) == 1, prefix
        return found[0]

    concern, validator = one("ValidatorErrorsAlarm")
    assert concern == "ingest" and (validator["MetricName"], validator["Namespace"]) == ("Errors", "AWS/Lambda")
    assert one("DeadLettersAlarm")[1]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert one("UndeliveredEventsAlarm")[1]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert one("IndexerFailuresAlarm")[1]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    concern, rate = one("Api5xxRateAlarm")
    assert concern == "api" and rate["Threshold"] == 5
    [expression] = [m for m in rate["Metrics"] if "Expression" in m]
    assert "100 * FILL(errors, 0) / requests" in expression["Expression"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m} == {"5xx", "Count"}
    concern, red = one("ClusterRedAlarm")
    assert (concern, red["MetricName"], red["Namespace"], red["Threshold"]) == (
        "search", "ClusterStatus.red", "AWS/ES", 1)
    assert {d["Name"] for d in red["Dimensions"]} == {"DomainName", "ClientId"}
    _, storage = one("FreeStorageAlarm")
    assert (storage["MetricName"], storage["Statistic"], storage["ComparisonOperator"]) == (
        "FreeStorageSpace", "Minimum", "LessThanOrEqualToThreshold")
    assert storage["Threshold"] == synthesized.stacks.settings.opensearch_volume_gb * 1024 * 0.25


def test_one_data_node_gets_the_yellow_alarm_too_since_the_index_auto_expands_its_replicas(synthesized):
    """The index asks for 0-1 replicas (opensearch_mapping.json), so a one-node domain is green when healthy; its
    yellow alarm was left out while the index asked for one replica, which a single node can never place."""
    from photo_organizer.adapters.aws.opensearch_lifecycle import load_mapping

    assert load_mapping()["settings"]["index"]["auto_expand_replicas"] == "0-1"
    assert synthesized.stacks.settings.opensearch_instance_count == 1
    [(concern, yellow)] = [(c, a) for c, lid, a in _alarms(synthesized) if lid.startswith("ClusterYellowAlarm")]
    assert (concern, yellow["MetricName"], yellow["Namespace"], yellow["Statistic"]) == (
        "search", "ClusterStatus.yellow", "AWS/ES", "Maximum")
    assert yellow["EvaluationPeriods"] == 5 and yellow["Threshold"] == 1 and yellow["AlarmActions"]
    assert {d["Name"] for d in yellow["Dimensions"]} == {"DomainName", "ClientId"}


def test_glue_runs_that_fail_time_out_or_error_reach_the_topic(synthesized):
    template = synthesized.template("analysis")
    [rule] = template.find_resources("AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["Name"] == synthesized.stacks.settings.glue_failure_rule_name
    assert props["EventPattern"]["source"] == ["aws.glue"]
    assert props["EventPattern"]["detail-type"] == ["Glue Job State Change"]
    assert props["EventPattern"]["detail"]["state"] == ["FAILED", "TIMEOUT", "ERROR"]
    jobs = {lid for lid, r in template.to_json()["Resources"].items() if r["Type"] == "AWS::Glue::Job"}
    assert {ref["Ref"] for ref in props["EventPattern"]["detail"]["jobName"]} == jobs and len(jobs) == 2
    [target] = props["Targets"]
    assert _is_topic_ref(target["Arn"]) and "jobRunId" in json.dumps(target["InputTransformer"])


def test_no_stack_refers_to_a_stack_deployed_after_it(synthesized):
    """A reference to a later stack's output cannot resolve on a first deploy (and would be a cycle)."""
    order = [stack.stack_name for stack in synthesized.stacks.all()]
    for concern in CONCERNS:
        stack_name = getattr(synthesized.stacks, concern).stack_name
        text = json.dumps(synthesized.template_json(concern))
        for other in order[order.index(stack_name) + 1:]:
            assert f'"StackName": "{other}"' not in text and f"{other}:" not in text, (concern, other)
        for dependency in getattr(synthesized.stacks, concern).dependencies:
            assert order.index(dependency.stack_name) < order.index(stack_name), (concern, dependency.stack_name)


def test_alarm_email_subscribes_three_data_nodes_get_a_yellow_alarm_and_operators_are_mapped(stub_lambda_dir, tmp_path):
    """Storage and search stacks alone (cheaper than a whole App) with alarm_email and three data nodes."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.search import SearchStack
    from stacks.settings import Settings
    from stacks.storage import StorageStack

    from .conftest import cdk_json_context

    operator = "arn:aws:iam::111111111111:role/photo-ops"
    settings = Settings(lambda_code_dir=str(stub_lambda_dir), alarm_email="ops@example.org",
                        opensearch_instance_count=3, search_operator_role_arns=(operator,))
    settings.check()
    app = cdk.App(context=cdk_json_context(), outdir=str(tmp_path))
    env = cdk.Environment(account=settings.account, region=settings.region)
    storage = StorageStack(app, "storage", settings=settings, env=env)
    search = SearchStack(app, "search", settings=settings, storage=storage.outputs, env=env)
    Template.from_stack(storage).has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.org", "TopicArn": {"Ref": Match.string_like_regexp("^AlarmsTopic")}})
    yellow = Template.from_stack(search).find_resources("AWS::CloudWatch::Alarm", {"Properties": {
        "MetricName": "ClusterStatus.yellow"}})
    [alarm] = yellow.values()
    assert alarm["Properties"]["EvaluationPeriods"] == 5 and alarm["Properties"]["AlarmActions"]
    # operators who run `search reindex|reconcile` get the indexer's writer mapping
    [writer] = Template.from_stack(search).find_resources("Custom::OpenSearchAccess").values()
    assert writer["Properties"]["BackendRoles"][1:] == [operator]


def test_alarm_email_must_look_like_an_address():
    from stacks.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="alarm_email"):
        Settings(alarm_email="ops at example").check()

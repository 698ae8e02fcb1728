"""What AWS services do on the app's behalf, checked against the resource policies the templates give them (the
offline evaluator, with the condition keys each service sends): EventBridge delivers upload events into the
encrypted queue, CloudWatch Logs encrypts every log group with the data key, S3 delivers access logs, OpenSearch
writes its logs. A refusal names the statement the resource policy is missing."""

from __future__ import annotations

import pytest

import json

from .rehearsal.policy import Need, evaluate, for_service

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal


def _refused(needs: list[Need], statements: list[tuple[str, dict]]) -> list[str]:
    return [f"{d.need.describe()} for {d.need.why}" for d in (evaluate(n, statements) for n in needs) if not d.allowed]


def _key_policy(rehearsal) -> dict:
    return json.loads(rehearsal.client("kms").get_key_policy(KeyId=rehearsal.ref("storage", "DataKey"),
                                                             PolicyName="default")["Policy"])


def _delivery_needs(rehearsal, principal_arn: str, target: str, why: str) -> list[tuple[str, Need, dict]]:
    """(resource policy owner, need, that policy) for a service delivering to an SQS queue or an SNS topic on behalf
    of `principal_arn` (the rule or alarm): the send itself, and the KMS use of an encrypted target."""
    context = [("aws:SourceArn", principal_arn), ("aws:SourceAccount", rehearsal.account)]
    if ":sqs:" in target:
        name = target.rsplit(":", 1)[-1]
        url = rehearsal.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        policy = rehearsal.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        found = [("queue " + name, Need("sqs:SendMessage", target, tuple(context), why),
                  json.loads(policy.get("Attributes", {}).get("Policy", "{}")))]
        key = rehearsal.dataplane.kms_keys.get(("sqs", name))
        encryption = ("kms:EncryptionContext:aws:sqs:arn", target)
    else:
        policy = rehearsal.client("sns").get_topic_attributes(TopicArn=target)["Attributes"].get("Policy", "{}")
        found = [("topic " + target, Need("sns:Publish", target, tuple(context), why), json.loads(policy))]
        key = rehearsal.dataplane.kms_keys.get(("sns", target))
        encryption = ("kms:EncryptionContext:aws:sns:topicArn", target)
    if key:
        found += [("data key", Need(action, key, tuple(context + [encryption]), f"{why} (encrypted target)"),
                   _key_policy(rehearsal)) for action in ("kms:GenerateDataKey", "kms:Decrypt")]
    return found


def test_eventbridge_may_deliver_every_rule_to_its_targets_and_dead_letter_queues(rehearsal):
    refused, checked = [], 0
    for stack, logical, rule in rehearsal.assembly.resources("AWS::Events::Rule"):
        rule_arn = rehearsal.dataplane.physical(stack, logical, "Arn")
        for target in rehearsal.resolve(stack, rule["Properties"].get("Targets", [])):
            destinations = [target["Arn"]] + ([target["DeadLetterConfig"]["Arn"]] if "DeadLetterConfig" in target else [])
            for destination in destinations:
                for owner, need, policy in _delivery_needs(rehearsal, rule_arn, destination, f"rule {logical}"):
                    checked += 1
                    refused += [f"{owner}: {r}" for r in _refused([need], for_service(policy, "events.amazonaws.com"))]
    assert checked and refused == []


def test_cloudwatch_may_notify_every_alarm_topic(rehearsal):
    refused, checked = [], 0
    for stack, logical, alarm in rehearsal.assembly.resources("AWS::CloudWatch::Alarm"):
        props = rehearsal.resolve(stack, alarm["Properties"])
        alarm_arn = rehearsal.dataplane.physical(stack, logical, "Arn")
        for topic in set(props.get("AlarmActions", []) + props.get("OKActions", [])):
            for owner, need, policy in _delivery_needs(rehearsal, alarm_arn, topic, f"alarm {logical}"):
                if need.action.startswith("kms:"):  # same-account alarm actions need no topic policy; the key does
                    checked += 1
                    refused += [f"{owner}: {r}" for r in _refused([need], for_service(policy, "cloudwatch.amazonaws.com"))]
    assert checked and refused == []


def test_cloudwatch_logs_may_use_the_data_key_for_every_encrypted_log_group(rehearsal):
    key_arn = rehearsal.ref("storage", "DataKey", "Arn")
    statements = for_service(_key_policy(rehearsal), f"logs.{rehearsal.region}.amazonaws.com")
    needs = []
    for stack, logical, resource in rehearsal.assembly.resources("AWS::Logs::LogGroup"):
        if "KmsKeyId" not in resource["Properties"]:
            continue
        group = rehearsal.dataplane.physical(stack, logical, None)
        arn = f"arn:aws:logs:{rehearsal.region}:{rehearsal.account}:log-group:{group}"
        needs += [Need(a, key_arn, (("kms:EncryptionContext:aws:logs:arn", arn),), f"log group {group}")
                  for a in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")]
    assert needs
    assert _refused(needs, statements) == []


def test_s3_may_deliver_server_access_logs_of_every_logging_bucket(rehearsal):
    refused = []
    for bucket, logging in rehearsal.dataplane.access_logging.items():
        target = logging["DestinationBucketName"]
        statements = for_service(rehearsal.dataplane.bucket_policies.get(target, {}), "logging.s3.amazonaws.com")
        need = Need("s3:PutObject", f"arn:aws:s3:::{target}/{logging.get('LogFilePrefix', '')}2026-12-03-rehearsal",
                    (("aws:SourceArn", f"arn:aws:s3:::{bucket}"), ("aws:SourceAccount", rehearsal.account)),
                    f"access logs of {bucket}")
        refused += _refused([need], statements)
    assert rehearsal.dataplane.access_logging and refused == []


def test_opensearch_may_write_its_logs_into_its_log_groups(rehearsal):
    domains = list(rehearsal.assembly.resources("AWS::OpenSearchService::Domain"))
    assert domains
    for stack, logical, resource in domains:
        domain_arn = rehearsal.dataplane.physical(stack, logical, "Arn")
        options = rehearsal.resolve(stack, resource["Properties"].get("LogPublishingOptions", {}))
        policies = [rehearsal.resolve(s, r["Properties"]["PolicyDocument"])
                    for s, _, r in rehearsal.assembly.resources("AWS::Logs::ResourcePolicy")]
        statements = [item for document in policies for item in for_service(document, "es.amazonaws.com")]
        needs = [Need(action, f"{option['CloudWatchLogsLogGroupArn'].removesuffix(':*')}:log-stream:rehearsal",
                      (("aws:SourceArn", domain_arn), ("aws:SourceAccount", rehearsal.account)), f"{kind} logs")
                 for kind, option in options.items() if option.get("Enabled")
                 for action in ("logs:CreateLogStream", "logs:PutLogEvents")]
        assert needs and _refused(needs, statements) == []

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


def test_eventbridge_may_deliver_upload_events_into_the_encrypted_queue(rehearsal):
    rule_arn = rehearsal.ref("ingest", "OriginalCreated", "Arn")
    queue_url, queue_arn = rehearsal.ref("ingest", "UploadEventsQueue"), rehearsal.ref("ingest", "UploadEventsQueue", "Arn")
    context = (("aws:SourceArn", rule_arn), ("aws:SourceAccount", rehearsal.account))
    queue_policy = rehearsal.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])
    queue_statements = for_service(queue_policy["Attributes"]["Policy"], "events.amazonaws.com")
    assert _refused([Need("sqs:SendMessage", queue_arn, context, "the upload rule's target")], queue_statements) == []
    key_arn = rehearsal.ref("storage", "DataKey", "Arn")
    key_statements = for_service(_key_policy(rehearsal), "events.amazonaws.com")
    assert _refused([Need(a, key_arn, context, "the upload rule's target (SSE-KMS queue)")
                     for a in ("kms:GenerateDataKey", "kms:Decrypt")], key_statements) == []


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

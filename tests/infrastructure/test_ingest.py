from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure


def _queues(synthesized) -> dict[str, dict]:
    queues = synthesized.template("ingest").find_resources("AWS::SQS::Queue")
    names = {"UploadEventsDlq": "dlq", "UploadEventsQueue": "queue", "UndeliveredEvents": "undelivered"}
    return {next(n for prefix, n in names.items() if logical_id.startswith(prefix)): q["Properties"]
            for logical_id, q in queues.items()}


def test_all_queues_are_encrypted_with_the_cmk_and_keep_messages_14_days(synthesized):
    assert set(_queues(synthesized)) == {"dlq", "queue", "undelivered"}
    for name, props in _queues(synthesized).items():
        assert "DataKey" in str(props["KmsMasterKeyId"]), name
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600, name


def test_queue_redrives_to_dlq_after_max_receive_count(synthesized):
    redrive = _queues(synthesized)["queue"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == synthesized.stacks.settings.dlq_max_receive_count
    assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0].startswith("UploadEventsDlq")


def test_visibility_timeout_is_at_least_six_function_timeouts(synthesized):
    settings = synthesized.stacks.settings
    assert _queues(synthesized)["queue"]["VisibilityTimeout"] >= 6 * settings.validator_timeout_seconds


def test_all_queues_deny_plain_http(synthesized):
    policies = synthesized.template("ingest").find_resources("AWS::SQS::QueuePolicy")
    assert len(policies) == 3
    for policy in policies.values():
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"])


def test_only_the_upload_rule_may_send_to_the_queue(synthesized):
    synthesized.template("ingest").has_resource_properties("AWS::SQS::QueuePolicy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Condition": {"ArnEquals": {"aws:SourceArn": {
                "Fn::GetAtt": [Match.string_like_regexp("^OriginalCreated"), "Arn"]}}},
        })])},
    })


def test_rule_matches_object_created_under_originals_of_the_originals_bucket(synthesized):
    rule = next(iter(synthesized.template("ingest").find_resources("AWS::Events::Rule").values()))["Properties"]
    assert rule["Name"] == synthesized.stacks.settings.upload_rule_name
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "originals/"}]}
    assert "Originals" in str(pattern["detail"]["bucket"]["name"])
    assert rule["Targets"][0]["Arn"]["Fn::GetAtt"][0].startswith("UploadEventsQueue")


def test_validator_function_configuration(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("ingest").has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.12",
        "Architectures": ["arm64"],
        "Handler": "photo_organizer.handlers.ingest.handler",
        "MemorySize": settings.validator_memory_mb,
        "Timeout": settings.validator_timeout_seconds,
        "TracingConfig": {"Mode": "Active"},
        "LoggingConfig": Match.object_like({"LogGroup": {"Ref": Match.string_like_regexp("^ValidatorLogs")}}),
        "Environment": {"Variables": {
            "PO_BACKEND": "aws",
            "PO_ORIGINALS_BUCKET": Match.any_value(),
            "PO_DERIVATIVES_BUCKET": Match.any_value(),
            "PO_TABLE_NAME": Match.any_value(),
            "PO_MAX_UPLOAD_BYTES": str(settings.max_upload_mb * 1024 * 1024),
            "PO_REJECTED_ACTION": settings.rejected_action,
            "POWERTOOLS_SERVICE_NAME": "photo-organizer",
            "POWERTOOLS_METRICS_NAMESPACE": "PhotoOrganizer",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }},
    })


def test_validator_log_group_is_encrypted_and_expires(synthesized):
    synthesized.template("ingest").has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": {"Fn::Join": ["", ["/photo-organizer/dev/validator-", Match.any_value()]]},
        "RetentionInDays": synthesized.stacks.settings.log_retention_days,
        "KmsKeyId": Match.any_value(),
    })


def test_event_source_reports_batch_item_failures(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("ingest").has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BatchSize": settings.ingest_batch_size,
        "MaximumBatchingWindowInSeconds": settings.ingest_max_batching_window_seconds,
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("^UploadEventsQueue"), "Arn"]},
    })


def test_dead_letters_raise_an_alarm(synthesized):
    synthesized.template("ingest").has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Namespace": "AWS/SQS",
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "QueueName",
                        "Value": {"Fn::GetAtt": [Match.string_like_regexp("^UploadEventsDlq"), "QueueName"]}}],
    })


def test_validator_can_delete_every_version_of_a_rejected_original(synthesized):
    statements = [
        s for policy in synthesized.template("ingest").find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:ListBucketVersions", "s3:PutObject"} <= actions


def test_validator_reserves_no_concurrency_by_default(synthesized):
    [validator] = synthesized.template("ingest").find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "photo_organizer.handlers.ingest.handler"}}).values()
    assert "ReservedConcurrentExecutions" not in validator["Properties"]


def test_queue_event_source_caps_concurrent_validators_from_settings(synthesized):
    """Without maximumConcurrency a burst starts validators until Lambda throttles them; throttled batches go back
    to the queue and count receives, so good uploads reached the DLQ."""
    settings = synthesized.stacks.settings
    synthesized.template("ingest").has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("^UploadEventsQueue"), "Arn"]},
        "ScalingConfig": {"MaximumConcurrency": settings.ingest_max_concurrency},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    })
    assert settings.ingest_max_concurrency == 5


def test_a_chosen_reservation_reaches_the_function(stub_lambda_dir, tmp_path):
    """Storage and ingest stacks alone (cheaper than a whole App) with validator_reserved_concurrency=20."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.ingest import IngestStack
    from stacks.settings import Settings
    from stacks.storage import StorageStack

    settings = Settings(lambda_code_dir=str(stub_lambda_dir), validator_reserved_concurrency=20,
                        ingest_max_concurrency=20)
    settings.check()
    from .conftest import cdk_json_context

    app = cdk.App(context=cdk_json_context(), outdir=str(tmp_path))
    env = cdk.Environment(account=settings.account, region=settings.region)
    storage = StorageStack(app, "storage", settings=settings, env=env)
    ingest = IngestStack(app, "ingest", settings=settings, storage=storage.outputs, env=env)
    template = Template.from_stack(ingest)
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "photo_organizer.handlers.ingest.handler", "ReservedConcurrentExecutions": 20})
    template.has_resource_properties("AWS::Lambda::EventSourceMapping", {"ScalingConfig": {"MaximumConcurrency": 20}})


def test_rule_target_retries_for_a_day_then_keeps_undelivered_events_in_a_dead_letter_queue(synthesized):
    """Without them an event EventBridge could not deliver (throttling, KMS) was retried by default and then
    dropped: the photo stayed PENDING with nothing left to process it."""
    [rule] = synthesized.template("ingest").find_resources("AWS::Events::Rule").values()
    [target] = rule["Properties"]["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("UndeliveredEvents")


def test_only_the_upload_rule_may_send_to_the_undelivered_events_queue(synthesized):
    policies = synthesized.template("ingest").find_resources("AWS::SQS::QueuePolicy")
    [policy] = [p for p in policies.values() if p["Properties"]["Queues"][0]["Ref"].startswith("UndeliveredEvents")]
    [allow] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0].startswith("OriginalCreated")


def test_undelivered_events_depth_is_alarmed(synthesized):
    synthesized.template("ingest").has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS", "Threshold": 0,
        "Dimensions": [{"Name": "QueueName",
                        "Value": {"Fn::GetAtt": [Match.string_like_regexp("^UndeliveredEvents"), "QueueName"]}}],
    })


def test_eventbridge_may_use_the_key_for_the_ingest_queues_by_encryption_context(synthesized):
    """Delivery to the encrypted queue (and to its dead-letter queue) must not hang on aws:SourceArn in the key
    policy alone, which AWS documents as unsupported for EventBridge-to-encrypted-topic delivery: a second
    statement scopes the key by the queue ARN SQS puts in the encryption context."""
    import fnmatch

    key = next(iter(synthesized.template("storage").find_resources("AWS::KMS::Key").values()))
    [statement] = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                   if s.get("Sid") == "AllowEventBridgeToIngestQueues"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    pattern = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:sqs:arn"]
    stack_name = synthesized.stacks.ingest.stack_name
    # CloudFormation names a queue without QueueName "<stack name>-<logical id>-<random>"
    for logical_id, queue in synthesized.template("ingest").find_resources("AWS::SQS::Queue").items():
        assert "QueueName" not in queue["Properties"], logical_id
        arn = f"arn:aws:sqs:eu-west-1:111111111111:{stack_name}-{logical_id[:20]}-1A2B3C4D5E6F"
        assert fnmatch.fnmatchcase(arn, pattern), (arn, pattern)
    assert not fnmatch.fnmatchcase("arn:aws:sqs:eu-west-1:111111111111:photo-organizer-dev-search-X-1", pattern)

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure


def _queues(synthesized) -> dict[str, dict]:
    queues = synthesized.template("ingest").find_resources("AWS::SQS::Queue")
    return {("dlq" if "Dlq" in logical_id else "queue"): q["Properties"] for logical_id, q in queues.items()}


def test_both_queues_are_encrypted_with_the_cmk_and_keep_messages_14_days(synthesized):
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


def test_both_queues_deny_plain_http(synthesized):
    policies = synthesized.template("ingest").find_resources("AWS::SQS::QueuePolicy")
    assert len(policies) == 2
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
        "LogGroupName": "/photo-organizer/dev/validator",
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

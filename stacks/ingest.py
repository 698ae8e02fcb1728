"""IngestStack: S3 "Object Created" events -> EventBridge rule -> encrypted SQS queue -> validator function."""

from __future__ import annotations

from dataclasses import dataclass

import jsii
from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.monitoring import FIVE_MINUTES, alarm_above_zero
from stacks.settings import Settings
from stacks.shared import (
    EncryptedQueueWithDlq,
    PhotoOrganizerFunction,
    StorageOutputs,
    common_environment,
    suppress,
    suppress_grant_wildcards,
)
from stacks.storage import ORIGINALS_PREFIX, QUARANTINE_PREFIX

VALIDATOR_HANDLER = "photo_organizer.handlers.ingest.handler"


@dataclass(frozen=True)
class IngestOutputs:
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue
    validator: lambda_.IFunction


# EventBridge keeps retrying a delivery the queue refused (throttling, a KMS hiccup) for a day, then hands the event
# to the undelivered-events queue instead of dropping it (the defaults, spelled out: the template says what happens).
TARGET_MAX_EVENT_AGE_SECONDS = 24 * 3600
TARGET_MAX_RETRY_ATTEMPTS = 185


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """Rule target that sends to the queue, with the queue policies scoped to this one rule, a retry policy and a
    dead-letter queue for events EventBridge could not deliver.

    aws_events_targets.SqsQueue would grant events.amazonaws.com on an encrypted queue without the rule's
    ARN as a condition, and write an unconditioned statement into the key policy of the storage stack.
    """

    def __init__(self, queue: sqs.Queue, undelivered: sqs.Queue) -> None:
        self._queue = queue
        self._undelivered = undelivered

    def bind(self, rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        for queue, sid in ((self._queue, "AllowUploadRuleOnly"), (self._undelivered, "AllowUploadRuleDeadLetters")):
            queue.add_to_resource_policy(iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                resources=[queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
            ))
        return events.RuleTargetConfig(
            arn=self._queue.queue_arn,
            target_resource=self._queue,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self._undelivered.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=TARGET_MAX_EVENT_AGE_SECONDS,
                maximum_retry_attempts=TARGET_MAX_RETRY_ATTEMPTS,
            ),
        )


class IngestStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)

        # AWS: visibility timeout at least 6x the function timeout plus the batching window, so a batch that
        # is still being retried inside the poller is not handed to a second invocation.
        visibility = 6 * settings.validator_timeout_seconds + settings.ingest_max_batching_window_seconds
        uploads = EncryptedQueueWithDlq(
            self, "UploadEvents", key=storage.key, visibility_timeout=Duration.seconds(visibility),
            max_receive_count=settings.dlq_max_receive_count,
        )
        rule = events.Rule(
            self, "OriginalCreated",
            rule_name=settings.upload_rule_name,  # fixed: the storage key policy names this rule's ARN
            description="New originals uploaded through a presigned POST",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [storage.originals.bucket_name]},
                    "object": {"key": [{"prefix": ORIGINALS_PREFIX}]},
                },
            ),
        )
        # Events EventBridge gave up delivering (same body as a queue message: redrive them into the queue).
        undelivered = sqs.Queue(
            self, "UndeliveredEvents",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=storage.key,  # the key policy already lets this rule use the key
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        suppress(undelivered, ("AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the upload rule's "
                                                    "target; its depth is alarmed on instead."))
        rule.add_target(_QueueTarget(uploads.queue, undelivered))

        validator = PhotoOrganizerFunction(
            self, "Validator",
            settings=settings, storage=storage, handler=VALIDATOR_HANDLER, log_name="validator",
            memory_mb=settings.validator_memory_mb, timeout_seconds=settings.validator_timeout_seconds,
            reserved_concurrency=settings.validator_reserved_concurrency or None,  # 0 = no reservation
            environment=common_environment(settings, storage),
            description="Validates uploaded originals and records them (or rejects them)",
            failure_path=("polled from the upload events queue by an event source mapping (a synchronous call); a "
                          "message that keeps failing moves to that queue's DLQ after max_receive_count tries."),
        )
        validator.function.add_event_source(event_sources.SqsEventSource(
            uploads.queue,
            batch_size=settings.ingest_batch_size,
            max_batching_window=Duration.seconds(settings.ingest_max_batching_window_seconds),
            report_batch_item_failures=True,
            max_concurrency=settings.ingest_max_concurrency,
        ))
        self._grant(validator, storage)

        topic = storage.alarm_topic
        alarm = alarm_above_zero(
            self, "DeadLettersAlarm", topic=topic,
            description="Upload events failed validation repeatedly and sit in the dead-letter queue",
            metric=uploads.dlq.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
        )
        undelivered_alarm = alarm_above_zero(
            self, "UndeliveredEventsAlarm", topic=topic,
            description="EventBridge could not deliver upload events to the queue for a day: redrive them",
            metric=undelivered.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES,
                                                                             statistic="Maximum"),
        )
        # The validator records bad uploads as rejected and returns; an error here is a crash or a dependency
        # failing (retried by SQS, and the batch's photos wait), which someone should look at.
        errors_alarm = alarm_above_zero(
            self, "ValidatorErrorsAlarm", topic=topic,
            description="The validator function failed (its batch is retried; repeated failures reach the DLQ)",
            metric=validator.function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
        )

        self.outputs = IngestOutputs(queue=uploads.queue, dead_letter_queue=uploads.dlq, validator=validator.function)
        CfnOutput(self, "UploadEventsQueueUrl", value=uploads.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=uploads.dlq.queue_url)
        CfnOutput(self, "DeadLettersAlarmName", value=alarm.alarm_name)
        CfnOutput(self, "UndeliveredEventsQueueUrl", value=undelivered.queue_url)
        CfnOutput(self, "UndeliveredEventsAlarmName", value=undelivered_alarm.alarm_name)
        CfnOutput(self, "ValidatorErrorsAlarmName", value=errors_alarm.alarm_name)
        CfnOutput(self, "ValidatorFunctionName", value=validator.function.function_name)

    def _grant(self, validator: PhotoOrganizerFunction, storage: StorageOutputs) -> None:
        fn = validator.function
        # Not grant_read: it adds s3:List* on the whole bucket, i.e. every owner's keys. The validator reads the
        # object its event names and lists only versions under originals/ (ListBucketVersions below).
        storage.originals.grant_delete(fn, f"{ORIGINALS_PREFIX}*")
        storage.originals.grant_put(fn, f"{QUARANTINE_PREFIX}*")
        # Deleting a rejected original removes every version, which needs the version-level actions.
        validator.role.add_to_principal_policy(iam.PolicyStatement(
            # Tagging reads: a quarantine move is a CopyObject, which copies the source's tags.
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
                     "s3:DeleteObjectVersion"],
            resources=[storage.originals.arn_for_objects(f"{ORIGINALS_PREFIX}*")],
        ))
        validator.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucketVersions"],
            resources=[storage.originals.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{ORIGINALS_PREFIX}*"]}},
        ))
        storage.derivatives.grant_put(fn)
        storage.table.grant_read_write_data(fn)
        storage.key.grant_encrypt_decrypt(fn)
        suppress_grant_wildcards(validator.role)

"""Operations: the one alarm topic every alarm notifies, and the rule that reports failed Glue runs to it.

The topic lives in the storage stack (the first one deployed), beside the key that encrypts it, so every later stack
can name it in its alarms and no stack depends on a later one. Its name is fixed by settings, like the upload rule's,
so the key policy and the topic policy can name it, and the Glue rule of the analysis stack, without a reference.

Glue failures are caught with an EventBridge rule on "Glue Job State Change" (FAILED, TIMEOUT, ERROR) rather than a
metric alarm: Glue's job metrics (--enable-metrics) are emitted only while a run executes, so a run that dies at
start (an import error, a missing module, a bad argument) emits none, and there is no "run failed" metric without
observability metrics; the state change event is sent for every run that ends, however it ends.
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.settings import Settings

GLUE_FAILED_STATES = ("FAILED", "TIMEOUT", "ERROR")


class AlarmTopic(Construct):
    """KMS-encrypted, TLS-only topic; an email subscription when settings.alarm_email is set (confirm the email)."""

    def __init__(self, scope: Construct, id: str, *, settings: Settings, key: kms.Key) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "Topic",
            topic_name=settings.alarm_topic_name,  # fixed: the key policy and the Glue rule name it (module doc)
            display_name=f"{settings.prefix} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        # A topic policy replaces the default one, which let the account's services publish: allow again exactly
        # our alarms and our Glue failure rule.
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowOurAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": settings.account},
                "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{settings.region}:{settings.account}:alarm:*"},
            },
        ))
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowGlueFailureRule",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={"ArnEquals": {"aws:SourceArn": settings.glue_failure_rule_arn()}},
        ))
        # SNS encrypts each message with a data key it asks KMS for on the publisher's behalf; the encryption context
        # names the topic, so the services may use the key for this topic only.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowAlarmTopicPublishers",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com"), iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": settings.alarm_topic_arn()}},
        ))


def notify(topic: sns.ITopic, *alarms: cloudwatch.Alarm) -> None:
    """Every alarm of the app goes through here: the topic hears when it fires and when it clears."""
    action = cloudwatch_actions.SnsAction(topic)
    for alarm in alarms:
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)


def alarm_above_zero(scope: Construct, id: str, *, topic: sns.ITopic, metric: cloudwatch.IMetric,
                     description: str) -> cloudwatch.Alarm:
    """Fires on the first data point above zero (errors, messages in a dead-letter queue)."""
    alarm = cloudwatch.Alarm(
        scope, id,
        alarm_description=description,
        metric=metric,
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    notify(topic, alarm)
    return alarm


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """Sends to the topic without touching its policy (another stack's resource): the storage stack's topic policy
    already allows this rule by its fixed name."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self._topic.topic_arn,
            input=self._message,
            retry_policy=events.CfnRule.RetryPolicyProperty(maximum_event_age_in_seconds=24 * 3600,
                                                            maximum_retry_attempts=185),
        )


def glue_failure_notifications(scope: Construct, id: str, *, settings: Settings, topic: sns.ITopic,
                               job_names: list[str]) -> events.Rule:
    rule = events.Rule(
        scope, id,
        rule_name=settings.glue_failure_rule_name,  # fixed: the topic and key policies name this rule
        description="Analysis and clustering runs that failed, timed out or errored -> the alarm topic",
        event_pattern=events.EventPattern(
            source=["aws.glue"],
            detail_type=["Glue Job State Change"],
            detail={"jobName": job_names, "state": list(GLUE_FAILED_STATES)},
        ),
    )
    message = events.RuleTargetInput.from_text(
        f"Glue job {events.EventField.from_path('$.detail.jobName')} run "
        f"{events.EventField.from_path('$.detail.jobRunId')} ended {events.EventField.from_path('$.detail.state')}: "
        f"{events.EventField.from_path('$.detail.message')} (account {settings.account}, region {settings.region}; "
        "the next scheduled run continues where this one stopped)"
    )
    rule.add_target(_TopicTarget(topic, message))
    return rule


FIVE_MINUTES = Duration.minutes(5)

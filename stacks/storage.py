"""StorageStack: the customer-managed key, the buckets and the single DynamoDB table."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.monitoring import AlarmTopic
from stacks.settings import Settings
from stacks.shared import StorageOutputs, checkov_skip, removal_policy, secure_bucket, suppress

ORIGINALS_PREFIX = "originals/"
QUARANTINE_PREFIX = "quarantine/"
DATASET_LOG_PREFIX = "dataset/"  # stacks/shared.secure_bucket logs bucket "Dataset" under its id


class StorageStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        retain = removal_policy(settings)

        key = kms.Key(
            self, "DataKey",
            description=f"{settings.prefix}: photos, metadata, queues and logs",
            enable_key_rotation=True,
            removal_policy=retain,
        )
        self._allow_services(key, settings)

        # S3 server access logs can only be delivered to a bucket with SSE-S3 (AES256): a log target with
        # SSE-KMS silently receives nothing. The logs hold request metadata, never photo bytes.
        access_logs = s3.Bucket(
            self, "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs",
                                 expiration=Duration.days(settings.access_log_expiration_days)),
                s3.LifecycleRule(id="abort-incomplete-multipart",
                                 abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
            removal_policy=retain,
        )
        suppress(access_logs, ("AwsSolutions-S1", "This is the server access log target of the other buckets; "
                                                  "logging its own access would log the logging."))
        checkov_skip(access_logs,
                     ("CKV_AWS_18", "This is the server access log target of the other buckets; logging its own "
                                    "access would log the logging."),
                     ("CKV_AWS_21", "Access logs are written once by S3's log delivery and expire by lifecycle; "
                                    "versions would only keep expired logs longer."))

        originals = secure_bucket(
            self, "Originals", settings=settings, key=key, access_logs=access_logs,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(settings.noncurrent_version_expiration_days)),
                s3.LifecycleRule(id="expire-quarantine", prefix=QUARANTINE_PREFIX,
                                 expiration=Duration.days(settings.quarantine_expiration_days)),
            ],
            # Browsers upload straight to S3 with a presigned POST; nothing else is allowed cross-origin.
            cors=[s3.CorsRule(
                allowed_methods=[s3.HttpMethods.POST],
                allowed_origins=list(settings.browser_origins),  # + the web app's (stacks/web.py)
                allowed_headers=["*"],
                exposed_headers=["ETag", "x-amz-version-id"],
                max_age=3000,
            )],
        )
        # Same as event_bridge_enabled=True, set on the bucket itself: the L2 flag goes through a custom
        # resource (a Lambda with a managed policy and a wildcard) that only buckets imported from
        # elsewhere need.
        originals_resource: s3.CfnBucket = originals.node.default_child
        originals_resource.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True))

        derivatives = secure_bucket(self, "Derivatives", settings=settings, key=key, access_logs=access_logs)
        checkov_skip(derivatives, ("CKV_AWS_21", "Previews and thumbnails are rebuilt from the versioned originals "
                                                 "(same deterministic keys); versions would double their storage."))

        table = dynamodb.TableV2(
            self, "Table",
            partition_key=dynamodb.Attribute(name="PK", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="SK", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=settings.retain,
            time_to_live_attribute="expires_at",
            dynamo_stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            global_secondary_indexes=[dynamodb.GlobalSecondaryIndexPropsV2(
                index_name="ByTime",
                partition_key=dynamodb.Attribute(name="GSI1PK", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="GSI1SK", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )],
            removal_policy=retain,
        )

        alarms = AlarmTopic(self, "Alarms", settings=settings, key=key)

        # The ML stack's dataset bucket logs here too. Its name is CloudFormation's (`<stack>-<logical id>-<suffix>`,
        # lowercase), so this statement names it by pattern instead of a reference (which would make this first
        # stack depend on a later one); CDK's own statement would carry no source condition across stacks.
        access_logs.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowDatasetAccessLogs",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[access_logs.arn_for_objects(f"{DATASET_LOG_PREFIX}*")],
            conditions={"ArnLike": {"aws:SourceArn": settings.dataset_bucket_arn_pattern()},
                        "StringEquals": {"aws:SourceAccount": settings.account}},
        ))
        self.access_logs = access_logs
        self.outputs = StorageOutputs(key=key, originals=originals, derivatives=derivatives, table=table,
                                      alarm_topic=alarms.topic)
        CfnOutput(self, "OriginalsBucketName", value=originals.bucket_name, description="Uploaded originals")
        CfnOutput(self, "DerivativesBucketName", value=derivatives.bucket_name, description="Previews and thumbnails")
        CfnOutput(self, "TableName", value=table.table_name, description="Single table (PK/SK, GSI ByTime)")
        CfnOutput(self, "DataKeyArn", value=key.key_arn, description="Customer-managed key of all app data")
        CfnOutput(self, "AlarmTopicArn", value=alarms.topic.topic_arn,
                  description="Every alarm notifies this topic; subscribe to it (or set alarm_email)")

    def _allow_services(self, key: kms.Key, settings: Settings) -> None:
        """Key policy for the services that encrypt with the key on our behalf, each scoped to our resources."""
        # EventBridge needs the key to put upload events into the encrypted queue. The rule lives in the
        # ingest stack; its name is fixed by settings, so its ARN can be named here without a stack cycle.
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowUploadRuleToUseEncryptedQueue",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={
                "ArnEquals": {"aws:SourceArn": settings.upload_rule_arn()},
                "StringEquals": {"aws:SourceAccount": settings.account},
            },
        ))
        # The same use, scoped by what SQS puts in the encryption context (the queue's ARN) instead of by the
        # caller: AWS documents that aws:SourceArn/aws:SourceAccount are not supported in a key policy for
        # EventBridge delivering to an encrypted SNS topic; whether EventBridge-to-SQS carries them is not verified
        # here, so this statement keeps delivery (and the dead-letter queue) working either way. The ingest
        # stack's queues are named by CloudFormation after the stack: "<prefix>-ingest-<logical id>-<random>".
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowEventBridgeToIngestQueues",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:sqs:arn":
                                    f"arn:aws:sqs:{settings.region}:{settings.account}:{settings.prefix}-ingest-*"}},
        ))
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowAppLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{settings.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:aws:logs:{settings.region}:{settings.account}:log-group:"
                                    f"{settings.log_group_prefix}*"}},
        ))

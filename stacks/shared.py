"""Secure-by-default building blocks shared by the stacks, and the typed outputs they pass to each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Aws, CfnResource, Duration, Fn, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_312_REASON = (
    "The functions target Python 3.12 on arm64 on purpose: the bundled Pillow/pillow-heif/pydantic-core wheels "
    "are built and tested for cp312 aarch64; move to a newer runtime together with the build script."
)


@dataclass(frozen=True)
class StorageOutputs:
    key: kms.IKey
    originals: s3.IBucket
    derivatives: s3.IBucket
    table: dynamodb.ITableV2
    alarm_topic: sns.ITopic  # every alarm of every stack notifies it (stacks/monitoring.py)


@dataclass(frozen=True)
class AuthOutputs:
    user_pool_id: str
    user_pool_arn: str
    client_id: str
    issuer_url: str
    hosted_ui_base_url: str = ""  # https://<prefix>.auth.<region>.amazoncognito.com (the web app's sign-in)


@dataclass(frozen=True)
class SearchOutputs:
    """What a reader of the search index needs: where it is, how to sign for it, and what to grant."""
    endpoint_url: str  # https://<host> of the domain or the collection
    service: str  # SigV4 service name: "es" (domain) | "aoss" (serverless)
    alias: str
    resource_arn: str  # domain or collection ARN
    reader_actions: tuple[str, ...]
    reader_resources: tuple[str, ...]
    # domain: the function behind Custom::OpenSearchAccess (role mappings); a later stack maps its own roles
    access_function_arn: str | None = None
    collection_name: str | None = None  # serverless: a later stack adds its own data access policy


class LambdaCodeMissingError(RuntimeError):
    pass


# The packed MiniLM model's package in the Lambda build (scripts/build_lambda.py MODELS_PACKAGE): 45 MB that only
# the function embedding search queries needs; the others load faster without it.
MODELS_PACKAGE = "photo_organizer_models"


def lambda_code(settings: Settings, *, with_models: bool = False) -> lambda_.Code:
    """The packaged code directory; built by scripts/build_lambda.py, never during synth (no Docker)."""
    directory = Path(settings.lambda_code_dir)
    if not directory.is_absolute():
        directory = PROJECT_ROOT / directory
    if not (directory / "photo_organizer").is_dir() and not any(directory.glob("*.py")):
        raise LambdaCodeMissingError(
            f"Lambda code directory {directory} is missing or empty: run `python scripts/build_lambda.py` "
            "(make build-lambda) before `cdk synth`, or pass -c lambda_code_dir=<dir>."
        )
    exclude = [] if with_models else [MODELS_PACKAGE, f"{MODELS_PACKAGE}/**"]
    return lambda_.Code.from_asset(str(directory), exclude=exclude)


def removal_policy(settings: Settings) -> RemovalPolicy:
    return RemovalPolicy.RETAIN if settings.retain else RemovalPolicy.DESTROY


def stack_instance_suffix() -> str:
    """The last 12 hex digits of the stack's id (a UUID CloudFormation draws when it creates the stack), resolved at
    deploy time: a new stack after a rollback or a destroy gets a new one, a stack update keeps it."""
    return Fn.select(4, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))


def app_log_group(scope: Construct, id: str, *, settings: Settings, key: kms.IKey, name: str) -> logs.LogGroup:
    """A KMS-encrypted log group named `{log_group_prefix}{name}-{stack suffix}`.

    Not a fixed name: a retained group of a rolled-back or destroyed stack would make every later deploy fail
    ("already exists"). The prefix stays, so the key policy's condition on log-group ARNs still matches. With
    removal_policy=retain the group survives updates and deletes but not the rollback of the create that made it
    (RetainExceptOnCreate): a failed first deploy leaves nothing behind."""
    return logs.LogGroup(
        scope, id,
        log_group_name=Fn.join("", [f"{settings.log_group_prefix}{name}-", stack_instance_suffix()]),
        retention=settings.log_retention,
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if settings.retain else RemovalPolicy.DESTROY,
    )


def suppress(construct: Construct, *items: tuple[str, str] | tuple[str, str, list[str]]) -> None:
    """cdk-nag suppressions: (rule id, reason[, applies_to]) on one resource (an L2's default child)."""
    suppressions = [
        NagPackSuppression(id=item[0], reason=item[1], applies_to=item[2] if len(item) > 2 else None)
        for item in items
    ]
    NagSuppressions.add_resource_suppressions(construct, suppressions)


def checkov_skip(construct: Construct, *items: tuple[str, str]) -> None:
    """checkov findings accepted on one resource (an L2's default child), each (check id, reason), written where
    checkov reads them: the resource's Metadata.checkov.skip. tests/infrastructure/test_checkov.py runs checkov over
    the synthesized templates and holds every reason to a minimum length."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    skips = list((resource.get_metadata("checkov") or {}).get("skip", []))
    skips += [{"id": check, "comment": reason} for check, reason in items]
    resource.add_metadata("checkov", {"skip": skips})


# Decisions that hold for every function of the domain package (checkov's Lambda checks).
LAMBDA_OUTSIDE_VPC_REASON = (
    "Outside a VPC on purpose: the functions call only AWS service endpoints (S3, DynamoDB, KMS, SQS, Rekognition, "
    "OpenSearch) over TLS with SigV4 and reach nothing private; a VPC would add NAT or one endpoint per service.")
LAMBDA_ENVIRONMENT_REASON = (
    "Environment encrypted at rest with Lambda's AWS-managed key, not a CMK: it holds only resource names, ARNs and "
    "settings, never a secret (secrets are fetched from Secrets Manager by ARN; test_checkov checks the variable "
    "names), so a CMK would add a KMS call at cold start and a key-policy dependency for nothing.")
LAMBDA_CONCURRENCY_REASON = (
    "No reserved concurrency: a new account's whole pool can be 10, and reserving any fails the deploy; the load is "
    "bounded at its source instead (API throttling, the event source's batch and concurrency settings).")


def secure_bucket(scope: Construct, id: str, *, settings: Settings, key: kms.IKey, access_logs: s3.IBucket,
                  **overrides) -> s3.Bucket:
    """Private, TLS-only, SSE-KMS (bucket keys) bucket that logs its access into the log bucket."""
    lifecycle_rules = [s3.LifecycleRule(id="abort-incomplete-multipart",
                                        abort_incomplete_multipart_upload_after=Duration.days(1))]
    lifecycle_rules += overrides.pop("lifecycle_rules", [])
    return s3.Bucket(
        scope,
        id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{id.lower()}/",
        lifecycle_rules=lifecycle_rules,
        removal_policy=removal_policy(settings),
        **overrides,
    )


class EncryptedQueueWithDlq(Construct):
    """A KMS-encrypted, TLS-only queue with a KMS-encrypted, TLS-only dead-letter queue."""

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, visibility_timeout: Duration,
                 max_receive_count: int) -> None:
        super().__init__(scope, id)
        retention = Duration.days(14)
        protected = dict(
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            retention_period=retention,
        )
        self.dlq = sqs.Queue(self, "Dlq", **protected)
        suppress(self.dlq, ("AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the upload "
                                                 "events queue; its depth is alarmed on instead."))
        self.queue = sqs.Queue(
            self, "Queue",
            **protected,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
        )


class PhotoOrganizerFunction(Construct):
    """A function of the domain package: python3.12/arm64, X-Ray, own role, KMS-encrypted log group.

    The role is created here without the AWSLambdaBasicExecutionRole managed policy: the function writes
    only to its own log group, granted explicitly.
    """

    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs, handler: str,
                 log_name: str, memory_mb: int, timeout_seconds: int, environment: dict[str, str],
                 reserved_concurrency: int | None = None, description: str = "",
                 role_name: str | None = None, embeds_text: bool = False, failure_path: str) -> None:
        """failure_path: how the function is invoked and where a failed invocation ends up (why it has no DLQ of
        its own: a function DLQ receives only failed asynchronous invocations)."""
        super().__init__(scope, id)
        self.log_group = app_log_group(self, "Logs", settings=settings, key=storage.key, name=log_name)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{settings.prefix} {log_name} function", role_name=role_name)
        self.function = lambda_.Function(
            self, "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=handler,
            code=lambda_code(settings, with_models=embeds_text),
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_seconds),
            reserved_concurrent_executions=reserved_concurrency,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            description=description,
        )
        # The role's logs permissions, scoped to this log group's streams (no CreateLogGroup: it exists).
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[self.log_group.log_group_arn],
        ))
        suppress(self.function, ("AwsSolutions-L1", PYTHON_312_REASON))
        skips = [("CKV_AWS_116", f"No function DLQ: {failure_path}"), ("CKV_AWS_117", LAMBDA_OUTSIDE_VPC_REASON)]
        if environment:
            skips.append(("CKV_AWS_173", LAMBDA_ENVIRONMENT_REASON))
        if reserved_concurrency is None:
            skips.append(("CKV_AWS_115", LAMBDA_CONCURRENCY_REASON))
        checkov_skip(self.function, *skips)


def common_environment(settings: Settings, storage: StorageOutputs) -> dict[str, str]:
    """Environment read by photo_organizer.settings.Settings.from_env and by Powertools."""
    return {
        "PO_BACKEND": "aws",
        "PO_ORIGINALS_BUCKET": storage.originals.bucket_name,
        "PO_DERIVATIVES_BUCKET": storage.derivatives.bucket_name,
        "PO_TABLE_NAME": storage.table.table_name,
        "PO_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
        "PO_REJECTED_ACTION": settings.rejected_action,
        # The same prefix as the Glue jobs' --collection-prefix: the API deletes <prefix>-<owner> on consent off.
        "PO_FACE_COLLECTION_PREFIX": settings.face_collection_prefix,
        "POWERTOOLS_SERVICE_NAME": "photo-organizer",
        "POWERTOOLS_METRICS_NAMESPACE": "PhotoOrganizer",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


# Wildcards that the grants produce; each one stays inside one of our buckets, our table or our key.
_GRANT_WILDCARDS = [
    "Action::s3:GetObject*",
    "Action::s3:GetBucket*",
    "Action::s3:List*",
    "Action::s3:DeleteObject*",
    "Action::s3:Abort*",
    "Action::kms:GenerateDataKey*",
    "Action::kms:ReEncrypt*",
    "Resource::*",
    # The bucket/table ARN arrives from the storage stack as a reference (`<Originals1234ABCD.Arn>`, or with
    # weak cross-stack references a Fn::GetStackOutput naming the output for that same attribute).
    RegexAppliesTo(regex=r"/^Resource::[^/]*Originals[0-9A-F]{8}\.?Arn[^/]*\/(originals|quarantine)\/\*$/"),
    RegexAppliesTo(regex=r"/^Resource::[^/]*Derivatives[0-9A-F]{8}\.?Arn[^/]*\/\*$/"),
    RegexAppliesTo(regex=r"/^Resource::[^/]*Table[0-9A-F]{8}\.?Arn[^/]*\/index\/\*$/"),
]
GRANT_WILDCARDS_REASON = (
    "Written by CDK grants, not by hand: object ARNs under one prefix of one of our buckets (objects are "
    "named per photo, unknown at deploy time), the action groups the grants use on those objects only, the "
    "table's own indexes, KMS GenerateDataKey*/ReEncrypt* on our one key; Resource::* is only the X-Ray "
    "PutTraceSegments/PutTelemetryRecords statement of active tracing (X-Ray has no resource-level permissions)."
)


def suppress_grant_wildcards(role: iam.IRole) -> None:
    NagSuppressions.add_resource_suppressions(
        role,
        [NagPackSuppression(id="AwsSolutions-IAM5", reason=GRANT_WILDCARDS_REASON, applies_to=_GRANT_WILDCARDS)],
        apply_to_children=True,
    )

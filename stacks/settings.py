"""Deployment settings, read once from cdk.json context (or `-c key=value`) into one typed object."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any, Protocol

from aws_cdk import aws_logs as logs

MiB = 1024 * 1024

_RETENTION_BY_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


GLUE_WORKER_TYPES = frozenset({"G.025X", "G.1X", "G.2X", "G.4X", "G.8X"})


class SettingsError(ValueError):
    """A context value is missing, malformed or out of range."""


class _Context(Protocol):
    def try_get_context(self, key: str) -> Any: ...


@dataclass(frozen=True)
class Settings:
    app_name: str = "photo-organizer"
    stage: str = "dev"
    account: str = "111111111111"
    region: str = "eu-west-1"
    # uploads
    max_upload_mb: int = 50
    rejected_action: str = "delete"  # "delete" | "quarantine"
    upload_url_ttl_seconds: int = 600
    cors_allowed_origins: tuple[str, ...] = ("http://localhost:5173",)
    # api
    api_throttle_rate_limit: int = 50
    api_throttle_burst_limit: int = 100
    api_memory_mb: int = 1024
    api_timeout_seconds: int = 29  # HTTP API integrations time out at 30 s
    # ingest
    validator_memory_mb: int = 2048
    validator_timeout_seconds: int = 60
    # Off by default (0, or null in cdk.json): a new account's whole concurrency limit can be 10, and Lambda refuses
    # a reservation that leaves less than 10 unreserved. Set it to cap the validator (and guarantee it capacity).
    validator_reserved_concurrency: int = 0
    # The SQS event source's maximumConcurrency (2..1000): how many validators one queue may run at once. A burst
    # then waits in the queue instead of being throttled, which would count receives and push good uploads into
    # the DLQ. Keep it <= validator_reserved_concurrency when that is set.
    ingest_max_concurrency: int = 5
    ingest_batch_size: int = 10
    ingest_max_batching_window_seconds: int = 5
    dlq_max_receive_count: int = 5
    # storage
    noncurrent_version_expiration_days: int = 30
    quarantine_expiration_days: int = 30
    access_log_expiration_days: int = 90
    log_retention_days: int = 30
    removal_policy: str = "retain"  # "retain" | "destroy"
    # auth
    mfa: str = "OPTIONAL"  # "OPTIONAL" | "REQUIRED" | "OFF"
    self_sign_up_enabled: bool = False
    cognito_feature_plan: str = "PLUS"  # "PLUS" (threat protection enforced) | "ESSENTIALS"
    # The hosted sign-in page: https://<prefix>.auth.<region>.amazoncognito.com. Prefixes are global per region:
    # empty = "<app_name>-<stage>-<account>". Callback and logout URLs are where it sends the SPA back (exact).
    cognito_domain_prefix: str = ""
    oauth_callback_urls: tuple[str, ...] = ("http://localhost:5173/",)
    oauth_logout_urls: tuple[str, ...] = ("http://localhost:5173/",)
    # packaging
    lambda_code_dir: str = "build/lambda"
    glue_jobs_dir: str = "glue_jobs"  # holds analyze_photos/job.py (required) and cluster_faces/job.py (optional)
    # analysis (Glue 5.0 jobs)
    glue_worker_type: str = "G.1X"
    glue_number_of_workers: int = 2  # Spark jobs need >= 2 (one is the driver)
    glue_timeout_minutes: int = 180
    # The jobs' dependencies as prebuilt wheels for Glue 5.0 (scripts/build_glue_deps.py writes them and their
    # manifest.json there; `make synth` builds them first): Glue installs exactly these, from S3, at job start.
    glue_deps_dir: str = "build/glue"
    # The label model exported to ONNX (scripts/export_label_model.py, `make label-model`), with its sidecar JSON:
    # the analysis job computes each photo's image embedding (its `embedding` output) with it.
    label_model_file: str = "build/models/efficientnet_lite0.onnx"
    analysis_schedule: str = "cron(0 2 * * ? *)"  # Glue cron (UTC): nightly at 02:00
    analysis_version: int = 1
    analysis_account_tps: int = 50  # the account's Rekognition TPS quota, split across the job's tasks
    # A SageMaker text-generation endpoint (in this account and region, deployed separately) that rewords each
    # composed caption: the analyze_photos job gets --caption-endpoint and its role may invoke that endpoint only.
    # Empty (null in cdk.json, the default): no endpoint, the composed captions are kept, no SageMaker permission.
    caption_endpoint_name: str = ""
    # search
    search_engine: str = "domain"  # "domain" | "serverless"
    opensearch_version: str = "2.19"
    opensearch_instance_type: str = "t3.small.search"
    opensearch_instance_count: int = 1
    opensearch_dedicated_master_count: int = 0  # 0 | 3 | 5; production: 3
    opensearch_dedicated_master_type: str = "m7g.large.search"
    opensearch_volume_gb: int = 10
    # SEARCH only: a VECTORSEARCH collection assigns its own document ids (see _check_search). On Serverless,
    # search is keyword-only; the managed domain (the default) keeps semantic search.
    opensearch_serverless_type: str = "SEARCH"
    opensearch_serverless_standby_replicas: bool = False  # True doubles the OCU floor
    indexer_memory_mb: int = 512
    indexer_timeout_seconds: int = 60
    indexer_batch_size: int = 100
    indexer_retry_attempts: int = 5
    indexer_max_record_age_seconds: int = 86400  # the stream keeps records for 24 h anyway
    # IAM roles of operators who run `photo-organizer search reindex|reconcile|purge` against the domain: mapped to
    # the same OpenSearch writer role as the indexer (fine-grained access control refuses unmapped roles).
    search_operator_role_arns: tuple[str, ...] = ()
    # retraining (stacks/ml.py): the feedback Lambda starts the SageMaker pipeline after this many new events
    retrain_min_feedback: int = 50
    ml_processing_instance_type: str = "ml.m5.large"
    ml_training_instance_type: str = "ml.m5.large"
    ml_promotion_margin: float = 0.01  # a candidate must beat the approved model by this much (F1 points / 100)
    ml_min_held_out_examples: int = 10
    ml_min_feedback_per_owner: int = 10  # reviewed photos (tagging) / labelled pairs (faces) an owner's model needs
    ml_max_runtime_minutes: int = 60
    feedback_batch_size: int = 100
    feedback_retry_attempts: int = 5
    # operations: every alarm notifies one SNS topic; with an address, the topic emails it (confirm the first mail)
    alarm_email: str = ""
    # web (stacks/web.py): the single-page app, built by Vite into web_code_dir, served from a private bucket
    # behind CloudFront. Its public origin must be known before the stacks that name it (the Cognito client's
    # callback URLs, the API's and the upload bucket's CORS) are synthesized, since they deploy before it:
    # web_domain_name (an alias with web_certificate_arn, an ACM certificate in us-east-1), or web_origin, the
    # https://<id>.cloudfront.net origin the first deploy prints (WebUrl): set it and deploy again.
    web_code_dir: str = "build/web"
    web_domain_name: str = ""
    web_certificate_arn: str = ""
    web_origin: str = ""
    web_price_class: str = "PriceClass_100"  # PriceClass_100 | PriceClass_200 | PriceClass_All
    web_logging: bool = True  # CloudFront standard logs and the site bucket's access logs, into the web log bucket
    web_acl_arn: str = ""  # an existing WAFv2 web ACL (scope CLOUDFRONT, us-east-1); empty: no WAF

    @classmethod
    def from_context(cls, node: _Context) -> Settings:
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = node.try_get_context(spec.name)
            if isinstance(raw, str) and raw.strip().lower() == "null":  # `-c key=null`: as null in cdk.json
                raw = None
            if raw is not None:
                values[spec.name] = _coerce(spec.name, raw, spec.default)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        problems = []
        if not (re.fullmatch(r"[a-z][a-z0-9-]{1,30}", self.app_name)
                and re.fullmatch(r"[a-z][a-z0-9]{0,9}", self.stage)):
            problems.append("app_name/stage must be short lowercase names (they prefix resource and stack names)")
        if not re.fullmatch(r"\d{12}", self.account):
            problems.append(f"account must be 12 digits, got {self.account!r}")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            problems.append(f"region looks wrong: {self.region!r}")
        if self.rejected_action not in ("delete", "quarantine"):
            problems.append("rejected_action must be 'delete' or 'quarantine'")
        if self.mfa not in ("OPTIONAL", "REQUIRED", "OFF"):
            problems.append("mfa must be OPTIONAL, REQUIRED or OFF")
        if self.cognito_feature_plan not in ("PLUS", "ESSENTIALS"):
            problems.append("cognito_feature_plan must be PLUS or ESSENTIALS")
        if self.removal_policy not in ("retain", "destroy"):
            problems.append("removal_policy must be 'retain' or 'destroy'")
        if self.log_retention_days not in _RETENTION_BY_DAYS:
            problems.append(f"log_retention_days must be one of {sorted(_RETENTION_BY_DAYS)}")
        if not 1 <= self.max_upload_mb <= 5 * 1024:
            problems.append("max_upload_mb must be within 1..5120 (a single presigned POST is capped at 5 GB)")
        if not 1 <= self.ingest_batch_size <= 10_000:
            problems.append("ingest_batch_size must be within 1..10000")
        if self.ingest_batch_size > 10 and self.ingest_max_batching_window_seconds < 1:
            problems.append("ingest_batch_size above 10 needs ingest_max_batching_window_seconds >= 1 (SQS rule)")
        if not 0 <= self.ingest_max_batching_window_seconds <= 300:
            problems.append("ingest_max_batching_window_seconds must be within 0..300")
        if not 1 <= self.validator_timeout_seconds <= 900 or not 1 <= self.api_timeout_seconds <= 30:
            problems.append("function timeouts: validator 1..900 s, api 1..30 s (HTTP API integration limit)")
        if not 128 <= self.validator_memory_mb <= 10_240 or not 128 <= self.api_memory_mb <= 10_240:
            problems.append("function memory must be within 128..10240 MB")
        if self.validator_reserved_concurrency < 0:
            problems.append("validator_reserved_concurrency must be 0 (none, the default) or a positive number")
        if not 2 <= self.ingest_max_concurrency <= 1000:
            problems.append("ingest_max_concurrency must be within 2..1000 (SQS event source maximumConcurrency)")
        elif 0 < self.validator_reserved_concurrency < self.ingest_max_concurrency:
            problems.append("ingest_max_concurrency must not exceed validator_reserved_concurrency: the event source "
                            "would start more validators than may run, and the throttled batches would count "
                            "receives towards the DLQ")
        if self.dlq_max_receive_count < 1:
            problems.append("dlq_max_receive_count must be at least 1")
        if self.api_throttle_rate_limit < 1 or self.api_throttle_burst_limit < 1:
            problems.append("api throttling rate and burst must be positive")
        if not self.cors_allowed_origins or any(o == "*" or not o.startswith(("https://", "http://localhost"))
                                                for o in self.cors_allowed_origins):
            problems.append("cors_allowed_origins must list https:// origins (http://localhost allowed), never '*'")
        if self.alarm_email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.alarm_email):
            problems.append(f"alarm_email does not look like an email address: {self.alarm_email!r}")
        problems += self._check_auth() + self._check_web()
        problems += self._check_analysis() + self._check_search() + self._check_ml()
        if problems:
            raise SettingsError("invalid cdk.json context: " + "; ".join(problems))

    def _check_auth(self) -> list[str]:
        problems = []
        prefix = self.hosted_domain_prefix
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", prefix) or any(
                word in prefix for word in ("aws", "amazon", "cognito")):
            problems.append(f"cognito_domain_prefix {prefix!r}: lowercase letters, digits and hyphens, at most 63, "
                            "and never 'aws', 'amazon' or 'cognito' (Cognito's rule)")
        for name in ("oauth_callback_urls", "oauth_logout_urls"):
            urls = getattr(self, name)
            if not urls or any(not u.startswith(("https://", "http://localhost")) or "#" in u for u in urls):
                problems.append(f"{name} must list https:// URLs (http://localhost allowed), without fragments")
        return problems

    def _check_analysis(self) -> list[str]:
        problems = []
        if self.glue_worker_type not in GLUE_WORKER_TYPES:
            problems.append(f"glue_worker_type must be one of {sorted(GLUE_WORKER_TYPES)}")
        if not 2 <= self.glue_number_of_workers <= 299:
            problems.append("glue_number_of_workers must be within 2..299 (a Spark job needs a driver and a worker)")
        if not 1 <= self.glue_timeout_minutes <= 2880:
            problems.append("glue_timeout_minutes must be within 1..2880")
        if not re.fullmatch(r"cron\([^()]+\)", self.analysis_schedule) or len(self.analysis_schedule[5:-1].split()) != 6:
            problems.append("analysis_schedule must be a six-field Glue cron(...) expression")
        if self.analysis_version < 1 or self.analysis_account_tps < 1:
            problems.append("analysis_version and analysis_account_tps must be at least 1")
        # SageMaker's own name rule, lowercase only: SageMaker ARNs are known to carry names lowercased while IAM
        # matches ARNs case-sensitively; with a lowercase name the grant below matches the call either way.
        if self.caption_endpoint_name and not re.fullmatch(r"[a-z0-9](-*[a-z0-9]){0,62}", self.caption_endpoint_name):
            problems.append(f"caption_endpoint_name {self.caption_endpoint_name!r} must be a SageMaker endpoint name "
                            "in lowercase (letters, digits, hyphens; at most 63)")
        return problems

    def _check_web(self) -> list[str]:
        problems = []
        if self.web_domain_name and not re.fullmatch(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
                                                     self.web_domain_name):
            problems.append(f"web_domain_name {self.web_domain_name!r} must be a lowercase host name")
        if bool(self.web_domain_name) != bool(self.web_certificate_arn):
            problems.append("web_domain_name and web_certificate_arn go together (CloudFront serves an alias only "
                            "with its certificate)")
        if self.web_certificate_arn and not re.fullmatch(r"arn:aws:acm:us-east-1:\d{12}:certificate/[0-9a-f-]+",
                                                         self.web_certificate_arn):
            problems.append("web_certificate_arn must be an ACM certificate in us-east-1 (CloudFront's region)")
        if self.web_origin and not re.fullmatch(r"https://[a-z0-9.-]+", self.web_origin):
            problems.append(f"web_origin {self.web_origin!r} must be an https origin without a path, e.g. "
                            "https://d111111abcdef8.cloudfront.net")
        if self.web_domain_name and self.web_origin:
            problems.append("set web_domain_name or web_origin, not both")
        if self.web_price_class not in ("PriceClass_100", "PriceClass_200", "PriceClass_All"):
            problems.append("web_price_class must be PriceClass_100, PriceClass_200 or PriceClass_All")
        if self.web_acl_arn and not re.fullmatch(r"arn:aws:wafv2:us-east-1:\d{12}:global/webacl/\S+",
                                                 self.web_acl_arn):
            problems.append("web_acl_arn must be a WAFv2 web ACL of scope CLOUDFRONT (arn:aws:wafv2:us-east-1:"
                            "<account>:global/webacl/...)")
        return problems

    @property
    def web_public_origin(self) -> str:
        """The web app's https origin, when known at synth: the custom domain, or web_origin; else empty."""
        if self.web_domain_name:
            return f"https://{self.web_domain_name}"
        return self.web_origin.rstrip("/")

    @property
    def browser_origins(self) -> tuple[str, ...]:
        """Origins the API and the upload bucket answer cross-origin: cors_allowed_origins plus the web app's."""
        extra = (self.web_public_origin,) if self.web_public_origin else ()
        return tuple(dict.fromkeys(self.cors_allowed_origins + extra))

    @property
    def spa_callback_urls(self) -> tuple[str, ...]:
        """Where the hosted UI may send the SPA back: oauth_callback_urls plus the web app's root."""
        extra = (self.web_public_origin + "/",) if self.web_public_origin else ()
        return tuple(dict.fromkeys(self.oauth_callback_urls + extra))

    @property
    def spa_logout_urls(self) -> tuple[str, ...]:
        extra = (self.web_public_origin + "/",) if self.web_public_origin else ()
        return tuple(dict.fromkeys(self.oauth_logout_urls + extra))

    def _check_search(self) -> list[str]:
        problems = []
        if self.search_engine not in ("domain", "serverless"):
            problems.append("search_engine must be 'domain' or 'serverless'")
        if self.search_engine == "domain" and len(self.search_domain_name) > 28:
            problems.append(f"app_name/stage too long for the OpenSearch domain name {self.search_domain_name!r}")
        if self.search_engine == "serverless" and len(self.search_collection_name) > 28:  # policy names add 4
            problems.append(f"app_name/stage too long for the collection name {self.search_collection_name!r}")
        if not re.fullmatch(r"\d+\.\d+", self.opensearch_version):
            problems.append("opensearch_version must look like 2.19")
        if not self.opensearch_instance_type.endswith(".search") or self.opensearch_instance_count < 1:
            problems.append("opensearch_instance_type must be a *.search type and opensearch_instance_count >= 1")
        if self.opensearch_dedicated_master_count not in (0, 3, 5):
            problems.append("opensearch_dedicated_master_count must be 0, 3 or 5")
        if not 10 <= self.opensearch_volume_gb <= 16_384:
            problems.append("opensearch_volume_gb must be within 10..16384")
        if self.search_engine == "serverless" and self.opensearch_serverless_type == "VECTORSEARCH":
            # AWS: VECTORSEARCH (and TIMESERIES) collections use server-generated document ids, and
            # `_create/<id>`, `_update/<id>`, `PUT _doc/<id>` are for SEARCH collections only. The indexer writes
            # every photo under our own id with an external version, so it could neither update nor delete a
            # photo's document, nor let a newer stream record win over a late one.
            problems.append("opensearch_serverless_type VECTORSEARCH is not supported: its collections assign "
                            "their own document ids, so the indexer could not update or delete a photo's document "
                            "by id, nor order stream records by version. Use SEARCH (keyword search only), or "
                            "search_engine=domain (the default) for semantic search")
        elif self.opensearch_serverless_type not in ("SEARCH", "VECTORSEARCH"):
            problems.append("opensearch_serverless_type must be SEARCH (VECTORSEARCH is refused on Serverless)")
        bad_roles = [a for a in self.search_operator_role_arns if not re.fullmatch(r"arn:aws:iam::\d{12}:role/\S+", a)]
        if bad_roles:
            problems.append(f"search_operator_role_arns must be IAM role ARNs, got {bad_roles}")
        if not 1 <= self.indexer_batch_size <= 10_000 or not 0 <= self.indexer_retry_attempts <= 10_000:
            problems.append("indexer_batch_size must be within 1..10000 and indexer_retry_attempts within 0..10000")
        if not 60 <= self.indexer_max_record_age_seconds <= 604_800:
            problems.append("indexer_max_record_age_seconds must be within 60..604800")
        if not 1 <= self.indexer_timeout_seconds <= 900 or not 128 <= self.indexer_memory_mb <= 10_240:
            problems.append("indexer timeout 1..900 s, memory 128..10240 MB")
        return problems

    def _check_ml(self) -> list[str]:
        problems = []
        if not 1 <= self.retrain_min_feedback <= 1_000_000:
            problems.append("retrain_min_feedback must be within 1..1000000")
        for name in ("ml_processing_instance_type", "ml_training_instance_type"):
            if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", getattr(self, name)):
                problems.append(f"{name} must be a SageMaker instance type such as ml.m5.large")
        if not 0 <= self.ml_promotion_margin < 1:
            problems.append("ml_promotion_margin must be within 0..1 (a difference of F1 scores)")
        if self.ml_min_feedback_per_owner < 1:
            problems.append("ml_min_feedback_per_owner must be at least 1")
        if self.ml_min_held_out_examples < 1 or not 5 <= self.ml_max_runtime_minutes <= 24 * 60:
            problems.append("ml_min_held_out_examples must be at least 1, ml_max_runtime_minutes within 5..1440")
        if not 1 <= self.feedback_batch_size <= 10_000 or not 0 <= self.feedback_retry_attempts <= 10_000:
            problems.append("feedback_batch_size must be within 1..10000 and feedback_retry_attempts within 0..10000")
        return problems

    @property
    def retraining_pipeline_name(self) -> str:
        """Fixed and lowercase: the trigger's grant names the pipeline's ARN (SageMaker ARNs carry lowercase
        names, IAM compares case-sensitively)."""
        return f"{self.prefix}-retraining"

    def retraining_pipeline_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{self.retraining_pipeline_name}"

    @property
    def ml_stack_name(self) -> str:
        return f"{self.prefix}-ml"

    def dataset_bucket_arn_pattern(self) -> str:
        """The ML stack's dataset bucket, named by CloudFormation `<stack name>-dataset<hash>-<suffix>`."""
        return f"arn:aws:s3:::{self.ml_stack_name}-dataset*"

    def model_package_group_name(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    @property
    def prefix(self) -> str:
        """Prefix of physical names (stack names, rule names, log groups)."""
        return f"{self.app_name}-{self.stage}"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MiB

    @property
    def retain(self) -> bool:
        return self.removal_policy == "retain"

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION_BY_DAYS[self.log_retention_days]

    @property
    def log_group_prefix(self) -> str:
        """Every log group of the app lives under this name, so the key policy can be scoped to it."""
        return f"/{self.app_name}/{self.stage}/"

    @property
    def upload_rule_name(self) -> str:
        """Fixed so that the storage stack can scope its key policy to the rule without a stack cycle."""
        return f"{self.prefix}-originals-created"

    def upload_rule_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:rule/{self.upload_rule_name}"

    @property
    def hosted_domain_prefix(self) -> str:
        return self.cognito_domain_prefix or f"{self.prefix}-{self.account}"

    @property
    def alarm_topic_name(self) -> str:
        """Fixed, so the key and topic policies of the storage stack can name it and the rule below."""
        return f"{self.prefix}-alarms"

    def alarm_topic_arn(self) -> str:
        return f"arn:aws:sns:{self.region}:{self.account}:{self.alarm_topic_name}"

    @property
    def glue_failure_rule_name(self) -> str:
        return f"{self.prefix}-glue-run-failed"

    def glue_failure_rule_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:rule/{self.glue_failure_rule_name}"

    @property
    def face_collection_prefix(self) -> str:
        """Per-user Rekognition collections are named <this>-<owner>. The one source of the name: the Glue jobs'
        --collection-prefix, the functions' PO_FACE_COLLECTION_PREFIX (the API deletes the collection when a user
        withdraws consent) and every role's grant (face_collections_arn) all take it from here."""
        return f"{self.prefix}-faces"

    def face_collections_arn(self) -> str:
        """Every user's face collection, for IAM: the collections are created at run time, one per user."""
        return f"arn:aws:rekognition:{self.region}:{self.account}:collection/{self.face_collection_prefix}-*"

    def caption_endpoint_arn(self) -> str | None:
        if not self.caption_endpoint_name:
            return None
        return f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{self.caption_endpoint_name}"

    @property
    def search_domain_name(self) -> str:
        """Fixed, so the logs resource policy can name the domain's ARN without a reference to it."""
        return f"{self.prefix}-search"

    def search_domain_arn(self) -> str:
        return f"arn:aws:es:{self.region}:{self.account}:domain/{self.search_domain_name}"

    @property
    def search_collection_name(self) -> str:
        return f"{self.prefix}-photos"


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Context from cdk.json keeps its JSON type; `-c key=value` always arrives as a string."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                if raw.lower() not in ("true", "false"):
                    raise ValueError(raw)
                return raw.lower() == "true"
            return bool(raw)
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if isinstance(default, float):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if isinstance(default, tuple):
            if isinstance(raw, str):
                raw = json.loads(raw) if raw.lstrip().startswith("[") else raw.split(",")
            return tuple(str(item).strip() for item in raw if str(item).strip())
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"context value {name}={raw!r} is not a valid {type(default).__name__}") from exc

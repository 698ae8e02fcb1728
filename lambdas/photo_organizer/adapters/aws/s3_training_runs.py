"""RunArtifacts on the dataset bucket (`runs/<execution id>/...`, SSE-KMS) and ApprovedModels on SageMaker's model
registry: what the pipeline's ExportFeatures and Reapply<Kind> Lambda steps read and write.

The model data of a training job is `model.tar.gz` in the same bucket (the pipeline's output path is under the
run's prefix); only this bucket's objects are read, whatever URI an event names.

Account erasure (`forget_owner`, the feedback Lambda when the owner's erasure finished): every run file is rewritten
without the owner (feedback.erasure: snapshot and set lines, the owner's entry of model.json inside model.tar.gz, the
owner's keys in the other JSON files) and its older versions deleted. The model packages keep pointing at the same
keys (ModelDataUrl names no version), so the registry's approved models lose the owner's part with them.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import translate
from photo_organizer.adapters.aws.s3_blobs import S3_CLIENT_CONFIG
from photo_organizer.adapters.aws.s3_erasure import VersionedPrefix
from photo_organizer.errors import ValidationError
from photo_organizer.feedback.erasure import without_owner
from photo_organizer.keys import check_owner
from photo_organizer.ports.training import OwnerErasure

RUNS_PREFIX = "runs/"
NO_MODEL_MARKER = "NONE"  # an approved/<kind>/ folder with only this file: nothing approved yet (untrained baseline)
MODEL_FILE = "model.json"
MAX_MODEL_BYTES = 200 * 1024 * 1024


def run_prefix(run: str) -> str:
    """runs/<id>/ of a pipeline execution (its ARN or its id, whose last path segment is the id)."""
    run_id = run.rstrip("/").rsplit("/", 1)[-1]
    if not run_id or not all(c.isalnum() or c in "-_" for c in run_id):
        raise ValidationError(f"not a pipeline execution id: {run!r}")
    return f"{RUNS_PREFIX}{run_id}/"


class S3RunArtifacts:
    def __init__(self, bucket: str, *, kms_key_id: str | None = None, region: str | None = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self._bucket = bucket
        self._encryption = {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": kms_key_id} if kms_key_id else {})}
        self._client = LazyClient(client_factory or (lambda: boto3.client("s3", region_name=region or None,
                                                                          config=S3_CLIENT_CONFIG)))

    def write_features(self, run: str, name: str, lines: Iterable[str]) -> int:
        count, body = 0, io.StringIO()
        for text in lines:
            body.write(text.rstrip("\n") + "\n")
            count += 1
        self._call("put_object", Key=f"{run_prefix(run)}features/{name}", Body=body.getvalue().encode("utf-8"),
                   ContentType="application/x-ndjson", **self._encryption)
        return count

    def read_features(self, run: str, name: str) -> Iterator[str]:
        response = self._call("get_object", Key=f"{run_prefix(run)}features/{name}")
        for raw in response["Body"].iter_lines():
            text = raw.decode("utf-8")
            if text.strip():
                yield text

    def stage_approved(self, run: str, kind: str, model_data: str | None) -> None:
        folder = f"{run_prefix(run)}approved/{kind}/"
        if model_data is None:
            self._call("put_object", Key=folder + NO_MODEL_MARKER, Body=b"", **self._encryption)
            return
        source = self._own_key(model_data)
        self._call("copy_object", Key=folder + "model.tar.gz", CopySource={"Bucket": self._bucket, "Key": source},
                   **self._encryption)

    def model_document(self, model_data: str) -> dict[str, Any]:
        response = self._call("get_object", Key=self._own_key(model_data))
        data = response["Body"].read(MAX_MODEL_BYTES + 1)
        if len(data) > MAX_MODEL_BYTES:
            raise ValidationError("the model artefact is larger than the re-application reads")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.lstrip("./") == MODEL_FILE), None)
            if member is None:
                raise ValidationError(f"the model artefact holds no {MODEL_FILE}")
            return json.loads(tar.extractfile(member).read())

    def erase_owner(self, owner: str) -> OwnerErasure:
        check_owner(owner)
        return VersionedPrefix(self._client, self._bucket, encryption=self._encryption).strip_prefix(
            RUNS_PREFIX, lambda data, key: without_owner(data, owner, key))

    def _own_key(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or parts.netloc != self._bucket or not parts.path.lstrip("/").startswith(RUNS_PREFIX):
            raise ValidationError("model data must be a run's artefact in the dataset bucket")
        return parts.path.lstrip("/")

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client(), operation)(Bucket=self._bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"{operation} {kwargs.get('Key', '')}") from exc


class SageMakerApprovedModels:
    def __init__(self, *, region: str | None = None, client_factory: Callable[[], Any] | None = None) -> None:
        self._client = LazyClient(client_factory or (lambda: boto3.client(
            "sagemaker", region_name=region or None, config=Config(retries={"mode": "standard", "max_attempts": 3}))))

    def latest_approved(self, group: str) -> str | None:
        try:
            packages = self._client().list_model_packages(
                ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime",
                SortOrder="Descending", MaxResults=1).get("ModelPackageSummaryList", [])
            if not packages:
                return None
            package = self._client().describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"approved model of {group}") from exc
        containers = package.get("InferenceSpecification", {}).get("Containers", [])
        return containers[0].get("ModelDataUrl") if containers else None

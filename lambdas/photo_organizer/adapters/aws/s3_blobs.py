"""BlobStore on one S3 bucket (versioned in production; a bucket without versioning works too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import translate
from photo_organizer.disposition import content_disposition
from photo_organizer.errors import BlobNotFoundError, ValidationError
from photo_organizer.models import utcnow
from photo_organizer.ports.storage import PresignedPost, StoredBlob

# SigV4 everywhere (SigV2 presigned URLs are refused by new regions) and virtual-hosted URLs, which are the
# only ones that keep working for buckets created after path-style's deprecation.
S3_CLIENT_CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "virtual"},
    retries={"mode": "standard", "max_attempts": 3},
)
# A SigV4 presigned URL or POST policy cannot live longer than this.
MAX_PRESIGN_TTL = timedelta(days=7)
_DELETE_BATCH = 1000  # DeleteObjects limit


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        client_factory: Callable[[], Any] | None = None,
        region: str | None = None,
    ) -> None:
        self._bucket = bucket
        self._region = region or None
        self._client = LazyClient(client_factory or self._default_client)

    @property
    def bucket(self) -> str:
        return self._bucket

    def _default_client(self) -> Any:
        return boto3.client("s3", region_name=self._region, config=S3_CLIENT_CONFIG)

    # ---- BlobStore --------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        try:
            self._client().put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"put s3://{self._bucket}/{key}") from exc

    def get(self, key: str, *, version: str | None = None) -> StoredBlob:
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if version:
            params["VersionId"] = version
        try:
            response = self._client().get_object(**params)
            data = response["Body"].read()
        except ClientError as exc:
            # A malformed version id is "that version does not exist", not a bug of ours.
            if version and exc.response.get("Error", {}).get("Code") == "InvalidArgument":
                raise BlobNotFoundError(f"s3://{self._bucket}/{key} has no version {version!r}") from exc
            raise translate(exc, what=f"get s3://{self._bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, what=f"get s3://{self._bucket}/{key}") from exc
        version_id = response.get("VersionId")
        return StoredBlob(
            data=data,
            version=None if version_id in (None, "null") else version_id,
            content_type=response.get("ContentType"),
        )

    def exists(self, key: str) -> bool:
        try:
            self._client().head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            domain_error = translate(exc, what=f"head s3://{self._bucket}/{key}")
            if isinstance(domain_error, BlobNotFoundError):
                return False
            raise domain_error from exc
        except BotoCoreError as exc:
            raise translate(exc, what=f"head s3://{self._bucket}/{key}") from exc
        return True

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
                found += [entry["Key"] for entry in page.get("Contents", ())]
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"list s3://{self._bucket}/{prefix}") from exc
        return sorted(found)

    def delete_version(self, key: str, version: str) -> None:
        what = f"delete version s3://{self._bucket}/{key}"
        try:
            self._delete_batch([{"Key": key, "VersionId": version}], what)
        except BlobNotFoundError:
            return  # NoSuchVersion: gone already
        except ClientError as exc:
            raise translate(exc, what=what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what=what) from exc

    def delete(self, key: str) -> None:
        """Deletes every version and delete marker of exactly `key` (not of keys it is a prefix of)."""
        what = f"delete s3://{self._bucket}/{key}"
        try:
            batch: list[dict[str, str]] = []
            for version_id in self._version_ids(key):
                batch.append({"Key": key, "VersionId": version_id})
                if len(batch) == _DELETE_BATCH:
                    self._delete_batch(batch, what)
                    batch = []
            if batch:
                self._delete_batch(batch, what)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=what) from exc

    def move(self, key: str, new_key: str) -> None:
        # CopyObject handles up to 5 GB in one call; uploads are capped far below that by the POST policy.
        try:
            self._client().copy_object(
                Bucket=self._bucket,
                Key=new_key,
                CopySource={"Bucket": self._bucket, "Key": key},
                MetadataDirective="COPY",
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"copy s3://{self._bucket}/{key} to {new_key}") from exc
        self.delete(key)

    def signed_get_url(
        self, key: str, *, ttl: timedelta, version: str | None = None, download_name: str | None = None
    ) -> str:
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if version:
            params["VersionId"] = version
        if download_name:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        try:
            return self._client().generate_presigned_url(
                "get_object", Params=params, ExpiresIn=_presign_seconds(ttl)
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"presign get s3://{self._bucket}/{key}") from exc

    def presigned_post(self, key: str, *, content_type: str, max_bytes: int, ttl: timedelta) -> PresignedPost:
        if max_bytes < 1:
            raise ValidationError("max_bytes must be at least 1")
        seconds = _presign_seconds(ttl)
        # Taken before botocore stamps the policy and, like the policy's expiration, in whole seconds: so
        # expires_at is never later than the expiration S3 enforces.
        now = utcnow().replace(microsecond=0)
        try:
            # botocore adds {"bucket": ...} and {"key": key} (exact, since the key has no ${filename}).
            post = self._client().generate_presigned_post(
                Bucket=self._bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
                ExpiresIn=seconds,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"presign post s3://{self._bucket}/{key}") from exc
        return PresignedPost(
            url=post["url"], fields=dict(post["fields"]), expires_at=now + timedelta(seconds=seconds)
        )

    # ---- helpers ----------------------------------------------------------------------------------------

    def _version_ids(self, key: str) -> Iterator[str]:
        paginator = self._client().get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=key):
            for entry in (*page.get("Versions", ()), *page.get("DeleteMarkers", ())):
                if entry["Key"] == key:
                    yield entry.get("VersionId") or "null"

    def _delete_batch(self, batch: list[dict[str, str]], what: str) -> None:
        response = self._client().delete_objects(
            Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise translate(
                ClientError(
                    {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")},
                     "ResponseMetadata": response.get("ResponseMetadata", {})},
                    "DeleteObjects",
                ),
                what=what,
            )


def _presign_seconds(ttl: timedelta) -> int:
    seconds = int(ttl.total_seconds())
    if seconds <= 0 or ttl > MAX_PRESIGN_TTL:
        raise ValidationError("a presigned URL lives between 1 second and 7 days")
    return seconds


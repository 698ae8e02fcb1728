"""FeedbackDataset on the dataset bucket: `feedback/date=YYYY-MM-DD/<part>.jsonl`, SSE-KMS with the data key.

One object per partition and part (the feedback Lambda's part is the batch's first and last stream sequence
numbers): a retried batch writes the same objects with the same lines again, which replaces them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import translate
from photo_organizer.adapters.aws.s3_blobs import S3_CLIENT_CONFIG
from photo_organizer.feedback.dataset import lines_by_partition
from photo_organizer.feedback.models import FeedbackRecord

CONTENT_TYPE = "application/x-ndjson"


class S3FeedbackDataset:
    def __init__(self, bucket: str, *, kms_key_id: str | None = None, region: str | None = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self._bucket = bucket
        self._kms_key_id = kms_key_id
        self._client = LazyClient(client_factory or (lambda: boto3.client("s3", region_name=region or None,
                                                                          config=S3_CLIENT_CONFIG)))

    def append(self, records: Sequence[FeedbackRecord], *, part: str) -> None:
        if not part or "/" in part:
            raise ValueError(f"a dataset part is a plain name, got {part!r}")
        encryption: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if self._kms_key_id:
            encryption["SSEKMSKeyId"] = self._kms_key_id
        for prefix, text in lines_by_partition(records).items():
            key = f"{prefix}{part}.jsonl"
            try:
                self._client().put_object(Bucket=self._bucket, Key=key, Body=text.encode("utf-8"),
                                          ContentType=CONTENT_TYPE, **encryption)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, what=f"put feedback part {key}") from exc

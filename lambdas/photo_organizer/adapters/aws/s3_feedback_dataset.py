"""FeedbackDataset on the dataset bucket, SSE-KMS with the data key:
`feedback/owner=<owner>/date=YYYY-MM-DD/<part>.jsonl` (feedback.dataset.owner_partition).

One object per owner, partition and part (the feedback Lambda's part is the batch's first and last stream sequence
numbers): a retried batch writes the same objects with the same lines again, which replaces them unchanged.

Account erasure (`forget_owner`, run by the feedback Lambda when the owner's erasure finished):
1. the tombstone `erasures/<sha256 of owner>.json` first: from its LastModified on, `append` drops the owner's
   events created before it (stream records still on their way: another shard, a retried batch);
2. every version under `feedback/owner=<owner>/`;
3. the owner's lines out of the parts written before the owner-partitioned layout (`feedback/date=...`, several
   owners per part): rewritten, older versions deleted.
The race between an append that looked up the tombstone before step 1 and the listing of step 2 is closed by
`append` looking it up again after its writes: either that second look-up sees the tombstone (the append deletes what
it wrote), or it ran before step 1, so the write was done before step 2 listed and step 2 deletes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import translate
from photo_organizer.adapters.aws.s3_blobs import S3_CLIENT_CONFIG
from photo_organizer.adapters.aws.s3_erasure import VersionedPrefix
from photo_organizer.feedback.dataset import FEEDBACK_PREFIX, lines_by_partition, owner_partition, owner_prefix
from photo_organizer.feedback.erasure import tombstone_key, without_owner_lines
from photo_organizer.feedback.models import FeedbackRecord
from photo_organizer.keys import check_owner
from photo_organizer.ports.training import OwnerErasure

CONTENT_TYPE = "application/x-ndjson"
LEGACY_PREFIX = f"{FEEDBACK_PREFIX}date="  # parts of the date-only layout (several owners each)


class S3FeedbackDataset:
    def __init__(self, bucket: str, *, kms_key_id: str | None = None, region: str | None = None,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self._bucket = bucket
        self._encryption: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if kms_key_id:
            self._encryption["SSEKMSKeyId"] = kms_key_id
        self._client = LazyClient(client_factory or (lambda: boto3.client("s3", region_name=region or None,
                                                                          config=S3_CLIENT_CONFIG)))
        self._versions = VersionedPrefix(self._client, bucket, encryption=self._encryption)

    def append(self, records: Sequence[FeedbackRecord], *, part: str) -> None:
        if not part or "/" in part:
            raise ValueError(f"a dataset part is a plain name, got {part!r}")
        owners = {r.owner for r in records}
        erased = self.erased(owners)
        kept = [r for r in records if not _erased_event(r, erased)]
        written = self._put(kept, part)
        late = {o: at for o, at in self.erased(written).items() if erased.get(o) != at}
        if not late:
            return
        # An erasure started between the first look-up and the writes: what was written of those owners goes again.
        self._versions.delete_versions([(key, version) for owner in late for key, version in written[owner]])
        survivors = [r for r in kept if r.owner in late and not _erased_event(r, late)]
        self._put(survivors, part)  # events after the erasure (an account started anew), if any

    def forget_owner(self, owner: str) -> int:
        """Account erasure: the tombstone, then every version of the owner's lines; returns how many lines (of the
        current versions) went. Idempotent: a second run finds nothing and renews the tombstone."""
        return self.erase_owner(owner).removed

    def erase_owner(self, owner: str) -> OwnerErasure:
        check_owner(owner)
        self._call("put_object", Key=tombstone_key(owner), Body=b"{}", ContentType="application/json",
                   **self._encryption)
        outcome = self._versions.delete_prefix(owner_prefix(owner))
        legacy = self._versions.strip_prefix(LEGACY_PREFIX, lambda data, key: without_owner_lines(data, owner))
        outcome.removed += legacy.removed
        outcome.objects += legacy.objects
        outcome.versions_deleted += legacy.versions_deleted
        outcome.unreadable += legacy.unreadable
        return outcome

    def owner_lines(self, owner: str) -> int:
        """The audit: lines of the owner in any version of any part (the owner's prefix and the legacy parts)."""
        check_owner(owner)
        total = 0
        for prefix, legacy in ((owner_prefix(owner), False), (LEGACY_PREFIX, True)):
            for version in self._versions.versions(prefix):
                if version["marker"]:
                    continue
                data = self._versions.read(version["Key"], version["VersionId"])
                total += without_owner_lines(data, owner).removed if legacy else data.count(b"\n")
        return total

    def erased(self, owners: Iterable[str]) -> dict[str, datetime]:
        """owner -> when its erasure's tombstone was written, for the owners that have one."""
        found = {}
        for owner in sorted(set(owners)):
            key = tombstone_key(owner)
            listing = self._call("list_objects_v2", Prefix=key, MaxKeys=1)
            for entry in listing.get("Contents", []):
                if entry["Key"] == key:
                    found[owner] = entry["LastModified"]
        return found

    def _put(self, records: Sequence[FeedbackRecord], part: str) -> dict[str, list[tuple[str, str]]]:
        """owner -> (key, version id) of each object written."""
        written: dict[str, list[tuple[str, str]]] = {}
        owner_of = {owner_partition(r): r.owner for r in records}
        for prefix, text in lines_by_partition(records, partition_of=owner_partition).items():
            key = f"{prefix}{part}.jsonl"
            response = self._call("put_object", Key=key, Body=text.encode("utf-8"), ContentType=CONTENT_TYPE,
                                  **self._encryption)
            written.setdefault(owner_of[prefix], []).append((key, response.get("VersionId") or "null"))
        return written

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client(), operation)(Bucket=self._bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            what = {"put_object": "put feedback part"}.get(operation, operation)
            raise translate(exc, what=f"{what} {kwargs.get('Key') or kwargs.get('Prefix', '')}") from exc


def _erased_event(record: FeedbackRecord, erased: dict[str, datetime]) -> bool:
    at = erased.get(record.owner)
    return at is not None and record.created_at <= at

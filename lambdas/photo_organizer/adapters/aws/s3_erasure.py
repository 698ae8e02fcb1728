"""Taking one owner out of a versioned bucket's prefix (the dataset bucket): every version, not just the current one.

A versioned bucket keeps what an overwrite or a plain DeleteObject replaced, so erasure works on versions:
- `delete_prefix`: every version and delete marker under a key prefix that is the owner's alone (DeleteObjects with
  version ids: permanent, no marker left);
- `strip_prefix`: objects holding several owners (legacy feedback parts, run files) are read, rewritten without the
  owner (feedback.erasure) with a conditional PUT (If-Match on the ETag read: two erasures rewriting the same object
  at once never put back what the other took out; the loser reads again), and then every older version of the key
  goes, as does any version naming the owner of a key whose current one no longer does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.errors import error_code, translate
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.feedback.erasure import Stripped
from photo_organizer.ports.training import OwnerErasure

DELETE_BATCH = 1000  # DeleteObjects' limit
REWRITE_ATTEMPTS = 5  # conditional PUTs lost to a concurrent rewrite before giving up (the caller retries)
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


class VersionedPrefix:
    def __init__(self, client: Callable[[], Any], bucket: str, *, encryption: dict[str, str]) -> None:
        self._client = client
        self._bucket = bucket
        self._encryption = encryption

    def versions(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every version and delete marker under prefix (each with `Key`, `VersionId`, `IsLatest`, `marker`)."""
        kwargs: dict[str, Any] = {"Prefix": prefix}
        while True:
            page = self._call("list_object_versions", **kwargs)
            for version in page.get("Versions", []):
                yield {**version, "marker": False}
            for marker in page.get("DeleteMarkers", []):
                yield {**marker, "marker": True}
            if not page.get("IsTruncated"):
                return
            kwargs.update(KeyMarker=page.get("NextKeyMarker"), VersionIdMarker=page.get("NextVersionIdMarker"))

    def delete_prefix(self, prefix: str, *, count_lines: bool = True) -> OwnerErasure:
        found = list(self.versions(prefix))
        outcome = OwnerErasure(objects=len({v["Key"] for v in found}))
        if count_lines:  # what the owner had: the lines of the current versions
            outcome.removed = sum(self.read(v["Key"], v["VersionId"]).count(b"\n")
                                  for v in found if v["IsLatest"] and not v["marker"])
        outcome.versions_deleted = self.delete_versions([(v["Key"], v["VersionId"]) for v in found])
        return outcome

    def strip_prefix(self, prefix: str, strip: Callable[[bytes, str], Stripped],
                     *, keep: Callable[[str], bool] = lambda key: False) -> OwnerErasure:
        """strip(data, key) -> the object without the owner; `keep(key)`: keys never touched."""
        by_key: dict[str, list[dict[str, Any]]] = {}
        for version in self.versions(prefix):
            if not keep(version["Key"]):
                by_key.setdefault(version["Key"], []).append(version)
        outcome = OwnerErasure()
        doomed: list[tuple[str, str]] = []
        for key, versions in sorted(by_key.items()):
            latest = next((v for v in versions if v["IsLatest"]), None)
            result = None
            if latest is not None and not latest["marker"]:
                result = self._rewrite(key, strip, outcome)
            if result is not None:
                # Listed again: a concurrent erasure's version is history now too. What is latest now is ours or
                # one derived from ours (If-Match); an emptied key goes whole.
                doomed += [(key, v["VersionId"]) for v in self.versions(key)
                           if v["Key"] == key and (not v["IsLatest"] or not result.data)]
                outcome.objects += 1
                continue
            stale = [(key, v["VersionId"]) for v in versions if not v["IsLatest"] and not v["marker"]
                     and strip(self.read(key, v["VersionId"]), key).changed]
            doomed += stale
            outcome.objects += bool(stale)
        outcome.versions_deleted = self.delete_versions(doomed)
        return outcome

    def _rewrite(self, key: str, strip: Callable[[bytes, str], Stripped], outcome: OwnerErasure) -> Stripped | None:
        """The current version without the owner, written in its place (or the key deleted when nothing is left);
        None when the current version holds nothing of the owner."""
        for _ in range(REWRITE_ATTEMPTS):
            response = self._call("get_object", Key=key)
            etag, data = response["ETag"], response["Body"].read()
            result = strip(data, key)
            if result.unreadable and key not in outcome.unreadable:
                outcome.unreadable.append(key)
            if not result.changed:
                return None
            try:
                if result.data:
                    self._client().put_object(Bucket=self._bucket, Key=key, Body=result.data, IfMatch=etag,
                                              ContentType=response.get("ContentType") or "application/octet-stream",
                                              **self._encryption)
                # else nothing of anyone is left: the caller deletes every version of the key
            except ClientError as exc:
                if error_code(exc) in _CONFLICT_CODES:
                    continue  # another erasure rewrote it meanwhile: read its version and strip that
                raise translate(exc, what=f"rewrite {key}") from exc
            except BotoCoreError as exc:
                raise translate(exc, what=f"rewrite {key}") from exc
            outcome.removed += result.removed
            return result
        raise StorageUnavailableError(f"rewrite {key}: changed by others {REWRITE_ATTEMPTS} times in a row")

    def read(self, key: str, version_id: str | None = None) -> bytes:
        extra = {"VersionId": version_id} if version_id else {}
        return self._call("get_object", Key=key, **extra)["Body"].read()

    def delete_versions(self, versions: list[tuple[str, str]]) -> int:
        for start in range(0, len(versions), DELETE_BATCH):
            batch = versions[start:start + DELETE_BATCH]
            response = self._call("delete_objects", Delete={
                "Objects": [{"Key": k, "VersionId": v} for k, v in batch], "Quiet": True})
            errors = response.get("Errors") or []
            if errors:  # per-key failures come back in a 200: the erasure is not done
                first = errors[0]
                raise StorageUnavailableError(f"delete {first.get('Key')} version {first.get('VersionId')}: "
                                              f"{first.get('Code')} ({len(errors)} of {len(batch)} failed)")
        return len(versions)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client(), operation)(Bucket=self._bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"{operation} {kwargs.get('Key') or kwargs.get('Prefix', '')}") from exc

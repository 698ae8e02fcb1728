"""BlobStore on a local directory, for the embedded local stack.

Layout: the blob of key `k` is the file `root/k`; its content type is in the sidecar `root/k.meta.json`.
Writes go to a dot-prefixed temp file in the same directory and are renamed into place (os.replace), so a
reader never sees half a blob. Keys with an empty, `.` or `..` segment, a segment starting with `.`, a NUL,
a backslash, a leading `/` or the sidecar suffix are refused: nothing can escape root or clash with a sidecar.

One version per key: a blob's version is the first 32 hex digits of its SHA-256, so asking for a version
that was overwritten since is BlobNotFoundError (S3 would still serve the old bytes; neither ever serves
bytes other than the ones asked for).

URLs point at the local gateway, which checks them with `check_signed_get` and `post_policy.verify_post`:
- GET  {base_url}/_blobs/{area}/{key}?[version=..&][download=..&]expires=<epoch>&sig=<hex hmac>
- POST {base_url}/_blobs/{area} with S3's SigV4 POST fields (see post_policy).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from photo_organizer.adapters.local.post_policy import sign_post
from photo_organizer.adapters.local.signing import LocalSigner
from photo_organizer.errors import BlobNotFoundError, StorageFullError, UnauthorizedError, ValidationError
from photo_organizer.keys import UnexpectedKeyError
from photo_organizer.models import utcnow
from photo_organizer.ports.storage import PresignedPost, StoredBlob

META_SUFFIX = ".meta.json"
MAX_KEY_LENGTH = 1024
MAX_URL_TTL = timedelta(days=7)


@dataclass(frozen=True)
class SignedGet:
    """What a verified download URL asks for."""

    key: str
    version: str | None
    download_name: str | None


def blob_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class DiskBlobStore:
    def __init__(
        self, root: Path, *, area: str, base_url: str, signer: LocalSigner,
        write_file: Callable[[BinaryIO, bytes], object] | None = None,
    ) -> None:
        """`write_file` writes bytes into an open temporary file: the injection point for a full disk (the fault
        suite passes one that raises ENOSPC); by default the file's own write."""
        self.write_file = write_file or _write_all
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._resolved_root = self._root.resolve()
        self._area = area
        self._base_url = base_url.rstrip("/")
        self._signer = signer
        # One process serves the gateway and the ingest worker: this keeps a blob and its sidecar consistent.
        self._lock = threading.RLock()

    @property
    def area(self) -> str:
        return self._area

    @property
    def root(self) -> Path:
        return self._root

    # ---- BlobStore --------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        path = self._path(key)
        with self._lock, _full_disk_is_retryable(f"{self._area}/{key}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Both files are written in full before either is renamed into place: a full disk (or any failed
            # write) leaves neither the new blob nor a sidecar without its blob.
            blob = _write_temp(path, bytes(data), self.write_file)
            try:
                sidecar = _write_temp(
                    _meta_path(path), json.dumps({"content_type": content_type}).encode(), self.write_file
                )
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
                raise
            os.replace(blob, path)
            os.replace(sidecar, _meta_path(path))

    def get(self, key: str, *, version: str | None = None) -> StoredBlob:
        path = self._path(key)
        with self._lock:
            try:
                data = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
                raise BlobNotFoundError(f"{self._area}/{key} does not exist") from exc
            content_type = _read_content_type(path)
        current = blob_version(data)
        if version is not None and version != current:
            raise BlobNotFoundError(f"{self._area}/{key} has no version {version!r}")
        return StoredBlob(data=data, version=current, content_type=content_type)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str) -> list[str]:
        found = []
        with self._lock:
            for path in self._root.rglob("*"):
                name = path.relative_to(self._root).as_posix()
                if path.is_file() and not path.name.startswith(".") and not name.endswith(META_SUFFIX):
                    if name.startswith(prefix):
                        found.append(name)
        return sorted(found)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._lock:
            for victim in (path, _meta_path(path)):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    victim.unlink()
            self._prune_empty_dirs(path.parent)

    def delete_version(self, key: str, version: str) -> None:
        """One version per key here: removes the blob only when it is that version."""
        try:
            current = self.get(key)
        except BlobNotFoundError:
            return
        if current.version == version:
            self.delete(key)

    def move(self, key: str, new_key: str) -> None:
        source, target = self._path(key), self._path(new_key)
        if source == target:
            if not self.exists(key):
                raise BlobNotFoundError(f"{self._area}/{key} does not exist")
            return
        with self._lock:
            if not source.is_file():
                raise BlobNotFoundError(f"{self._area}/{key} does not exist")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            if _meta_path(source).exists():
                os.replace(_meta_path(source), _meta_path(target))
            else:
                with contextlib.suppress(FileNotFoundError):
                    _meta_path(target).unlink()
            self._prune_empty_dirs(source.parent)

    def signed_get_url(
        self, key: str, *, ttl: timedelta, version: str | None = None, download_name: str | None = None
    ) -> str:
        self._check_key(key)
        if ttl <= timedelta(0) or ttl > MAX_URL_TTL:
            raise ValidationError("a signed URL lives between 1 second and 7 days")
        expires = int((utcnow() + ttl).timestamp())
        params: dict[str, str] = {}
        if version:
            params["version"] = version
        if download_name:
            params["download"] = download_name
        params["expires"] = str(expires)
        params["sig"] = self._signer.sign(self._get_message(key, expires, version, download_name))
        return f"{self._base_url}/_blobs/{quote(self._area, safe='')}/{quote(key, safe='/')}?{urlencode(params)}"

    def presigned_post(self, key: str, *, content_type: str, max_bytes: int, ttl: timedelta) -> PresignedPost:
        self._check_key(key)
        if max_bytes < 1:
            raise ValidationError("max_bytes must be at least 1")
        if ttl < timedelta(seconds=1) or ttl > MAX_URL_TTL:
            raise ValidationError("an upload policy lives between 1 second and 7 days")
        now = utcnow().replace(microsecond=0)
        expires_at = now + timedelta(seconds=int(ttl.total_seconds()))
        fields = sign_post(
            area=self._area,
            key=key,
            content_type=content_type,
            max_bytes=max_bytes,
            expires_at=expires_at,
            signer=self._signer,
            now=now,
        )
        return PresignedPost(url=f"{self._base_url}/_blobs/{quote(self._area, safe='')}", fields=fields,
                             expires_at=expires_at)

    # ---- for the local gateway --------------------------------------------------------------------------

    def check_signed_get(self, key: str, params: Mapping[str, str], *, now: datetime | None = None) -> SignedGet:
        """Verifies a download URL's query (already URL-decoded); UnauthorizedError if forged or expired."""
        self._path(key)
        try:
            expires = int(params["expires"])
            signature = params["sig"]
        except (KeyError, ValueError) as exc:
            raise UnauthorizedError("the download link is incomplete") from exc
        version, download_name = params.get("version") or None, params.get("download") or None
        if not self._signer.verify(self._get_message(key, expires, version, download_name), signature):
            raise UnauthorizedError("the download link's signature does not match")
        moment = now or utcnow()
        if moment >= datetime.fromtimestamp(expires, tz=timezone.utc):
            raise UnauthorizedError("the download link has expired")
        return SignedGet(key=key, version=version, download_name=download_name)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _get_message(self, key: str, expires: int, version: str | None, download_name: str | None) -> bytes:
        # NUL cannot occur in any part (keys refuse it; the rest come from us), so the join is unambiguous.
        parts = ("GET", self._area, key, str(expires), version or "", download_name or "")
        return "\x00".join(parts).encode("utf-8")

    def _path(self, key: str) -> Path:
        path = self._root.joinpath(*self._check_key(key))
        # A symlinked directory inside root must not lead out of it either.
        if not path.resolve().is_relative_to(self._resolved_root):
            raise UnexpectedKeyError(f"blob key {key!r} leads outside the store")
        return path

    def _check_key(self, key: str) -> list[str]:
        """The key's path segments, or UnexpectedKeyError for a key that is no safe relative path. Signing a URL
        needs no more: the disk (and its symlinks) is looked at when the URL is used (`_path`), and resolving the
        path was ~40% of the signing cost, 20 signed thumbnails per search page (benchmarks/load.py search)."""
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise UnexpectedKeyError(f"blob key {key!r} is empty or too long")
        segments = key.split("/")
        if (
            "\x00" in key
            or "\\" in key
            or key.startswith("/")
            or key.endswith(META_SUFFIX)
            or any(not segment or segment.startswith(".") for segment in segments)
        ):
            raise UnexpectedKeyError(f"blob key {key!r} is not a safe relative path")
        return segments

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def _read_content_type(path: Path) -> str | None:
    try:
        return json.loads(_meta_path(path).read_text("utf-8")).get("content_type")
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def _write_all(handle: BinaryIO, data: bytes) -> None:
    handle.write(data)


def _write_temp(path: Path, data: bytes, write: Callable[[BinaryIO, bytes], object]) -> Path:
    """data in a dot-prefixed temporary file beside path (hidden from listings); removed again if writing fails."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temp, "xb") as handle:
            write(handle, data)
        return temp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


@contextlib.contextmanager
def _full_disk_is_retryable(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(f"no space left on the disk while writing {what}") from exc
        raise

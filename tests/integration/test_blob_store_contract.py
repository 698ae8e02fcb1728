"""One body per BlobStore behaviour, run against S3BlobStore (moto) and DiskBlobStore (tmp_path)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from photo_organizer.errors import BlobNotFoundError, PermanentError
from photo_organizer.models import utcnow

KEY = "originals/owner-1/photo-1"
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg bytes" * 10


def test_put_then_get_returns_bytes_type_and_a_version(blobs):
    blobs.store.put(KEY, JPEG, content_type="image/jpeg")

    stored = blobs.store.get(KEY)

    assert stored.data == JPEG
    assert stored.content_type == "image/jpeg"
    assert stored.version
    assert blobs.store.exists(KEY)


def test_get_of_a_missing_key_raises_blob_not_found(blobs):
    with pytest.raises(BlobNotFoundError):
        blobs.store.get("originals/owner-1/never-uploaded")
    assert not blobs.store.exists("originals/owner-1/never-uploaded")


def test_get_of_the_current_version_by_id_returns_it(blobs):
    blobs.store.put(KEY, JPEG, content_type="image/jpeg")
    version = blobs.store.get(KEY).version

    assert blobs.store.get(KEY, version=version).data == JPEG


def test_get_of_an_overwritten_version_never_returns_the_newer_bytes(blobs):
    blobs.store.put(KEY, b"validated bytes", content_type="image/jpeg")
    validated = blobs.store.get(KEY).version
    blobs.store.put(KEY, b"swapped in later", content_type="image/png")
    newest = blobs.store.get(KEY)

    assert newest.data == b"swapped in later" and newest.content_type == "image/png"
    assert newest.version != validated
    assert blobs.store.get(KEY, version=newest.version).data == b"swapped in later"
    if blobs.kind == "aws":  # S3 keeps every version
        assert blobs.store.get(KEY, version=validated).data == b"validated bytes"
    else:  # the local store keeps one version: the old one is gone, never substituted
        with pytest.raises(BlobNotFoundError):
            blobs.store.get(KEY, version=validated)


def test_delete_removes_every_version_and_is_idempotent(blobs):
    blobs.store.put(KEY, b"first", content_type="image/jpeg")
    blobs.store.put(KEY, b"second", content_type="image/jpeg")
    blobs.store.put(KEY + "-sibling", b"keep me", content_type="image/jpeg")
    assert blobs.list_versions(KEY)

    blobs.store.delete(KEY)
    blobs.store.delete(KEY)

    assert blobs.list_versions(KEY) == []
    assert not blobs.store.exists(KEY)
    with pytest.raises(BlobNotFoundError):
        blobs.store.get(KEY)
    assert blobs.store.get(KEY + "-sibling").data == b"keep me"  # a key sharing the prefix survives


def test_delete_of_a_missing_key_is_not_an_error(blobs):
    blobs.store.delete("originals/owner-1/never-uploaded")


def test_move_puts_the_newest_bytes_at_the_new_key_and_removes_every_old_version(blobs):
    blobs.store.put(KEY, b"old", content_type="image/jpeg")
    blobs.store.put(KEY, b"newest", content_type="image/webp")
    target = "quarantine/owner-1/photo-1"

    blobs.store.move(KEY, target)

    moved = blobs.store.get(target)
    assert moved.data == b"newest" and moved.content_type == "image/webp"
    assert not blobs.store.exists(KEY)
    assert blobs.list_versions(KEY) == []


def test_move_of_a_missing_key_raises_blob_not_found(blobs):
    with pytest.raises(BlobNotFoundError):
        blobs.store.move("originals/owner-1/never-uploaded", "quarantine/owner-1/never-uploaded")


def test_signed_get_url_names_the_key_version_and_download_name_and_is_signed(blobs):
    blobs.store.put(KEY, JPEG, content_type="image/jpeg")
    version = blobs.store.get(KEY).version

    url = blobs.store.signed_get_url(KEY, ttl=timedelta(minutes=15), version=version, download_name="Beach 1.jpg")

    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert unquote(parts.path).endswith(KEY)
    if blobs.kind == "aws":
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Signature"]
        assert query["X-Amz-Expires"] == "900"
        assert query["versionId"] == version
        assert 'filename="Beach 1.jpg"' in query["response-content-disposition"]
    else:
        assert int(query["expires"]) == pytest.approx((utcnow() + timedelta(minutes=15)).timestamp(), abs=5)
        checked = blobs.store.check_signed_get(KEY, query)
        assert (checked.version, checked.download_name) == (version, "Beach 1.jpg")


def test_local_signed_get_url_refuses_a_forged_or_expired_link(tmp_path):
    from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
    from photo_organizer.adapters.local.signing import LocalSigner
    from photo_organizer.errors import UnauthorizedError

    store = DiskBlobStore(tmp_path, area="originals", base_url="http://x", signer=LocalSigner(b"s" * 32))
    url = store.signed_get_url(KEY, ttl=timedelta(minutes=1))
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}

    with pytest.raises(UnauthorizedError):
        store.check_signed_get("originals/owner-2/photo-1", query)  # same signature, other key
    with pytest.raises(UnauthorizedError):
        store.check_signed_get(KEY, {**query, "expires": str(int(query["expires"]) + 3600)})
    with pytest.raises(UnauthorizedError):
        store.check_signed_get(KEY, query, now=utcnow() + timedelta(minutes=2))


def test_presigned_post_policy_document_pins_key_type_size_and_expiry_not_enforced_by_moto(blobs):
    # moto accepts any POST regardless of its policy, so this asserts the document S3 would enforce;
    # tests/unit/test_post_policy.py proves the local gateway's enforcement of the same document.
    ttl = timedelta(minutes=10)

    post = blobs.store.presigned_post(KEY, content_type="image/heic", max_bytes=50 * 1024 * 1024, ttl=ttl)

    fields = post.fields
    assert fields["key"] == KEY
    assert fields["Content-Type"] == "image/heic"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-signature"] and fields["x-amz-credential"] and fields["x-amz-date"]
    document = json.loads(base64.b64decode(fields["policy"]))
    conditions = document["conditions"]
    assert {"key": KEY} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    assert {"Content-Type": "image/heic"} in conditions
    assert ["content-length-range", 1, 50 * 1024 * 1024] in conditions
    assert {"bucket": "po-originals-test" if blobs.kind == "aws" else "originals"} in conditions
    expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((expiration - utcnow()) - ttl) < timedelta(seconds=5)
    assert abs(post.expires_at - expiration) <= timedelta(seconds=1)
    assert post.expires_at <= expiration
    # Every field the client must send is covered by a condition (S3 refuses uncovered fields).
    covered = {next(iter(c)).lower() for c in conditions if isinstance(c, dict)}
    assert {name.lower() for name in fields} - {"policy", "x-amz-signature"} <= covered


@pytest.mark.parametrize(
    "bad_key", ["../outside", "originals/../../etc/passwd", "/etc/passwd", "originals/a\x00b", "originals//x"]
)
def test_local_store_refuses_keys_that_could_escape_its_root(tmp_path, bad_key):
    from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
    from photo_organizer.adapters.local.signing import LocalSigner

    store = DiskBlobStore(tmp_path / "root", area="originals", base_url="http://x", signer=LocalSigner(b"s" * 32))

    with pytest.raises(PermanentError):
        store.put(bad_key, b"x", content_type="image/jpeg")
    assert not (tmp_path / "outside").exists()


def test_s3_store_also_works_on_a_bucket_without_versioning(aws_env):
    import boto3

    from photo_organizer.adapters.aws.s3_blobs import S3BlobStore

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="plain")
    store = S3BlobStore("plain", region="us-east-1")
    store.put(KEY, b"one", content_type="image/jpeg")
    assert store.get(KEY).version is None

    store.move(KEY, KEY + "-moved")
    store.delete(KEY + "-moved")

    assert not store.exists(KEY) and not store.exists(KEY + "-moved")


def test_delete_version_removes_that_version_only_and_is_idempotent(blobs):
    blobs.store.put(KEY, b"validated", content_type="image/jpeg")
    validated = blobs.store.get(KEY).version
    blobs.store.put(KEY, b"stray second upload", content_type="image/jpeg")
    stray = blobs.store.get(KEY).version

    blobs.store.delete_version(KEY, stray)
    blobs.store.delete_version(KEY, stray)
    blobs.store.delete_version(KEY, "0" * 32)  # a version that never existed

    if blobs.kind == "aws":  # S3 kept the validated version, which is current again
        assert blobs.store.get(KEY).data == b"validated" and blobs.store.get(KEY).version == validated
    else:  # one version per key: the stray one replaced the validated one, and is gone now
        assert not blobs.store.exists(KEY)


def test_keys_lists_exactly_the_keys_under_a_prefix_sorted_without_deleted_ones(blobs):
    store = blobs.store
    for key in ("originals/u-1/b", "originals/u-1/a", "originals/u-10/c", "previews/u-1/a.jpg", "originals/u-1/gone"):
        store.put(key, b"x", content_type="image/jpeg")
    store.delete("originals/u-1/gone")
    assert store.keys("originals/u-1/") == ["originals/u-1/a", "originals/u-1/b"]  # not u-10's, no sidecars
    assert store.keys("previews/") == ["previews/u-1/a.jpg"]
    assert store.keys("thumbnails/") == []

"""Both adapter families of BlobStore and MetadataStore behind one fixture each, for the contract tests.

`aws` runs the real boto3 adapters against moto's in-process mock (a versioned bucket; the table with the
exact single-table schema, GSI, TTL and stream); `local` runs the disk and SQLite adapters under tmp_path.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, owner_pk, photo_sk, table_definition
from photo_organizer.adapters.aws.s3_blobs import S3_CLIENT_CONFIG, S3BlobStore
from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
from photo_organizer.adapters.local.signing import LocalSigner
from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore

from moto_env import mocked_aws

REGION = "us-east-1"
BUCKET = "po-originals-test"
TABLE = "po-metadata-test"
LOCAL_BASE_URL = "http://127.0.0.1:8787"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mocked_aws(monkeypatch, REGION):
        yield


@dataclass
class BlobStoreUnderTest:
    kind: str
    store: Any
    list_versions: Callable[[str], list[str]]
    """Every stored version id (and delete marker) of exactly one key."""
    signer: LocalSigner | None = None


@dataclass
class MetadataStoreUnderTest:
    kind: str
    store: Any
    raw_expires_at: Callable[[str, str], int | None]
    """The stored expiry of a photo record, bypassing the adapter's TTL view."""


def _s3_blob_store() -> BlobStoreUnderTest:
    s3 = boto3.client("s3", region_name=REGION, config=S3_CLIENT_CONFIG)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def list_versions(key: str) -> list[str]:
        response = s3.list_object_versions(Bucket=BUCKET, Prefix=key)
        entries = [*response.get("Versions", []), *response.get("DeleteMarkers", [])]
        return [entry["VersionId"] for entry in entries if entry["Key"] == key]

    return BlobStoreUnderTest("aws", S3BlobStore(BUCKET, region=REGION), list_versions)


def _disk_blob_store(root: Path) -> BlobStoreUnderTest:
    signer = LocalSigner(b"k" * 32)
    store = DiskBlobStore(root / "blobs", area="originals", base_url=LOCAL_BASE_URL, signer=signer)

    def list_versions(key: str) -> list[str]:
        return [store.get(key).version] if store.exists(key) else []

    return BlobStoreUnderTest("local", store, list_versions, signer)


@pytest.fixture(params=["local", "aws"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStoreUnderTest:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        return _s3_blob_store()
    return _disk_blob_store(tmp_path)


def _dynamodb_metadata_store() -> MetadataStoreUnderTest:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_definition(TABLE))
    dynamodb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )

    def raw_expires_at(owner: str, photo_id: str) -> int | None:
        item = dynamodb.get_item(
            TableName=TABLE, Key={"PK": {"S": owner_pk(owner)}, "SK": {"S": photo_sk(photo_id)}}
        ).get("Item")
        return int(item["expires_at"]["N"]) if item and "expires_at" in item else None

    return MetadataStoreUnderTest("aws", DynamoDbMetadataStore(TABLE), raw_expires_at)


def _sqlite_metadata_store(root: Path) -> MetadataStoreUnderTest:
    store = SqliteMetadataStore(root / "metadata.sqlite3")

    def raw_expires_at(owner: str, photo_id: str) -> int | None:
        with contextlib.closing(sqlite3.connect(root / "metadata.sqlite3")) as db:
            row = db.execute(
                "SELECT expires_at FROM photos WHERE owner = ? AND photo_id = ?", (owner, photo_id)
            ).fetchone()
        return row[0] if row else None

    return MetadataStoreUnderTest("local", store, raw_expires_at)


@pytest.fixture(params=["local", "aws"])
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStoreUnderTest]:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        yield _dynamodb_metadata_store()
        return
    under_test = _sqlite_metadata_store(tmp_path)
    yield under_test
    under_test.store.close()

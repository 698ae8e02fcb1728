"""What moto cannot make happen (throttling, 5xx, dropped connections): replay the real error shapes through
botocore's Stubber and check each becomes the domain error the services rely on."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
from photo_organizer.adapters.aws.s3_blobs import S3_CLIENT_CONFIG, S3BlobStore
from photo_organizer.errors import (
    BlobNotFoundError,
    ConfigurationError,
    PermanentError,
    RetryableError,
    StorageUnavailableError,
)

KEY = "originals/alice/p1"


@pytest.fixture
def s3(aws_env):
    client = boto3.client("s3", region_name="us-east-1", config=S3_CLIENT_CONFIG)
    with Stubber(client) as stubber:
        yield client, stubber, S3BlobStore("bucket", client_factory=lambda: client)


@pytest.fixture
def dynamodb(aws_env):
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber, DynamoDbMetadataStore("table", client_factory=lambda: client)


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("SlowDown", 503, StorageUnavailableError),
        ("ServiceUnavailable", 503, StorageUnavailableError),
        ("InternalError", 500, StorageUnavailableError),
        ("NoSuchKey", 404, BlobNotFoundError),
        ("NoSuchVersion", 404, BlobNotFoundError),
        ("NoSuchBucket", 404, ConfigurationError),
        ("AccessDenied", 403, ConfigurationError),
    ],
)
def test_s3_get_errors_become_domain_errors(s3, code, status, expected):
    _, stubber, store = s3
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=status,
                             expected_params={"Bucket": "bucket", "Key": KEY})

    with pytest.raises(expected):
        store.get(KEY)


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://bucket.s3.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://bucket.s3.amazonaws.com"),
    ],
)
def test_s3_connection_failures_are_retryable(s3, monkeypatch, error):
    client, _, store = s3

    def fail(**_kwargs):
        raise error

    monkeypatch.setattr(client, "put_object", fail)
    with pytest.raises(StorageUnavailableError):
        store.put(KEY, b"x", content_type="image/jpeg")


def test_s3_delete_sends_every_version_and_marker_of_exactly_the_key(s3):
    _, stubber, store = s3
    stubber.add_response(
        "list_object_versions",
        {
            "Versions": [{"Key": KEY, "VersionId": "v1"}, {"Key": KEY + "-other", "VersionId": "v9"},
                         {"Key": KEY, "VersionId": "v2"}],
            "DeleteMarkers": [{"Key": KEY, "VersionId": "m1"}],
            "IsTruncated": False,
        },
        {"Bucket": "bucket", "Prefix": KEY},
    )
    stubber.add_response(
        "delete_objects",
        {"Deleted": []},
        {"Bucket": "bucket", "Delete": {"Objects": [{"Key": KEY, "VersionId": v} for v in ("v1", "v2", "m1")],
                                        "Quiet": True}},
    )

    store.delete(KEY)

    stubber.assert_no_pending_responses()


def test_s3_delete_reports_a_partial_failure(s3):
    _, stubber, store = s3
    stubber.add_response("list_object_versions", {"Versions": [{"Key": KEY, "VersionId": "v1"}], "IsTruncated": False})
    stubber.add_response("delete_objects", {"Errors": [{"Key": KEY, "VersionId": "v1", "Code": "InternalError",
                                                        "Message": "We encountered an internal error."}]})

    with pytest.raises(StorageUnavailableError):
        store.delete(KEY)


def test_presign_ttl_beyond_sigv4s_seven_days_is_refused(s3):
    _, _, store = s3
    with pytest.raises(PermanentError):
        store.signed_get_url(KEY, ttl=timedelta(days=8))


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("ProvisionedThroughputExceededException", 400, StorageUnavailableError),
        ("ThrottlingException", 400, StorageUnavailableError),
        ("RequestLimitExceeded", 400, StorageUnavailableError),
        ("InternalServerError", 500, StorageUnavailableError),
        ("ServiceUnavailable", 503, StorageUnavailableError),
        ("ResourceNotFoundException", 400, ConfigurationError),
        ("ValidationException", 400, PermanentError),
    ],
)
def test_dynamodb_errors_become_domain_errors(dynamodb, code, status, expected):
    _, stubber, store = dynamodb
    stubber.add_client_error("get_item", service_error_code=code, http_status_code=status)

    with pytest.raises(expected) as caught:
        store.get_photo("alice", "p1")

    assert isinstance(caught.value, RetryableError) == (expected is StorageUnavailableError)

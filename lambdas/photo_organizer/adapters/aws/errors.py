"""botocore errors -> the domain's exception tree. Only the AWS adapters import this (and boto3)."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from photo_organizer.errors import (
    BlobNotFoundError,
    ConfigurationError,
    ConflictError,
    PermanentError,
    PhotoOrganizerError,
    StorageUnavailableError,
)

# Codes that mean "try again later", from the services' error references (S3, DynamoDB, Rekognition; Cognito's
# TooManyRequestsException; the query-protocol services' Throttling).
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "TransactionInProgressException",
        "TransactionConflictException",
        "LimitExceededException",
        "TooManyRequestsException",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})
CONFIGURATION_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchBucket",
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        # The table's or queue's KMS key refused (DynamoDB, SQS): nothing retries into a working key policy.
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSNotFoundException",
        "KMSInvalidStateException",
        "KMS.AccessDeniedException",
        "KMS.DisabledException",
    }
)
CONNECTION_ERRORS = (EndpointConnectionError, ReadTimeoutError, ConnectTimeoutError, ConnectionClosedError)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def translate(exc: Exception, *, what: str) -> PhotoOrganizerError:
    """The domain error to raise `from exc`. ConditionalCheckFailed is a ConflictError; the callers that expect
    it catch ClientError themselves before calling this."""
    if isinstance(exc, CONNECTION_ERRORS):
        return StorageUnavailableError(f"{what}: {exc}")
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        message = f"{what}: {code or status}: {exc.response.get('Error', {}).get('Message', '')}"
        if code in RETRYABLE_CODES or status >= 500:
            return StorageUnavailableError(message)
        if code in NOT_FOUND_CODES or (status == 404 and code not in CONFIGURATION_CODES):
            return BlobNotFoundError(message)
        if code == "ConditionalCheckFailedException":
            return ConflictError(message)
        if code in CONFIGURATION_CODES:
            return ConfigurationError(message)
        return PermanentError(message)
    if isinstance(exc, BotoCoreError):
        return PermanentError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc!r}")

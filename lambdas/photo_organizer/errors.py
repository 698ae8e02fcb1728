"""One exception tree for the whole domain.

Retryable errors propagate so that SQS, Glue or the client retries; permanent errors are recorded (a photo's
status and reason) or answered with a 4xx, and never retried forever.
"""

from __future__ import annotations

from enum import StrEnum


class PhotoOrganizerError(Exception):
    """Base of every error this package raises on purpose."""


class RetryableError(PhotoOrganizerError):
    """Throttling, time-outs, 5xx from a dependency: trying again later may succeed."""


class PermanentError(PhotoOrganizerError):
    """Bad input, not found, forbidden: trying again gives the same answer."""


class StorageUnavailableError(RetryableError):
    """A blob or metadata store did not answer or throttled us."""


class StorageFullError(StorageUnavailableError):
    """The local disk (or the SQLite database on it) is full. Nothing was half-written; the write succeeds once
    space is freed, so it is retried like any outage (the event stays queued)."""


class AnalysisThrottledError(RetryableError):
    """The image-analysis service throttled us, failed on its side (5xx) or did not answer in time. Back off and
    call again; when the retries run out the photo records `code` and waits for the next run."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class AnalysisRefusedError(PermanentError):
    """The image-analysis service refused this image (format, size, unreadable object, bad parameter): the same
    preview gets the same answer, so the photo records `code` as its failure reason and is not retried."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class NotFoundError(PermanentError):
    """The thing does not exist, or belongs to someone else (we never tell which)."""


class BlobNotFoundError(NotFoundError):
    pass


class PhotoNotFoundError(NotFoundError):
    pass


class ConflictError(PermanentError):
    """A conditional write lost: the record is no longer in the state the caller expected."""


class AccountErasingError(ConflictError):
    """The account is being erased: nothing new is written for it until the erasure finishes (409)."""


class FeedbackConflictError(ConflictError):
    """Feedback that cannot be done; `code` is what the client sees (409): `undo_refused` (an undo is never
    undone), `already_undone`, or `idempotency_key_reused` (the key named another correction)."""

    UNDO_REFUSED = "undo_refused"
    ALREADY_UNDONE = "already_undone"
    KEY_REUSED = "idempotency_key_reused"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ValidationError(PermanentError):
    """A request that breaks the API's rules; the message is safe to show to the caller."""


class UnauthorizedError(PermanentError):
    """No, expired or forged credentials."""


class ConfigurationError(PermanentError):
    """A setting is missing or contradicts another one."""


class LabelModelUnavailableError(ConfigurationError):
    """The exported label model (with its `embedding` output) is not where the job was told to find it."""


class RejectionReason(StrEnum):
    """Why an uploaded file was refused; the value is the code users and clients see."""

    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    CORRUPT_IMAGE = "corrupt_image"
    TOO_MANY_SCANS = "too_many_scans"


REJECTION_MESSAGES: dict[RejectionReason, str] = {
    RejectionReason.EMPTY_FILE: "The file is empty.",
    RejectionReason.FILE_TOO_LARGE: "The file is larger than the upload limit.",
    RejectionReason.UNSUPPORTED_FORMAT: "The file is not a JPEG, PNG, WebP or HEIC/HEIF image.",
    RejectionReason.TOO_MANY_PIXELS: "The image has more pixels than the limit allows.",
    RejectionReason.CORRUPT_IMAGE: "The image is truncated or corrupt and cannot be decoded.",
    RejectionReason.TOO_MANY_SCANS: "The JPEG is split into more progressive scans than the limit allows.",
}


class InvalidImageError(PermanentError):
    """An uploaded file that is not an image we accept; carries the user-facing reason code."""

    def __init__(self, reason: RejectionReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail

    @property
    def message(self) -> str:
        return REJECTION_MESSAGES[self.reason]


class UploadPolicyCode(StrEnum):
    """Why the local gateway refused a browser POST upload; the value is the code the client sees."""

    MISSING_FIELD = "missing_field"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    KEY_MISMATCH = "key_mismatch"
    CONTENT_TYPE_MISMATCH = "content_type_mismatch"
    SIZE_OUT_OF_RANGE = "size_out_of_range"
    BUCKET_MISMATCH = "bucket_mismatch"
    MALFORMED_POLICY = "malformed_policy"
    UNEXPECTED_FIELD = "unexpected_field"
    ALREADY_USED = "already_used"


class UploadPolicyError(PermanentError):
    """A POST upload that its signed policy does not allow (S3 answers these with 403 AccessDenied)."""

    def __init__(self, code: UploadPolicyCode | str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = UploadPolicyCode(code)
        self.message = message


class TrainingFailedError(PermanentError):
    """A training, evaluation or re-application run failed: the approved model stays as it was."""


class NotEnoughFeedbackError(PermanentError):
    """Too little feedback to train or to judge a candidate: the run is skipped with this reason."""

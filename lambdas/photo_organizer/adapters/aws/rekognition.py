"""Analyzer on Amazon Rekognition, plus the per-user face collection it indexes into.

Image source (one design): with `previews_bucket` set, every call names the preview object
(`{"S3Object": {"Bucket": previews_bucket, "Name": key}}`, key = `PhotoKeys.preview` of the plan's owner and
photo, or the `preview_key` keyword) and the bytes argument is ignored: no upload of the image through the API
(5 MB `Bytes` limit, 15 MB from S3) and the original is never sent. With `previews_bucket=None` (local runs,
tests) the bytes go as `{"Bytes": ...}`.

Idempotency of IndexFaces: indexing the same photo twice stores its faces twice. Checking first (ListFaces or
SearchFacesByImage) would cost a call per photo, so the job indexes only photos whose analysis_version is older
than the current one, and before it re-indexes such a photo it calls `delete_faces_of_photo`.

Retries: botocore's own retries are off (total_max_attempts=1); each call is retried here with jittered back-off, and
every attempt first passes `throttle(call)` (the job's token bucket), so a retry spends quota like any call.
A throttled DetectText is retried alone, never the calls before it.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import CONNECTION_ERRORS, error_code, http_status, translate
from photo_organizer.analysis.models import AnalysisPlan, AnalysisResult, ApiCall
from photo_organizer.adapters.aws.rekognition_shapes import Response, result_from_responses
from photo_organizer.analysis.throttling import BackoffStats, call_with_backoff
from photo_organizer.errors import (
    AnalysisRefusedError,
    AnalysisThrottledError,
    ConfigurationError,
    ConflictError,
    PhotoOrganizerError,
    RetryableError,
    ValidationError,
)
from photo_organizer.keys import PhotoKeys
from photo_organizer.models import utcnow
from photo_organizer.people.models import SimilarityEdge

# total_max_attempts=1: botocore's `max_attempts` counts retries, so it would still retry once, unseen by the
# token bucket and the throttle counter.
REKOGNITION_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30
)

# From the Rekognition error reference: "try again later" versus "this image will never work".
THROTTLED_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        # Documented for too many concurrent video jobs; it clears by itself, so waiting is the right answer.
        "LimitExceededException",
    }
)
REFUSED_CODES = frozenset(
    {"InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException", "InvalidParameterException"}
)

_COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]+$")
_EXTERNAL_IMAGE_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
_MAX_COLLECTION_ID = 255
_PAGE = 4096  # ListFaces MaxResults and DeleteFaces FaceIds both stop at 4096

# The order the planned calls are made in (labels first: they are the ones a retry-less failure should keep).
CALL_ORDER = (ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS, ApiCall.INDEX_FACES, ApiCall.DETECT_TEXT)


class _ResourceMissing(ConfigurationError):
    """ResourceNotFoundException: for collection calls, the user's collection does not exist (yet, or any more)."""


class _ResourceExists(ConflictError):
    """ResourceAlreadyExistsException from CreateCollection."""


def translate_rekognition_error(exc: Exception, *, what: str) -> PhotoOrganizerError:
    if isinstance(exc, CONNECTION_ERRORS):
        return AnalysisThrottledError(type(exc).__name__, f"{what}: {exc}")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        detail = f"{what}: {exc.response.get('Error', {}).get('Message', '')}"
        if code in THROTTLED_CODES or http_status(exc) >= 500:
            return AnalysisThrottledError(code or str(http_status(exc)), detail)
        if code in REFUSED_CODES:
            return AnalysisRefusedError(code, detail)
        if code == "ResourceNotFoundException":
            return _ResourceMissing(f"{code}: {detail}")
        if code == "ResourceAlreadyExistsException":
            return _ResourceExists(f"{code}: {detail}")
    return translate(exc, what=what)


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, RetryableError)


class RekognitionAnalyzer:
    def __init__(
        self,
        *,
        previews_bucket: str | None,
        collection_prefix: str,  # no default: the deploy's one prefix, so every caller names the same collections
        client_factory: Callable[[], Any] | None = None,
        region: str | None = None,
        min_label_confidence: float = 55,
        max_labels: int = 50,
        max_faces_per_photo: int = 15,
        image_properties: bool = False,
        throttle: Callable[[ApiCall], None] | None = None,
        max_attempts: int = 6,
        backoff_base_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        stats: BackoffStats | None = None,
    ) -> None:
        # The IAM policy grants collection/<prefix>-*: a prefix that needs sanitising would not match it.
        if not _COLLECTION_ID.fullmatch(collection_prefix) or len(collection_prefix) > 64:
            raise ConfigurationError(f"collection prefix {collection_prefix!r} must match [a-zA-Z0-9_.-]{{1,64}}")
        if not 1 <= max_faces_per_photo <= 4096 or max_labels < 1 or not 0 <= min_label_confidence <= 100:
            raise ConfigurationError("max_faces_per_photo 1..4096, max_labels >= 1, min_label_confidence 0..100")
        self._bucket = previews_bucket or None
        self._prefix = collection_prefix
        self._region = region
        self._client = LazyClient(client_factory or self._default_client)
        self._min_label_confidence = float(min_label_confidence)
        self._max_labels = max_labels
        self._max_faces = max_faces_per_photo
        # IMAGE_PROPERTIES (dominant colours) is billed as a separate feature: off unless asked for.
        self._features = ["GENERAL_LABELS", "IMAGE_PROPERTIES"] if image_properties else ["GENERAL_LABELS"]
        self._throttle = throttle
        self._max_attempts, self._backoff_base = max_attempts, backoff_base_s
        self._sleep, self._rng = sleep, rng
        self.stats = stats if stats is not None else BackoffStats()  # one analyzer per worker thread: not locked

    def _default_client(self) -> Any:
        return boto3.client("rekognition", region_name=self._region, config=REKOGNITION_CLIENT_CONFIG)

    # ---- Analyzer ---------------------------------------------------------------------------------------

    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan, *, preview_key: str | None = None) -> AnalysisResult:
        image = self._image(preview_jpeg, plan, preview_key)
        responses: dict[ApiCall, Response] = {}
        for call in CALL_ORDER:
            if not plan.includes(call):
                continue
            if call is ApiCall.DETECT_LABELS:
                responses[call] = self._invoke(
                    call, "detect_labels", Image=image, MaxLabels=self._max_labels,
                    MinConfidence=self._min_label_confidence, Features=self._features,
                )
            elif call is ApiCall.DETECT_MODERATION_LABELS:
                responses[call] = self._invoke(call, "detect_moderation_labels", Image=image)
            elif call is ApiCall.INDEX_FACES:
                responses[call] = self._index_faces(image, plan)
            else:
                responses[call] = self._invoke(call, "detect_text", Image=image)
        return result_from_responses(
            photo_id=plan.photo_id, analysis_version=plan.analysis_version, responses=responses, analysed_at=utcnow()
        )

    def _image(self, preview_jpeg: bytes, plan: AnalysisPlan, preview_key: str | None) -> dict[str, Any]:
        if self._bucket:
            key = preview_key or PhotoKeys.for_photo(plan.owner, plan.photo_id).preview
            return {"S3Object": {"Bucket": self._bucket, "Name": key}}
        if not preview_jpeg:
            raise ValidationError("no previews bucket configured and no preview bytes given")
        return {"Bytes": preview_jpeg}

    def _index_faces(self, image: dict[str, Any], plan: AnalysisPlan) -> Response:
        if not _EXTERNAL_IMAGE_ID.fullmatch(plan.photo_id):
            raise ValidationError(f"photo id {plan.photo_id!r} cannot be a Rekognition ExternalImageId")
        collection = self.collection_id(plan.owner)
        params = dict(
            CollectionId=collection, Image=image, ExternalImageId=plan.photo_id, DetectionAttributes=["DEFAULT"],
            MaxFaces=self._max_faces, QualityFilter="AUTO",
        )
        try:
            return self._invoke(ApiCall.INDEX_FACES, "index_faces", **params)
        except _ResourceMissing:
            # The user's first indexed photo (or first since consent was switched back on).
            self._create_collection(collection)
            return self._invoke(ApiCall.INDEX_FACES, "index_faces", **params)

    # ---- the user's face collection --------------------------------------------------------------------

    def collection_id(self, owner: str) -> str:
        """`{prefix}-{owner}`; an owner with characters Rekognition refuses (or too long) is replaced and
        suffixed with a digest of the real owner, so two owners never share a collection."""
        if not owner:
            raise ValidationError("owner is required")
        raw = f"{self._prefix}-{owner}"
        safe = re.sub(r"[^a-zA-Z0-9_.\-]", "_", raw)
        if safe != raw or len(safe) > _MAX_COLLECTION_ID:
            digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
            safe = f"{safe[: _MAX_COLLECTION_ID - len(digest) - 1]}-{digest}"
        return safe

    def faces_by_photo(self, owner: str) -> dict[str, list[str]]:
        """photo id (ExternalImageId) -> the FaceIds indexed from it, in one ListFaces walk of the owner's
        collection (4096 faces a page); {} when the collection does not exist. Lets a caller that re-indexes many
        photos of one owner find their faces once instead of walking the collection per photo."""
        found: dict[str, list[str]] = {}
        try:
            for face in self._faces(self.collection_id(owner)):
                if face.get("ExternalImageId") and face.get("FaceId"):
                    found.setdefault(face["ExternalImageId"], []).append(face["FaceId"])
        except _ResourceMissing:
            return {}
        return found

    def delete_faces_of_photo(self, owner: str, photo_id: str, *, face_ids: Sequence[str] | None = None) -> int:
        """Removes every face indexed from this photo (before re-indexing it); returns how many were deleted.
        ListFaces cannot filter by ExternalImageId, so without `face_ids` (the photo's entry of faces_by_photo)
        this pages through the whole collection."""
        collection = self.collection_id(owner)
        if face_ids is not None:
            face_ids = list(face_ids)
        else:
            try:
                face_ids = [
                    face["FaceId"] for face in self._faces(collection) if face.get("ExternalImageId") == photo_id
                ]
            except _ResourceMissing:
                return 0
        deleted = 0
        for start in range(0, len(face_ids), _PAGE):
            try:
                response = self._invoke(
                    None, "delete_faces", CollectionId=collection, FaceIds=face_ids[start : start + _PAGE]
                )
            except _ResourceMissing:
                return deleted
            deleted += len(response.get("DeletedFaces") or ())
        return deleted

    def delete_collection(self, owner: str) -> bool:
        """Face processing switched off: every face of the user goes with the collection. False when there was
        none (already deleted, or never created): the call is safe to repeat."""
        try:
            self._invoke(None, "delete_collection", CollectionId=self.collection_id(owner))
        except _ResourceMissing:
            return False
        return True

    def search_faces(
        self, owner: str, face_id: str, *, threshold: float = 80.0, max_faces: int = 100
    ) -> list[SimilarityEdge]:
        """Faces of the same user that look like face_id, as similarity edges (0..1) for clustering."""
        try:
            response = self._invoke(
                None, "search_faces", CollectionId=self.collection_id(owner), FaceId=face_id,
                FaceMatchThreshold=float(threshold), MaxFaces=max_faces,
            )
        except _ResourceMissing:
            return []
        edges = []
        for match in response.get("FaceMatches") or ():
            other = (match.get("Face") or {}).get("FaceId")
            if other and other != face_id and match.get("Similarity") is not None:
                edges.append(SimilarityEdge.of(face_id, other, min(1.0, max(0.0, float(match["Similarity"]) / 100))))
        return edges

    def _faces(self, collection: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"CollectionId": collection, "MaxResults": _PAGE}
            if token:
                params["NextToken"] = token
            page = self._invoke(None, "list_faces", **params)
            yield from page.get("Faces") or ()
            token = page.get("NextToken")
            if not token:
                return

    def _create_collection(self, collection: str) -> None:
        try:
            self._invoke(None, "create_collection", CollectionId=collection)
        except _ResourceExists:
            pass  # another worker indexing the same user's photos created it first

    # ---- one call -------------------------------------------------------------------------------------------

    def _invoke(self, call: ApiCall | None, operation: str, **params: Any) -> Response:
        """One API call with back-off. `call` names the paid image API for the throttle; collection management
        and search (their own, separate quotas) pass None and are only retried."""
        what = f"rekognition {operation}"

        def attempt() -> Response:
            if call is not None and self._throttle is not None:
                self._throttle(call)
            try:
                return getattr(self._client(), operation)(**params)
            except (ClientError, BotoCoreError) as exc:
                raise translate_rekognition_error(exc, what=what) from exc

        return call_with_backoff(
            attempt, retryable=_retryable, max_attempts=self._max_attempts, base=self._backoff_base,
            rng=self._rng, sleep=self._sleep, stats=self.stats,
        ).value

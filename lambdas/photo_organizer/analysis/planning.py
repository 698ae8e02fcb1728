"""What needs analysis, and which paid calls each photo needs."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from photo_organizer.analysis.models import ApiCall, Label
from photo_organizer.errors import ConfigurationError
from photo_organizer.models import Photo, PhotoStatus


@dataclass(frozen=True)
class PhotoRecord:
    """The job's view of one photo row: just what planning and dedupe need."""

    owner: str
    photo_id: str  # time-ordered (keys.new_photo_id), so sorting by id is upload order
    status: PhotoStatus
    sha256: str | None = None
    phash: str | None = None
    analysis_version: int = 0  # 0: never analysed

    @classmethod
    def from_photo(cls, photo: Photo, *, analysis_version: int = 0) -> PhotoRecord:
        meta = photo.metadata
        return cls(
            owner=photo.owner,
            photo_id=photo.photo_id,
            status=photo.status,
            sha256=meta.sha256 if meta else None,
            phash=meta.phash if meta else None,
            analysis_version=analysis_version,
        )


# Labels (or ancestors) that say a photo holds readable text; only these photos pay for DetectText.
DEFAULT_TEXT_TRIGGER_LABELS = frozenset(
    {"text", "document", "page", "poster", "sign", "screenshot", "receipt", "menu", "book", "letter",
     "handwriting", "label", "paper"}
)
# Rekognition's label category for the labels above; check against the published label list when it changes.
DEFAULT_TEXT_TRIGGER_CATEGORIES = frozenset({"text and documents"})
# Labels that say a face may be present. IndexFaces on a photo without a face is still billed, so it waits for
# DetectLabels; the threshold is low because a missed face costs more (a person never found) than a wasted call.
DEFAULT_FACE_TRIGGER_LABELS = frozenset(
    {"person", "human", "people", "face", "head", "portrait", "selfie", "baby", "child", "kid", "man", "woman",
     "boy", "girl", "crowd", "adult"}
)
# Labels (or ancestors) that say a photo may hold what DetectModerationLabels flags: a body (every nudity and
# swimwear category needs one), weapons and blood (violence, visually disturbing), drugs, tobacco, alcohol,
# gambling, symbols (hate symbols). A landscape, a meal or a pet pays for no moderation call: the saving is
# 35-45% of the moderation bill on a family library, for the risk that DetectLabels misses the one thing that
# makes a photo sensitive. Operators who want moderation everywhere set moderation_trigger_labels to None.
DEFAULT_MODERATION_TRIGGER_LABELS = DEFAULT_FACE_TRIGGER_LABELS | frozenset(
    {"body part", "skin", "torso", "chest", "back", "abdomen", "belly", "navel", "buttocks", "hip", "thigh",
     "leg", "shoulder", "tattoo", "swimwear", "underwear", "lingerie", "bikini", "bra",
     "weapon", "gun", "firearm", "rifle", "handgun", "knife", "blade", "sword", "blood", "wound", "injury",
     "corpse", "skeleton", "explosion", "accident", "wreck", "cigarette", "cigar", "smoking", "tobacco", "pill",
     "syringe", "drug", "alcohol", "beer", "wine", "liquor", "cocktail", "gambling", "casino", "poker",
     "slot machine", "symbol", "emblem", "flag", "graffiti", "gesture"}
)

# Client-side TPS per API. Rekognition's default quotas differ per API and per region (50 TPS for these four in
# the largest regions, as low as 5 TPS elsewhere): read yours in Service Quotas and set them in settings.
DEFAULT_TPS_PER_API: dict[ApiCall, float] = {
    ApiCall.DETECT_LABELS: 50.0,
    ApiCall.INDEX_FACES: 50.0,
    ApiCall.DETECT_TEXT: 50.0,
    ApiCall.DETECT_MODERATION_LABELS: 50.0,
}


def _folded(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.casefold() for n in names)


@dataclass(frozen=True)
class AnalysisSettings:
    analysis_version: int = 1
    text_trigger_labels: frozenset[str] = DEFAULT_TEXT_TRIGGER_LABELS
    text_trigger_categories: frozenset[str] = DEFAULT_TEXT_TRIGGER_CATEGORIES
    text_trigger_min_confidence: float = 60.0
    face_trigger_labels: frozenset[str] | None = DEFAULT_FACE_TRIGGER_LABELS  # None: IndexFaces on every photo
    face_trigger_min_confidence: float = 50.0
    moderation_trigger_labels: frozenset[str] | None = DEFAULT_MODERATION_TRIGGER_LABELS  # None: every photo
    moderation_trigger_min_confidence: float = 50.0
    # A re-analysis (newer analysis_version) keeps the faces an earlier version indexed instead of indexing the
    # photo again: new FaceIds would cut the faces out of their people and the user's corrections.
    reuse_indexed_faces: bool = True
    near_duplicate_max_distance: int = 4
    tps_per_api: Mapping[ApiCall, float] = field(default_factory=lambda: dict(DEFAULT_TPS_PER_API))
    workers: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_trigger_labels", _folded(self.text_trigger_labels))
        object.__setattr__(self, "text_trigger_categories", _folded(self.text_trigger_categories))
        if self.face_trigger_labels is not None:
            object.__setattr__(self, "face_trigger_labels", _folded(self.face_trigger_labels))
        if self.moderation_trigger_labels is not None:
            object.__setattr__(self, "moderation_trigger_labels", _folded(self.moderation_trigger_labels))
        if self.analysis_version < 1 or self.workers < 1 or not 0 <= self.near_duplicate_max_distance <= 64:
            raise ConfigurationError("analysis_version and workers must be >= 1, near-duplicate distance 0..64")


def needs_analysis(photo: PhotoRecord, current_version: int) -> bool:
    return photo.status is PhotoStatus.READY and photo.analysis_version < current_version


def _triggered(labels: Iterable[Label], names: frozenset[str], categories: frozenset[str], floor: float) -> bool:
    return any(
        label.confidence >= floor
        and (label.matches(names) or any(c.casefold() in categories for c in label.categories))
        for label in labels
    )


def plan_calls(
    photo: PhotoRecord,
    labels_known: Sequence[Label] | None,
    settings: AnalysisSettings,
    *,
    face_consent: bool,
    already_done: Collection[ApiCall] = (),
) -> list[ApiCall]:
    """The paid calls a photo still needs, in two phases.

    Phase 1 (labels_known is None): DetectLabels always. Phase 2 (labels known): DetectModerationLabels when a
    label says a body or other moderated content may be there, DetectText when a label says the photo holds text,
    IndexFaces when the owner consented to face processing and a label says a person may be there. A trigger set
    of None moves its call to phase 1 for every photo (IndexFaces still only for consenting owners). Calls in
    already_done (a resumed run, faces kept from an earlier version) are never planned again.
    """
    if photo.status is not PhotoStatus.READY:
        return []
    face_labels = settings.face_trigger_labels
    moderation_labels = settings.moderation_trigger_labels
    if labels_known is None:
        calls = [ApiCall.DETECT_LABELS]
        if moderation_labels is None:
            calls.append(ApiCall.DETECT_MODERATION_LABELS)
        if face_consent and face_labels is None:
            calls.append(ApiCall.INDEX_FACES)
    else:
        calls = []
        moderation_floor = settings.moderation_trigger_min_confidence
        if moderation_labels is not None and _triggered(labels_known, moderation_labels, frozenset(), moderation_floor):
            calls.append(ApiCall.DETECT_MODERATION_LABELS)
        text_floor = settings.text_trigger_min_confidence
        if _triggered(labels_known, settings.text_trigger_labels, settings.text_trigger_categories, text_floor):
            calls.append(ApiCall.DETECT_TEXT)
        face_floor = settings.face_trigger_min_confidence
        if face_consent and face_labels is not None and _triggered(labels_known, face_labels, frozenset(), face_floor):
            calls.append(ApiCall.INDEX_FACES)
    return [call for call in calls if call not in already_done]

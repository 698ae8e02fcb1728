"""The one output model of the Analyzer port: Rekognition and the local models both produce it.

Confidences are percentages (0..100, as Rekognition reports them); boxes are ratios of the preview's size.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

# A moderation label at or above this confidence marks the photo sensitive. Rekognition returns labels from 50%
# when MinConfidence is not given; 80 keeps borderline swimwear/beach photos out of the sensitive bucket.
SENSITIVE_MIN_CONFIDENCE = 80.0


class ApiCall(StrEnum):
    """A paid Rekognition image operation; the value is the API's own name (used in metrics and cost tables)."""

    DETECT_LABELS = "DetectLabels"
    INDEX_FACES = "IndexFaces"
    DETECT_TEXT = "DetectText"
    DETECT_MODERATION_LABELS = "DetectModerationLabels"


class AnalysisSource(StrEnum):
    REKOGNITION = "rekognition"
    LOCAL = "local"


class LabelSource(StrEnum):
    REKOGNITION = "rekognition"
    LOCAL = "local"
    FACES = "faces"  # derived from detected faces (person, group)
    OCR = "ocr"  # derived from detected text (text, document)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BoundingBox(_Frozen):
    left: float = Field(ge=0, le=1)
    top: float = Field(ge=0, le=1)
    width: float = Field(ge=0, le=1)
    height: float = Field(ge=0, le=1)

    @classmethod
    def clamped(cls, left: float, top: float, width: float, height: float) -> BoundingBox:
        """Rekognition returns negative or >1 coordinates for faces cut by the image edge; keep the visible part."""
        right, bottom = min(1.0, left + width), min(1.0, top + height)
        left, top = min(1.0, max(0.0, left)), min(1.0, max(0.0, top))
        return cls(left=left, top=top, width=max(0.0, right - left), height=max(0.0, bottom - top))


class Label(_Frozen):
    name: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=100)
    parents: tuple[str, ...] = Field(default=(), description="Every ancestor label (Rekognition lists them all).")
    categories: tuple[str, ...] = Field(default=(), description="Rekognition's label categories, if any.")
    source: LabelSource = LabelSource.REKOGNITION

    def matches(self, names: frozenset[str]) -> bool:
        """True when the label or one of its ancestors is in names (compared case-insensitively)."""
        return any(n.casefold() in names for n in (self.name, *self.parents))


class FaceQuality(_Frozen):
    sharpness: float | None = Field(default=None, ge=0, le=100)
    brightness: float | None = Field(default=None, ge=0, le=100)


class FacePose(_Frozen):
    roll: float | None = Field(default=None, ge=-180, le=180)
    yaw: float | None = Field(default=None, ge=-180, le=180)
    pitch: float | None = Field(default=None, ge=-180, le=180)


class FaceDetection(_Frozen):
    box: BoundingBox
    confidence: float = Field(ge=0, le=100)
    quality: FaceQuality = FaceQuality()
    pose: FacePose = FacePose()
    face_handle: str | None = Field(
        default=None,
        description="Rekognition FaceId or the local descriptor id; None for a face seen but not indexed "
        "(too small, too blurred, over the per-photo limit): it counts as a person but cannot be clustered.",
    )
    descriptor: bytes | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Local backend only: the 128-d float32 face descriptor, handed to the people store and never "
        "written into the analysis document (biometric data lives in one place, deletable on consent withdrawal).",
    )


class TextLine(_Frozen):
    text: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=100)
    box: BoundingBox | None = None


class ModerationLabel(_Frozen):
    name: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=100)
    parent: str | None = Field(default=None, description="None at the top of the taxonomy.")
    taxonomy_level: int | None = Field(default=None, ge=1, le=3)


class AnalysisPlan(_Frozen):
    """What to ask an analyzer for one photo: the calls decided by the planner (see glue_jobs transforms)."""

    owner: str = Field(min_length=1)
    photo_id: str = Field(min_length=1)
    analysis_version: int = Field(ge=1)
    calls: frozenset[ApiCall]

    def includes(self, call: ApiCall) -> bool:
        return call in self.calls


class AnalysisResult(_Frozen):
    photo_id: str = Field(min_length=1)
    analysis_version: int = Field(ge=1)
    labels: tuple[Label, ...] = ()
    weak_labels: tuple[Label, ...] = Field(
        default=(),
        description="What the analyser saw under its confidence threshold: search evidence only, ranked below the "
        "labels, never shown as tags nor used by captions, planning or training (local analyser only).",
    )
    faces: tuple[FaceDetection, ...] = ()
    text_lines: tuple[TextLine, ...] = ()
    moderation_labels: tuple[ModerationLabel, ...] = ()
    dominant_colours: tuple[str, ...] = Field(default=(), description="'#rrggbb', most dominant first.")
    sensitive_threshold: float = Field(default=SENSITIVE_MIN_CONFIDENCE, ge=0, le=100)
    analysed_at: datetime
    source: AnalysisSource
    copied_from: str | None = Field(
        default=None, description="The photo whose results these are, when this photo is a (near) duplicate."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # model_dump() includes the derived flag; reading a stored result back recomputes it instead.
        if isinstance(data, dict) and "sensitive" in data:
            data = {k: v for k, v in data.items() if k != "sensitive"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sensitive(self) -> bool:
        """Derived, never stored on its own: any moderation label at or above the threshold."""
        return any(m.confidence >= self.sensitive_threshold for m in self.moderation_labels)

    def label_names(self) -> frozenset[str]:
        return frozenset(label.name for label in self.labels)

    def copied_to(self, photo_id: str) -> AnalysisResult:
        """The same findings for a duplicate photo, recording where they came from."""
        return self.model_copy(update={"photo_id": photo_id, "copied_from": self.copied_from or self.photo_id})

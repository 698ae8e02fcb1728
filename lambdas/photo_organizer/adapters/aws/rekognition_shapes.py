"""Pure conversions from documented Amazon Rekognition response shapes to the analysis model.

Field names follow the Rekognition API reference (the same shapes botocore's service model describes):
DetectLabels `Labels[].{Name,Confidence,Parents,Categories,Instances}` and `ImageProperties.DominantColors`,
IndexFaces `FaceRecords[].{Face,FaceDetail}` and `UnindexedFaces[].FaceDetail`, DetectText
`TextDetections[].{DetectedText,Type,Confidence,Geometry}`, DetectModerationLabels
`ModerationLabels[].{Name,Confidence,ParentName,TaxonomyLevel}`. Every field is optional in the API, so a
missing one is skipped, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from photo_organizer.analysis.models import (
    AnalysisResult,
    AnalysisSource,
    ApiCall,
    BoundingBox,
    FaceDetection,
    FacePose,
    FaceQuality,
    Label,
    LabelSource,
    ModerationLabel,
    TextLine,
)

Response = Mapping[str, Any]


def _box(raw: Mapping[str, Any] | None) -> BoundingBox | None:
    if not raw or any(k not in raw for k in ("Left", "Top", "Width", "Height")):
        return None
    return BoundingBox.clamped(float(raw["Left"]), float(raw["Top"]), float(raw["Width"]), float(raw["Height"]))


def _percent(value: Any) -> float:
    return min(100.0, max(0.0, float(value)))


def _maybe_percent(value: Any) -> float | None:
    # The API reference's own IndexFaces example reports Sharpness 160 although the range is documented as 0-100.
    return None if value is None else _percent(value)


def labels_from_detect_labels(response: Response) -> tuple[Label, ...]:
    labels = []
    for raw in response.get("Labels") or ():
        if not raw.get("Name") or raw.get("Confidence") is None:
            continue
        labels.append(
            Label(
                name=raw["Name"],
                confidence=_percent(raw["Confidence"]),
                parents=tuple(p["Name"] for p in raw.get("Parents") or () if p.get("Name")),
                categories=tuple(c["Name"] for c in raw.get("Categories") or () if c.get("Name")),
                source=LabelSource.REKOGNITION,
            )
        )
    return tuple(labels)


def dominant_colours_from_detect_labels(response: Response) -> tuple[str, ...]:
    """Whole-image dominant colours, most covered first (only present when IMAGE_PROPERTIES was requested)."""
    colours = (response.get("ImageProperties") or {}).get("DominantColors") or ()
    ranked = sorted(colours, key=lambda c: -float(c.get("PixelPercent") or 0))
    seen: list[str] = []
    for colour in ranked:
        hex_code = (colour.get("HexCode") or "").strip().lower()
        if hex_code and not hex_code.startswith("#"):
            hex_code = "#" + hex_code
        if len(hex_code) == 7 and hex_code not in seen:
            seen.append(hex_code)
    return tuple(seen)


def _face(detail: Mapping[str, Any], *, face_id: str | None, confidence: Any = None) -> FaceDetection | None:
    box = _box(detail.get("BoundingBox"))
    score = detail.get("Confidence", confidence)
    if box is None or score is None:
        return None
    quality, pose = detail.get("Quality") or {}, detail.get("Pose") or {}
    return FaceDetection(
        box=box,
        confidence=_percent(score),
        quality=FaceQuality(
            sharpness=_maybe_percent(quality.get("Sharpness")), brightness=_maybe_percent(quality.get("Brightness"))
        ),
        pose=FacePose(roll=pose.get("Roll"), yaw=pose.get("Yaw"), pitch=pose.get("Pitch")),
        face_handle=face_id,
    )


def faces_from_index_faces(response: Response) -> tuple[FaceDetection, ...]:
    """Indexed faces carry their FaceId; faces Rekognition saw but refused to index come without a handle."""
    faces = []
    for record in response.get("FaceRecords") or ():
        face, detail = record.get("Face") or {}, dict(record.get("FaceDetail") or {})
        detail.setdefault("BoundingBox", face.get("BoundingBox"))
        converted = _face(detail, face_id=face.get("FaceId"), confidence=face.get("Confidence"))
        if converted is not None:
            faces.append(converted)
    for unindexed in response.get("UnindexedFaces") or ():
        converted = _face(unindexed.get("FaceDetail") or {}, face_id=None)
        if converted is not None:
            faces.append(converted)
    return tuple(faces)


def text_lines_from_detect_text(response: Response) -> tuple[TextLine, ...]:
    """LINE detections only: every WORD repeats part of a line (ParentId points at it)."""
    lines = []
    for raw in response.get("TextDetections") or ():
        text = (raw.get("DetectedText") or "").strip()
        if raw.get("Type") != "LINE" or not text or raw.get("Confidence") is None:
            continue
        box = _box((raw.get("Geometry") or {}).get("BoundingBox"))
        lines.append(TextLine(text=text, confidence=_percent(raw["Confidence"]), box=box))
    return tuple(lines)


def moderation_labels_from_response(response: Response) -> tuple[ModerationLabel, ...]:
    labels = []
    for raw in response.get("ModerationLabels") or ():
        if not raw.get("Name") or raw.get("Confidence") is None:
            continue
        level = raw.get("TaxonomyLevel")
        labels.append(
            ModerationLabel(
                name=raw["Name"],
                confidence=_percent(raw["Confidence"]),
                parent=raw.get("ParentName") or None,  # the top level has ParentName ""
                taxonomy_level=level if level in (1, 2, 3) else None,
            )
        )
    return tuple(labels)


def result_from_responses(
    *, photo_id: str, analysis_version: int, responses: Mapping[ApiCall, Response], analysed_at: datetime
) -> AnalysisResult:
    """One AnalysisResult from whichever of the four calls were made (a call not made contributes nothing)."""
    labels_response = responses.get(ApiCall.DETECT_LABELS, {})
    return AnalysisResult(
        photo_id=photo_id,
        analysis_version=analysis_version,
        labels=labels_from_detect_labels(labels_response),
        dominant_colours=dominant_colours_from_detect_labels(labels_response),
        faces=faces_from_index_faces(responses.get(ApiCall.INDEX_FACES, {})),
        text_lines=text_lines_from_detect_text(responses.get(ApiCall.DETECT_TEXT, {})),
        moderation_labels=moderation_labels_from_response(responses.get(ApiCall.DETECT_MODERATION_LABELS, {})),
        analysed_at=analysed_at,
        source=AnalysisSource.REKOGNITION,
    )

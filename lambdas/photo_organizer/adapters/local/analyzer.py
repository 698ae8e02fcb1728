"""The local Analyzer: CPU models that ship inside packages, behind the same port and output as Rekognition.

Weaker than Rekognition, and said so in the README and the UI: labels come from an ImageNet classifier mapped
to a curated tag vocabulary (no person, scene or activity classes), faces from dlib's HOG detector (misses
faces under ~80 px), OCR from RapidOCR, and nudity screening only when the optional nudenet extra is installed.
Tags derived from faces (Person, Group) and from text (Text, Document) fill the gaps ImageNet leaves.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from photo_organizer.analysis.models import (
    AnalysisPlan,
    AnalysisResult,
    AnalysisSource,
    ApiCall,
    FaceDetection,
    Label,
    LabelSource,
)
from photo_organizer.adapters.local.vocabulary import ancestors

if TYPE_CHECKING:
    from photo_organizer.adapters.image_embedding import LabelModelSession


class LocalAnalyzer:
    def __init__(
        self,
        *,
        label_model: Path,
        ocr: bool = True,
        faces: bool = True,
        moderation: bool = True,
        label_session: LabelModelSession | None = None,
    ) -> None:
        from photo_organizer.adapters.local.labels import OnnxLabeler

        # A shared session (bootstrap.local_analysis) also serves the image embedder: one pass per preview.
        self._labeler = OnnxLabeler(label_model, session=label_session)
        self._ocr_enabled, self._faces_enabled, self._moderation_enabled = ocr, faces, moderation

    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan) -> AnalysisResult:
        labels: list[Label] = []
        weak: tuple[Label, ...] = ()
        faces: tuple[FaceDetection, ...] = ()
        text_lines = ()
        moderation = ()
        if plan.includes(ApiCall.DETECT_LABELS):
            found, weak = self._labeler.labels_and_weak(preview_jpeg)
            labels += found
            if self._ocr_enabled:
                # ImageNet rarely says "text": a cheap detector pass decides whether full OCR is planned.
                from photo_organizer.adapters.local.ocr import likely_has_text

                if likely_has_text(preview_jpeg):
                    labels.append(Label(name="Text", confidence=90.0, source=LabelSource.OCR))
        if plan.includes(ApiCall.INDEX_FACES) and self._faces_enabled:
            faces = self._faces(preview_jpeg, plan.photo_id)
            labels += face_labels(len(faces))
        if plan.includes(ApiCall.DETECT_TEXT) and self._ocr_enabled:
            from photo_organizer.adapters.local.ocr import RapidOcrReader, text_labels

            text_lines = RapidOcrReader().read(preview_jpeg)
            labels += text_labels(text_lines)
        if plan.includes(ApiCall.DETECT_MODERATION_LABELS) and self._moderation_enabled:
            from photo_organizer.adapters.local.moderation import NudeNetScreener

            if NudeNetScreener.available():
                moderation = NudeNetScreener().screen(preview_jpeg)
        return AnalysisResult(
            photo_id=plan.photo_id,
            analysis_version=plan.analysis_version,
            labels=tuple(_unique(labels)),
            weak_labels=tuple(w for w in weak if w.name not in {label.name for label in labels}),
            faces=faces,
            text_lines=text_lines,
            moderation_labels=moderation,
            analysed_at=datetime.now(timezone.utc),
            source=AnalysisSource.LOCAL,
        )

    @staticmethod
    def _faces(preview_jpeg: bytes, photo_id: str) -> tuple[FaceDetection, ...]:
        from photo_organizer.adapters.local.faces import DlibFaceAnalyzer

        found = DlibFaceAnalyzer().detect(preview_jpeg)
        return tuple(
            face.detection.model_copy(
                update={"face_handle": f"{photo_id}-f{index}", "descriptor": face.descriptor.astype("<f4").tobytes()}
            )
            for index, face in enumerate(found)
        )


def face_labels(count: int) -> list[Label]:
    if count == 0:
        return []
    names = ["Person"] + (["Group"] if count >= 3 else [])
    return [
        Label(name=name, confidence=99.0, parents=tuple(ancestors(name)), source=LabelSource.FACES) for name in names
    ]


def _unique(labels: list[Label]) -> list[Label]:
    best: dict[str, Label] = {}
    for label in labels:
        if label.name not in best or label.confidence > best[label.name].confidence:
            best[label.name] = label
    return sorted(best.values(), key=lambda label: (-label.confidence, label.name))

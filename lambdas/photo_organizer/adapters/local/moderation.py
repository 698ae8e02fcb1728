"""Nudity screening with NudeNet's detector (nudenet 3.4.2: a YOLO model, 320n.onnx, inside the wheel; no
download at run time), mapped to Rekognition's moderation taxonomy (v7 names) so `AnalysisResult.sensitive`
works the same for both analyzers.

Optional: nudenet is NOT a dependency of the project. Its model derives from an AGPL-3.0 detector and needs a licence
review, so the local analyzer screens only when the package is installed (`NudeNetScreener.available()`), and
reports no moderation labels otherwise. nudenet also pulls opencv-python-headless, which shares the `cv2` package
directory with rapidocr's opencv-python: install it with `--no-deps` next to opencv-python.

Only levels 1 and 2 of the taxonomy come out, never level 3 (which body part) and never NudeNet's FACE_FEMALE /
FACE_MALE classes: this app does not infer anyone's gender. Feet, belly and armpit classes are not moderation
findings and are dropped.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable, Mapping
from typing import Any


from photo_organizer.adapters.local.preview_pixels import preview_bgr
from photo_organizer.analysis.models import ModerationLabel
from photo_organizer.errors import ConfigurationError

EXPLICIT = "Explicit"
EXPLICIT_NUDITY = "Explicit Nudity"
NON_EXPLICIT = "Non-Explicit Nudity of Intimate parts and Kissing"
NON_EXPLICIT_NUDITY = "Non-Explicit Nudity"
SWIMWEAR = "Swimwear or Underwear"

# NudeNet class -> (level-2 label, its level-1 parent), or (level-1 label, None). Classes not listed (FACE_FEMALE,
# FACE_MALE, FEET_*, BELLY_*, ARMPITS_*) never become moderation labels.
_TAXONOMY: Mapping[str, tuple[str, str | None]] = {
    "FEMALE_GENITALIA_EXPOSED": (EXPLICIT_NUDITY, EXPLICIT),
    "MALE_GENITALIA_EXPOSED": (EXPLICIT_NUDITY, EXPLICIT),
    "FEMALE_BREAST_EXPOSED": (EXPLICIT_NUDITY, EXPLICIT),
    "BUTTOCKS_EXPOSED": (EXPLICIT_NUDITY, EXPLICIT),
    "ANUS_EXPOSED": (EXPLICIT_NUDITY, EXPLICIT),
    "MALE_BREAST_EXPOSED": (NON_EXPLICIT_NUDITY, NON_EXPLICIT),
    "FEMALE_GENITALIA_COVERED": (SWIMWEAR, None),
    "FEMALE_BREAST_COVERED": (SWIMWEAR, None),
    "BUTTOCKS_COVERED": (SWIMWEAR, None),
    "ANUS_COVERED": (SWIMWEAR, None),
}

# NudeNet keeps detections from 0.2; Rekognition reports moderation labels from 50% by default.
MIN_DETECTION_SCORE = 0.5


def moderation_labels(detections: Iterable[Mapping[str, Any]], *, min_score: float = MIN_DETECTION_SCORE
                      ) -> tuple[ModerationLabel, ...]:
    """NudeNet detections ({"class", "score", ...}) as moderation labels; each label (and its parent) carries the
    highest score of the detections under it, as a percentage. Most confident first, parents before children."""
    best: dict[tuple[str, str | None, int], float] = {}
    for detection in detections:
        mapped = _TAXONOMY.get(str(detection.get("class")))
        score = float(detection.get("score", 0.0))
        if mapped is None or score < min_score:
            continue
        name, parent = mapped
        entries: list[tuple[str, str | None, int]] = [(name, None, 1)]
        if parent is not None:
            entries = [(name, parent, 2), (parent, None, 1)]
        for key in entries:
            best[key] = max(best.get(key, 0.0), score)
    ordered = sorted(best.items(), key=lambda item: (-item[1], item[0][2], item[0][0]))
    return tuple(
        ModerationLabel(name=name, confidence=round(min(100.0, score * 100.0), 2), parent=parent, taxonomy_level=level)
        for (name, parent, level), score in ordered
    )


class _Detector:
    _instance: _Detector | None = None
    _loading = threading.Lock()

    def __init__(self) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError as exc:
            raise ConfigurationError("nudity screening needs the optional nudenet package") from exc
        self.detector = NudeDetector()
        # NudeDetector.detect is stateless over a shared onnxruntime session (thread-safe); no lock needed.

    @classmethod
    def get(cls) -> _Detector:
        if cls._instance is None:
            with cls._loading:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance


class NudeNetScreener:
    def __init__(self, *, min_score: float = MIN_DETECTION_SCORE) -> None:
        self._min_score = min_score

    @staticmethod
    def available() -> bool:
        """True when nudenet is installed; the local analyzer skips moderation otherwise."""
        return importlib.util.find_spec("nudenet") is not None

    def screen(self, preview_jpeg: bytes) -> tuple[ModerationLabel, ...]:
        bgr = preview_bgr(preview_jpeg)
        detections = _Detector.get().detector.detect(bgr)
        return moderation_labels(detections, min_score=self._min_score)


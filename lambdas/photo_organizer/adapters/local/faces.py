"""Faces on the preview with the dlib models that ship in PyPI packages: HOG detector, 5-point landmarks, ResNet
128-d descriptor. Offline, CPU only.

Model files come from the face-recognition-models package directory, located with `find_spec` because importing
that package needs pkg_resources. Only the 5-point predictor (CC0) is ever loaded: the 68-point model in the same
directory is licensed for non-commercial use only.

Measured on the sample photos' previews (medians of 5, 2-core box; dlib runs single-threaded here, so a process
per core scales): detection 56-129 ms on 0.7-1.6 MP previews, 43-85 ms on sub-800 px images upsampled once,
76-96 ms per face for landmarks + descriptor; 0.4 s to load the models once per process.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photo_organizer.adapters.local.preview_pixels import preview_rgb
from photo_organizer.analysis.models import BoundingBox, FaceDetection, FaceQuality
from photo_organizer.errors import ConfigurationError

MODELS_PACKAGE = "face_recognition_models"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"  # CC0; never the 68-point file (non-commercial licence)
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# The HOG detector's windows are 80x80 px: without upsampling it misses faces smaller than that. Upsampling
# doubles the image and costs ~4x (obama3 preview: 151 -> 614 ms, and nothing real gained), so it is only done
# where a face of a plausible size could fall under 80 px: images whose long edge is below this.
UPSAMPLE_BELOW_EDGE = 800

# The detector's score is an SVM margin; 0 is dlib's own decision threshold. On the samples real faces score
# 1.05-2.45 and the one false positive (the mission patch on astronaut.png's suit) 0.002 (0.125 upsampled), so
# detections below this margin are dropped.
MIN_DETECTION_SCORE = 0.25

# confidence = 100 / (1 + exp(-SLOPE * score)): dlib's threshold (score 0) is 50%, score 0.25 -> 68%, 1 -> 95%,
# 2 -> 99.75%. Monotonic, so ranking by confidence is ranking by the detector's margin.
_CONFIDENCE_SLOPE = 3.0

# Sharpness is measured on the face crop resized to a fixed size, so that the Laplacian variance compares faces of
# different sizes; variance / (variance + HALF) maps it to 0..100 with HALF scoring 50.
_SHARPNESS_EDGE = 128
_SHARPNESS_HALF = 100.0


@dataclass(frozen=True, slots=True)
class LocalFace:
    detection: FaceDetection
    descriptor: np.ndarray
    """128 float32 values; faces of one person lie within euclidean distance 0.6 (dlib's decision distance)."""


def detection_confidence(score: float) -> float:
    """The HOG detector's score (an SVM margin, 0 at dlib's threshold) as a 0..100 percentage."""
    return 100.0 / (1.0 + math.exp(-_CONFIDENCE_SLOPE * score))


class _Models:
    """The three dlib models of this process, loaded once on first use.

    dlib's detector and networks keep per-call scratch state inside the object, so one call runs at a time
    (`lock`); the local backend parallelises with a process pool, each process holding its own models.
    """

    _instance: _Models | None = None
    _loading = threading.Lock()

    def __init__(self, directory: Path) -> None:
        import dlib  # imported here: the rest of the app runs where dlib is not installed

        self.lock = threading.Lock()
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(directory / LANDMARKS_FILE))
        self.descriptor = dlib.face_recognition_model_v1(str(directory / DESCRIPTOR_FILE))
        self.rectangle = dlib.rectangle

    @classmethod
    def get(cls) -> _Models:
        if cls._instance is None:
            with cls._loading:
                if cls._instance is None:
                    cls._instance = cls(model_directory())
        return cls._instance


def model_directory() -> Path:
    """Where face-recognition-models keeps its .dat files, found without importing the package."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigurationError(f"local face analysis needs the {MODELS_PACKAGE} package (face-recognition-models)")
    directory = Path(spec.origin).parent / "models"
    missing = [name for name in (LANDMARKS_FILE, DESCRIPTOR_FILE) if not (directory / name).is_file()]
    if missing:
        raise ConfigurationError(f"{MODELS_PACKAGE} lacks {', '.join(missing)} in {directory}")
    return directory


class DlibFaceAnalyzer:
    def __init__(
        self,
        *,
        min_score: float = MIN_DETECTION_SCORE,
        upsample_below_edge: int = UPSAMPLE_BELOW_EDGE,
    ) -> None:
        self._min_score = min_score
        self._upsample_below_edge = upsample_below_edge

    def detect(self, preview_jpeg: bytes) -> list[LocalFace]:
        """Every frontal face of the preview, largest-confidence first, each with its descriptor."""
        pixels = preview_rgb(preview_jpeg)
        height, width = pixels.shape[:2]
        upsample = 1 if max(width, height) < self._upsample_below_edge else 0
        models = _Models.get()
        with models.lock:
            rects, scores, _ = models.detector.run(pixels, upsample, self._min_score)
            found = []
            for rect, score in sorted(zip(rects, scores, strict=True), key=lambda rs: -rs[1]):
                shape = models.landmarks(pixels, rect)
                vector = np.asarray(models.descriptor.compute_face_descriptor(pixels, shape), dtype=np.float32)
                found.append((rect, score, vector))
        return [
            LocalFace(detection=_detection(pixels, rect, score), descriptor=vector) for rect, score, vector in found
        ]



def _detection(pixels: np.ndarray, rect: Any, score: float) -> FaceDetection:
    height, width = pixels.shape[:2]
    # dlib rectangles are inclusive and may reach past the image edge for faces cut by it
    left, top, right, bottom = rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1
    box = BoundingBox.clamped(left / width, top / height, (right - left) / width, (bottom - top) / height)
    crop = pixels[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]
    return FaceDetection(box=box, confidence=detection_confidence(score), quality=_quality(crop))


def _quality(crop: np.ndarray) -> FaceQuality:
    if crop.size == 0:
        return FaceQuality()
    gray = Image.fromarray(crop).convert("L")
    brightness = float(np.asarray(gray, dtype=np.float64).mean()) / 255.0 * 100.0
    fixed = np.asarray(gray.resize((_SHARPNESS_EDGE, _SHARPNESS_EDGE), Image.Resampling.BILINEAR), dtype=np.float64)
    laplacian = fixed[:-2, 1:-1] + fixed[2:, 1:-1] + fixed[1:-1, :-2] + fixed[1:-1, 2:] - 4.0 * fixed[1:-1, 1:-1]
    variance = float(laplacian.var())
    return FaceQuality(sharpness=100.0 * variance / (variance + _SHARPNESS_HALF), brightness=brightness)

"""Text on the preview with RapidOCR (PP-OCRv4 detection + recognition, ONNX models inside the
rapidocr-onnxruntime wheel). Offline, CPU only.

The slowest local stage (~0.2 s on a photo without text, ~1 s with three lines at 1500 px, 2 threads) and
~0.5 GB RSS once loaded, so planning runs it only when labels say the photo likely holds text, and the engine is
loaded once per process, on first use.

The recogniser is PP-OCR's Chinese+English model: it reads printed Latin text well but drops the spaces of wide
bold capitals ("PIKOLO ESPRESSO BAR" -> "PIKOLOESPRESSOBAR") and reads handwriting poorly.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from photo_organizer.adapters.local.preview_pixels import preview_bgr
from photo_organizer.analysis.models import BoundingBox, Label, LabelSource, TextLine
from photo_organizer.errors import ConfigurationError

# RapidOCR keeps lines from 0.5; on the samples its false readings of texture (a cat's fur read as "O" at 0.53,
# chalk strokes as "S=" at 0.56) score below 0.6 and real printed lines 0.95+.
MIN_LINE_CONFIDENCE = 0.6
# A single glyph on its own is nearly always texture, not text.
MIN_LINE_CHARACTERS = 2
# "Document" when the photo is mostly text: this many lines, or boxes covering this share of the image.
DOCUMENT_MIN_LINES = 6
DOCUMENT_MIN_AREA = 0.25


class _Engine:
    """The process's RapidOCR, loaded once. Its call mutates per-call settings on the object, so one call runs at
    a time (`lock`); the local backend parallelises with a process pool."""

    _instance: _Engine | None = None
    _loading = threading.Lock()

    def __init__(self, threads: int) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR  # imported here: optional, and 0.5 s to load
        except ImportError as exc:
            raise ConfigurationError("local OCR needs the rapidocr-onnxruntime package") from exc
        self.lock = threading.Lock()
        self.ocr = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    @classmethod
    def get(cls, threads: int) -> _Engine:
        if cls._instance is None:
            with cls._loading:
                if cls._instance is None:
                    cls._instance = cls(threads)
        return cls._instance


class RapidOcrReader:
    def __init__(self, *, threads: int = 1, min_confidence: float = MIN_LINE_CONFIDENCE) -> None:
        # threads only applies to the first reader of a process: the engine is shared.
        self._threads = threads
        self._min_confidence = min_confidence

    def read(self, preview_jpeg: bytes) -> tuple[TextLine, ...]:
        """The preview's text lines, top to bottom, with boxes as ratios of the preview's size."""
        bgr = preview_bgr(preview_jpeg)
        engine = _Engine.get(self._threads)
        with engine.lock:
            result, _elapsed = engine.ocr(bgr)
        height, width = bgr.shape[:2]
        lines = [
            _line(points, str(text), float(score), width, height)
            for points, text, score in (result or ())
            if float(score) >= self._min_confidence and len(str(text).strip()) >= MIN_LINE_CHARACTERS
        ]
        return tuple(sorted(lines, key=lambda line: (line.box.top, line.box.left) if line.box else (0.0, 0.0)))


# The text check: RapidOCR's detector alone on a small copy of the preview. Printed lines come out as wide boxes
# (width several times the height); texture (fur, foliage, chalk smudges) as squarish ones. Measured on the samples:
# the drawn café sign gives three boxes of aspect 16+, the cat's fur five of aspect ~1, portraits none or ~2.
TEXT_CHECK_EDGE = 640
MIN_LINE_ASPECT = 3.0
MIN_LINE_WIDTH = 0.08  # of the image width


def likely_has_text(preview_jpeg: bytes, *, threads: int = 1) -> bool:
    """Cheap (~0.15 s) check that decides whether the full OCR (~1 s) is worth running."""
    bgr = preview_bgr(preview_jpeg, max_edge=TEXT_CHECK_EDGE)
    engine = _Engine.get(threads)
    with engine.lock:
        boxes, _elapsed = engine.ocr(bgr, use_det=True, use_cls=False, use_rec=False)
    height, width = bgr.shape[:2]
    for box in boxes or ():
        points = np.asarray(box, dtype=float)
        box_width, box_height = float(np.ptp(points[:, 0])), max(1.0, float(np.ptp(points[:, 1])))
        if box_width / box_height >= MIN_LINE_ASPECT and box_width >= MIN_LINE_WIDTH * width:
            return True
    return False


def text_labels(lines: Sequence[TextLine]) -> tuple[Label, ...]:
    """Tags derived from OCR: Text when any line was read, Document when the photo is mostly text."""
    if not lines:
        return ()
    labels = [Label(name="Text", confidence=max(line.confidence for line in lines), source=LabelSource.OCR)]
    area = sum(line.box.width * line.box.height for line in lines if line.box)
    if len(lines) >= DOCUMENT_MIN_LINES or area >= DOCUMENT_MIN_AREA:
        mean = sum(line.confidence for line in lines) / len(lines)
        labels.append(Label(name="Document", confidence=round(mean, 2), parents=("Text",), source=LabelSource.OCR))
    return tuple(labels)


def _line(points: Any, text: str, score: float, width: int, height: int) -> TextLine:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    left, top = min(xs) / width, min(ys) / height
    box = BoundingBox.clamped(left, top, max(xs) / width - left, max(ys) / height - top)
    return TextLine(text=text.strip(), confidence=round(min(100.0, score * 100.0), 2), box=box)


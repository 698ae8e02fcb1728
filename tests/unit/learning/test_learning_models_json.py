"""The tagging model and face matcher as JSON: exact round trips, the product's thresholds, and the constants
mirrored from modules the learning package may not import."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from photo_organizer.feedback import models as feedback_models
from photo_organizer.learning import faces, tagging
from photo_organizer.learning.datasets import PhotoFeatures
from photo_organizer.learning.features import build_schema
from photo_organizer.people import models as people_models


def photo(photo_id: str, labels: dict[str, float]) -> PhotoFeatures:
    return PhotoFeatures(owner="o", photo_id=photo_id, analysed_at="2026-11-01T00:00:00Z", labels=labels)


def small_model() -> tagging.TaggingModel:
    photos = [photo("a", {"dog": 90.0}), photo("b", {"cat": 90.0})]
    schema = build_schema(photos)  # labels cat, dog; no embedding
    d = schema.dimensions
    weights = np.zeros((2, d))
    weights[0, schema.names().index("label:dog")] = -8.0  # "dog" is wrong whenever analysis says dog
    weights[1, schema.names().index("label:cat")] = 8.0  # "grandma's house" wherever the cat is
    return tagging.TaggingModel(
        owner="o", schema=schema, tags=("dog", "grandma's house"), weights=weights, bias=np.array([-1.0, -2.0]),
        mean=np.zeros(d), scale=np.ones(d), platt_a=np.ones(2), platt_b=np.zeros(2),
    )


def test_product_thresholds_are_the_feedback_models_ones():
    assert tagging.SUGGEST_FROM == feedback_models.SUGGEST_FROM
    assert tagging.SUPPRESS_BELOW == feedback_models.SUPPRESS_BELOW


def test_tagging_model_round_trips_through_json_text_with_the_same_probabilities():
    model = small_model()
    again = tagging.TaggingModel.from_json(json.loads(json.dumps(model.to_json())))
    photos = [photo("x", {"dog": 90.0}), photo("y", {"cat": 70.0})]
    assert np.allclose(model.probabilities(photos), again.probabilities(photos), atol=1e-6)


def test_suggestions_flag_analysis_tags_and_the_product_rules_suppress_and_suggest():
    model = small_model()
    dog_photo, cat_photo = photo("x", {"dog": 90.0}), photo("y", {"cat": 90.0})
    scores = {s.tag: s for s in model.suggest(dog_photo)}
    assert scores["dog"].on_photo and scores["dog"].confidence < tagging.SUPPRESS_BELOW
    assert not scores["grandma's house"].on_photo
    assert model.predicted_tags(dog_photo) == set()  # dog suppressed
    assert model.predicted_tags(cat_photo) == {"cat", "grandma's house"}  # suggestion taken, cat kept


def test_a_model_document_maps_owners_to_models():
    doc = tagging.document([small_model()], {"b": "too few"})
    assert set(tagging.models_from_document(json.loads(json.dumps(doc)))) == {"o"}
    assert tagging.models_from_document(None) == {}
    with pytest.raises(ValueError):
        tagging.models_from_document({"kind": "faces", "owners": {}})


@pytest.mark.parametrize("distance", [0.0, 0.33, 0.42, 0.6, 0.82, 0.89, 1.3])
def test_similarity_scale_is_the_people_models_one(distance):
    assert math.isclose(float(faces.similarities_from_distances(distance)),
                        people_models.similarity_from_distance(distance), rel_tol=1e-12)
    assert faces.DEFAULT_THRESHOLD == people_models.DEFAULT_THRESHOLD


def test_untrained_matcher_is_the_fixed_threshold():
    matcher = faces.FaceMatcher.untrained()
    assert math.isclose(matcher.threshold, 0.80, rel_tol=1e-9)
    assert matcher.probability(0.81) > 0.5 > matcher.probability(0.79)
    assert not matcher.trained


def test_matcher_threshold_is_where_typical_faces_reach_one_half():
    matcher = faces.FaceMatcher(
        "o", coef=np.array([2.0, 0.3, 0.1, 0.2, 0.0]), intercept=0.4,
        mean=np.array([1.0, 0.5, 0.6, 0.25, 0.3]), scale=np.array([2.0, 0.2, 0.2, 0.1, 0.1]),
    )
    t = matcher.threshold
    typical = matcher.probability(t, 0.5, 0.6, area_a=0.25**2, area_b=0.3**2)
    assert math.isclose(typical, 0.5, abs_tol=1e-6)
    assert math.isclose(matcher.probability(t), 0.5, abs_tol=0.05)  # missing qualities/areas count as typical


def test_matcher_round_trips_with_its_projection_head_and_projects_descriptors():
    rng = np.random.default_rng(0)
    head = np.eye(128) + 0.01 * rng.standard_normal((128, 128))
    matcher = faces.FaceMatcher("o", np.array([1.5, 0.1, 0.0, 0.0, 0.2]), -0.3, np.zeros(5), np.ones(5), head)
    again = faces.FaceMatcher.from_json(json.loads(json.dumps(matcher.to_json())))
    a, b = rng.standard_normal(128) * 0.05, rng.standard_normal(128) * 0.05
    assert math.isclose(again.similarity(a, b), matcher.similarity(a, b), rel_tol=1e-5)
    assert math.isclose(again.threshold, matcher.threshold, rel_tol=1e-5)
    assert np.allclose(faces.FaceMatcher.untrained().project(np.ones((2, 128))), 1.0)
    assert again.project(np.ones((3, 128))).shape == (3, 128)


def test_a_matcher_with_other_features_is_refused():
    body = faces.FaceMatcher.untrained("o").to_json()
    body["features"] = ["similarity"]
    with pytest.raises(ValueError):
        faces.FaceMatcher.from_json(body)


def test_the_model_only_speaks_about_corrections_the_owner_made():
    model = small_model()
    model.suppressible = frozenset()  # "dog" was never rejected where analysis said dog
    model.suggestible = frozenset({"grandma's house"})
    dog_photo = photo("x", {"dog": 90.0})
    assert [s.tag for s in model.suggest(dog_photo)] == ["grandma's house"]
    assert model.predicted_tags(dog_photo) == {"dog"}  # not suppressed: the model never saw it wrong
    again = tagging.TaggingModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again.suppressible == frozenset() and again.suggestible == {"grandma's house"}

"""The learning on a feedback set built from the real sample photos (augmented, analysed by the local analyzer,
corrected by a simulated user): trained models, judged out of fold (cross-fitted), against the untrained behaviour,
the promotion gate, too-little-data skips, and what re-application suggests. In-process calls of the same functions
the sagemaker/ scripts run (test_learning_scripts.py runs the scripts themselves)."""

from __future__ import annotations

import pytest
from learning_photos import OWNER, TINY_OWNER

from photo_organizer.learning.faces import matchers_from_document
from photo_organizer.learning.promotion import (
    DIFFERENT_PERSON,
    POSITIVE_TAGS,
    SAME_PERSON,
    HeldOutEvidence,
    decide,
    point_scores,
)
from photo_organizer.learning.tagging import SUGGEST_FROM, SUPPRESS_BELOW, models_from_document

pytestmark = pytest.mark.xdist_group("learning")  # one worker analyses the photos for the session


@pytest.fixture(scope="module")
def tagging_doc(core, labelled):
    return core.train_tagging_models(labelled)


@pytest.fixture(scope="module")
def faces_doc(core, labelled):
    return core.train_face_matchers(labelled)


@pytest.fixture(scope="module")
def tag_evaluation(core, labelled, tagging_doc):
    return core.evaluate(labelled, candidate_tagging=tagging_doc)["tagging"]


@pytest.fixture(scope="module")
def face_evaluation(core, labelled, faces_doc):
    return core.evaluate(labelled, candidate_faces=faces_doc)["faces"]


def test_trained_tagging_beats_the_untrained_tags_out_of_fold_on_real_photos(tag_evaluation):
    trained, baseline = tag_evaluation["candidate"]["macro_f1"], tag_evaluation["baseline"]["macro_f1"]
    print(f"\nout-of-fold tag macro-F1: trained {trained:.4f} vs untrained {baseline:.4f} "
          f"on {tag_evaluation['examples']} photos")
    assert tag_evaluation["examples"] >= 80 and tag_evaluation["folds"] == 5
    assert trained > baseline + 0.01
    assert tag_evaluation["approved"]["untrained"] and tag_evaluation["decision"]["promote"]
    assert tag_evaluation["decision"]["gain_lower_bound"] > 0
    # the gate's per-example evidence adds up to the reported scores (macro-F1 recomputed from its counts)
    evidence = HeldOutEvidence.from_json(tag_evaluation["held_out"])
    assert point_scores(evidence) == pytest.approx((trained, baseline))
    assert evidence.answers[POSITIVE_TAGS] >= 10
    per_tag = tag_evaluation["candidate"]["per_tag"]
    # the custom tags exist only through feedback: the untrained behaviour never has them
    assert tag_evaluation["baseline"]["per_tag"][f"{OWNER}/school trip"] == 0.0
    assert per_tag[f"{OWNER}/school trip"] > 0.5 and per_tag[f"{OWNER}/grandma's house"] > 0.5


def test_trained_face_matcher_beats_the_fixed_threshold_out_of_fold_on_real_faces(face_evaluation, faces_doc):
    trained, baseline = face_evaluation["candidate"]["pair_f1"], face_evaluation["baseline"]["pair_f1"]
    matcher = faces_doc["owners"][OWNER]
    print(f"\nout-of-fold face pair F1: trained {trained:.4f} (its clustering threshold "
          f"{matcher['threshold']:.3f} alone: {face_evaluation['candidate']['threshold_pair_f1']:.4f}) vs fixed "
          f"0.80 threshold {baseline:.4f} on {face_evaluation['pairs']} pairs; projection head: "
          f"{matcher['info']['projection']}")
    assert face_evaluation["pairs"] >= 100
    evidence = HeldOutEvidence.from_json(face_evaluation["held_out"])
    assert point_scores(evidence) == pytest.approx((trained, baseline))
    assert evidence.answers[SAME_PERSON] + evidence.answers[DIFFERENT_PERSON] == face_evaluation["pairs"]
    assert trained > baseline
    assert face_evaluation["candidate"]["threshold_pair_f1"] >= baseline


def test_an_owner_with_too_little_feedback_is_skipped_with_a_reason(tagging_doc, faces_doc):
    assert OWNER in tagging_doc["owners"] and TINY_OWNER not in tagging_doc["owners"]
    assert "fewer than min_examples" in tagging_doc["skipped"][TINY_OWNER]
    assert TINY_OWNER not in faces_doc["owners"] and "min_pairs" in faces_doc["skipped"][TINY_OWNER]


def test_no_trainable_owner_gives_an_empty_model_the_gate_refuses(core, labelled):
    document = core.train_tagging_models(labelled, min_examples=10_000)
    assert document["owners"] == {} and set(document["skipped"]) == {OWNER, TINY_OWNER}
    evaluation = core.evaluate(labelled, candidate_tagging=document)
    assert not evaluation["tagging"]["promote"]
    assert "no owner had enough feedback" in evaluation["tagging"]["decision"]["reason"]


@pytest.mark.parametrize("recipe", [{"c": 1e-6}, {"min_tag_examples": 40}], ids=["no-learning", "few-tags"])
def test_gate_refuses_a_worse_candidate_and_keeps_the_approved_one(core, labelled, tagging_doc, recipe):
    # a worse recipe (the evaluation refits the candidate's recorded hyperparameters out of fold): all but no
    # learning, or only the most frequent tags learnt
    worse = core.train_tagging_models(labelled, **recipe)
    evaluation = core.evaluate(labelled, candidate_tagging=worse, approved_tagging=tagging_doc)
    section = evaluation["tagging"]
    print(f"\nworse candidate {recipe} macro-F1 {section['candidate']['macro_f1']:.4f} vs approved "
          f"{section['approved']['macro_f1']:.4f}: {section['decision']['reason']}")
    assert section["candidate"]["macro_f1"] < section["approved"]["macro_f1"]
    assert not section["promote"] and not decide(evaluation, "tagging").promote
    # the approved model is judged on the same photos, and again it beats the untrained tags
    assert section["approved"]["macro_f1"] > section["baseline"]["macro_f1"]


def test_photos_analysed_before_the_image_embedding_existed_still_train_and_suggest(core, analysed_photos, tmp_path):
    from learning_photos import feedback_set, write_dataset

    from photo_organizer.learning.examples import LABELLED_DIR, build_examples

    build_examples(write_dataset(tmp_path / "d", [feedback_set(analysed_photos, with_embedding=False)]),
                   tmp_path / "s")
    document = core.train_tagging_models(tmp_path / "s" / LABELLED_DIR)
    model = models_from_document(document)[OWNER]
    assert model.schema.embedding_dimensions == 0
    evaluation = core.evaluate(tmp_path / "s" / LABELLED_DIR, candidate_tagging=document)["tagging"]
    print(f"\nwithout image embedding: tag macro-F1 {evaluation['candidate']['macro_f1']:.4f} vs untrained "
          f"{evaluation['baseline']['macro_f1']:.4f}")
    assert evaluation["candidate"]["macro_f1"] > evaluation["baseline"]["macro_f1"]


def test_reapplication_suggests_custom_tags_and_suppresses_rejected_ones(core, photo_dataset, tagging_doc, faces_doc):
    rows, matchers = core.apply_models(photo_dataset, tagging_doc, faces_doc)
    suggestions = {(r["owner"], r["photo_id"]): {s["tag"]: s for s in r["suggestions"]} for r in rows}
    assert {owner for owner, _ in suggestions} == {OWNER}  # owner-tiny has no model: nothing re-applied
    coffee = [s for (o, pid), s in suggestions.items() if pid.startswith("coffee-")]
    obama = [s for (o, pid), s in suggestions.items() if pid.startswith("obama-")]
    custom = sum(1 for s in coffee if s.get("grandma's house", {}).get("confidence", 0) >= SUGGEST_FROM)
    assert custom >= len(coffee) - 1  # suggested on (nearly) every coffee photo...
    assert not any(s.get("grandma's house", {}).get("confidence", 0) >= SUGGEST_FROM for s in obama)  # ...not here
    texts = [s for (o, pid), s in suggestions.items() if pid.startswith("text-")]
    wrong_animals = [s["animal"] for s in texts if "animal" in s and s["animal"]["on_photo"]]
    assert all(a["confidence"] < SUPPRESS_BELOW for a in wrong_animals)  # analysis said animal on a text page
    assert set(matchers) == {OWNER}
    assert 0 < matchers_from_document({"owners": matchers})[OWNER].threshold < 1

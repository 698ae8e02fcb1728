"""Cross-fitted evaluation (learning.cross_fitting, training_core.evaluate): folds by photo content, every labelled
example judged once by a model fitted without its fold, the gate on the pooled evidence."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.learning.cross_fitting import FOLDS, fold_of, out_of_fold
from photo_organizer.learning.datasets import FaceFeatures, PhotoFeatures, encode_vector, write_lines
from photo_organizer.learning.examples import (
    LABELLED_DIR,
    build_examples,
    read_face_examples,
    read_pair_examples,
    read_tagging_examples,
    read_tagging_examples_as_approved,
)
from photo_organizer.learning.promotion import HeldOutEvidence, decide

TAG = "grandma's house"


def test_folds_are_stable_near_uniform_and_follow_the_photo_content():
    ids = [f"photo-{i}" for i in range(2000)]
    first = [fold_of("o", i) for i in ids]
    assert first == [fold_of("o", i) for i in ids], "the same fold in every run"
    shares = np.bincount(first, minlength=FOLDS) / len(ids)
    assert set(first) == set(range(FOLDS)) and shares.min() > 0.16 and shares.max() < 0.24
    digests = [f"{n:064x}" for n in range(200)]
    assert [fold_of("ana", f"p{n}", split_key=d) for n, d in enumerate(digests)] == \
        [fold_of("bob", f"copy-{n}", split_key=d) for n, d in enumerate(digests)], \
        "copies of one photograph (same digest) share a fold whatever their owner and id"
    assert fold_of("ana", "p1") == fold_of("ana", "p1", split_key=None), "without a digest: owner and id"
    assert all(0 <= fold_of("o", i, folds=3) < 3 for i in ids)


def test_out_of_fold_predicts_every_item_once_by_a_model_fitted_without_its_fold():
    folds = [0, 1, 2, 0, None, 4, 1, 3]
    fitted = []

    def fit(k):
        fitted.append(k)
        return {"without": k, "seen": [i for i, f in enumerate(folds) if f is not None and f != k]}

    def predict(model, indexes):
        return [(model["without"], i in model["seen"]) for i in indexes]

    predictions = out_of_fold(folds, fit, predict)
    assert fitted == [0, 1, 2, 3, 4]  # one model per fold present
    assert predictions[4] is None  # no fold (a pair across two folds): never judged
    for i, fold in enumerate(folds):
        if fold is not None:
            assert predictions[i] == (fold, False), "judged by the model of its own fold, which never saw it"


def test_out_of_fold_refuses_a_predictor_that_loses_items():
    with pytest.raises(ValueError, match="fold 0"):
        out_of_fold([0, 0, 1], lambda k: k, lambda model, indexes: indexes[:1])


# ---- the evaluation over real files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def core():
    pytest.importorskip("sklearn", reason="training needs scikit-learn (the local extra)")
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sagemaker"))
    import training_core

    return training_core


def _event(n: int, kind: str, **fields) -> dict:
    return {"schema": 1, "feedback_id": f"{n:032x}", "owner": "ana", "type": kind,
            "created_at": f"2026-11-01T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z", **fields}


def labelled(root: Path, photos: int = 80, *, faces: bool = False) -> Path:
    """`photos` photos, half of houses (analysis: house/building) and half of dogs; the owner added "grandma's
    house" to every house and rejected it on every dog. faces: one face per photo, two people far apart in
    descriptor space, every face assigned (analysis never names a person)."""
    rng = np.random.default_rng(0)
    rows, face_rows, lines = [], [], []
    for n in range(photos):
        house = n % 2 == 0
        labels = {"house": float(rng.uniform(50, 95)), "building": 80.0} if house else \
            {"dog": float(rng.uniform(50, 95)), "animal": 90.0}
        rows.append(PhotoFeatures(owner="ana", photo_id=f"p{n:03d}", analysed_at="2026-11-01T00:00:00Z",
                                  labels=labels, split_key=f"{n:064x}"))
        lines.append(_event(n, "tag_added" if house else "tag_rejected", photo_id=f"p{n:03d}", tag=TAG))
        if faces:
            person = "ana-mum" if n % 3 else "ana-dad"
            centre = np.full(128, 0.04 if person == "ana-mum" else -0.04, dtype=np.float32)
            face_rows.append(FaceFeatures(owner="ana", face_id=f"f{n:03d}", photo_id=f"p{n:03d}", quality=0.7,
                                          box_area=0.05, descriptor=encode_vector(
                                              centre + 0.02 * rng.standard_normal(128), "float32")))
            lines.append(_event(10_000 + n, "face_assigned", face_id=f"f{n:03d}", person_id=person))
    write_lines(root / "dataset" / "features" / "photos.jsonl", rows)
    write_lines(root / "dataset" / "features" / "faces.jsonl", face_rows)
    part = root / "dataset" / "feedback" / "date=2026-11-01" / "part.jsonl"
    part.parent.mkdir(parents=True)
    part.write_text("".join(json.dumps(e) + "\n" for e in lines))
    build_examples(root / "dataset", root / "sets")
    return root / "sets" / LABELLED_DIR


def test_pooled_evidence_covers_every_labelled_example_once_and_no_fold_model_saw_what_it_judged(
        core, tmp_path, monkeypatch):
    examples = labelled(tmp_path, faces=True)
    rows = read_tagging_examples(examples)
    pairs = read_pair_examples(examples)
    face_fold = {f.face_id: f.fold for f in read_face_examples(examples)}
    fitted_tags, fitted_faces = [], []
    fit_tagging, fit_faces = core.fit_tagging_models, core.fit_face_matchers

    def spy_tagging(fit_rows, **hp):
        fitted_tags.append({r.fold for r in fit_rows})
        return fit_tagging(fit_rows, **hp)

    def spy_faces(pair_rows, face_rows, **hp):
        fitted_faces.append(({f.fold for f in face_rows}, {face_fold[x] for p in pair_rows for x in (p.a, p.b)}))
        return fit_faces(pair_rows, face_rows, **hp)

    candidate_tagging = core.train_tagging_models(examples)
    candidate_faces = core.train_face_matchers(examples, projection="off")
    monkeypatch.setattr(core, "fit_tagging_models", spy_tagging)
    monkeypatch.setattr(core, "fit_face_matchers", spy_faces)
    evaluation = core.evaluate(examples, candidate_tagging=candidate_tagging, candidate_faces=candidate_faces)

    tagging = evaluation["tagging"]
    assert tagging["examples"] == len(rows) == 80 and tagging["folds"] == FOLDS
    evidence = HeldOutEvidence.from_json(tagging["held_out"])
    assert evidence.examples == len(rows)  # every labelled photo judged, not a held-out quarter
    judged = [int(r[0]) for r in evidence.candidate]  # one row per example and label, but true negatives add none
    assert len(judged) == len(set(judged)), "one label here: no example counted twice"
    assert set(judged) >= {i for i, r in enumerate(rows) if r.targets[TAG]}, "every positive label is counted"
    # one refit per fold, each without that fold: the fold it then judges
    assert sorted(set(range(FOLDS)) - seen for seen in fitted_tags) == [{k} for k in range(FOLDS)]

    faces = evaluation["faces"]
    within = [p for p in pairs if p.fold is not None]
    assert faces["pairs"] == len(within) > 0 and faces["pairs_across_folds"] == len(pairs) - len(within) > 0
    for seen_faces, seen_in_pairs in fitted_faces:
        [left_out] = set(range(FOLDS)) - seen_faces
        assert left_out not in seen_in_pairs, "a fold's matcher is fitted on no pair touching the fold it judges"


def test_a_clearly_better_candidate_is_promoted_over_the_untrained_behaviour(core, tmp_path):
    examples = labelled(tmp_path)
    evaluation = core.evaluate(examples, candidate_tagging=core.train_tagging_models(examples))
    section = evaluation["tagging"]
    # analysis never says "grandma's house": the untrained behaviour scores 0 on the owner's own tag
    assert section["approved"]["untrained"] and section["baseline"]["macro_f1"] == 0.0
    assert section["candidate"]["macro_f1"] > 0.9, "judged out of fold, the recipe still learnt the tag"
    assert section["promote"] and section["gate_passed"] == 1 and section["decision"]["gain_lower_bound"] > 0
    assert "80 held-out examples" in section["decision"]["reason"]
    assert decide(evaluation, "tagging").promote  # the pipeline and the local service re-judge the file alike


def test_a_worse_candidate_is_refused_and_the_approved_one_kept(core, tmp_path):
    examples = labelled(tmp_path)
    approved = core.train_tagging_models(examples)
    worse = core.train_tagging_models(examples, c=1e-6)  # all but no learning: the recipe is what is refitted
    assert worse["hyperparameters"]["c"] == 1e-6
    evaluation = core.evaluate(examples, candidate_tagging=worse, approved_tagging=approved)
    section = evaluation["tagging"]
    assert section["candidate"]["macro_f1"] < section["approved"]["macro_f1"]
    assert not section["promote"] and section["gate_passed"] == 0
    assert "does not beat the approved" in section["decision"]["reason"]


def test_the_approved_model_judged_in_sample_is_never_beaten_by_its_own_recipe(core, tmp_path):
    """The approved model's score is in sample (it was fitted on these examples): the same recipe judged out of
    fold can at best tie it, so retraining on unchanged feedback never promotes (the conservative side)."""
    examples = labelled(tmp_path)
    approved = core.train_tagging_models(examples)
    section = core.evaluate(examples, candidate_tagging=approved, approved_tagging=approved)["tagging"]
    assert section["candidate"]["macro_f1"] <= section["approved"]["macro_f1"] and not section["promote"]


def test_too_little_data_is_skipped_with_a_reason(core, tmp_path):
    examples = labelled(tmp_path, photos=8)
    document = core.train_tagging_models(examples)
    assert document["owners"] == {} and "fewer than min_examples" in document["skipped"]["ana"]
    evaluation = core.evaluate(examples, candidate_tagging=document)
    assert not evaluation["tagging"]["promote"]
    assert "no owner had enough feedback" in evaluation["tagging"]["decision"]["reason"]
    # a recipe that does train, on too few judged examples: the gate says so rather than guess
    small = core.train_tagging_models(examples, min_examples=2, min_tag_examples=1)
    reason = core.evaluate(examples, candidate_tagging=small)["tagging"]["decision"]["reason"]
    assert "too few held-out examples to judge: 8 < 10" in reason


# ---- the approved model judged out of fold, on the feedback it was trained on ---------------------------------------


def _examples_at(root: Path, examples_root: Path, *, approved_through: str | None = None) -> Path:
    build_examples(root / "dataset", examples_root, approved_through=approved_through)
    return examples_root / LABELLED_DIR


def _keep_first_events(root: Path, count: int) -> Path:
    """A copy of the dataset holding only the first `count` feedback events: what an earlier run trained on."""
    earlier = root / "earlier"
    shutil.copytree(root / "dataset", earlier / "dataset")
    part = earlier / "dataset" / "feedback" / "date=2026-11-01" / "part.jsonl"
    part.write_text("".join(part.read_text().splitlines(keepends=True)[:count]))
    return earlier


def test_preprocess_rebuilds_the_examples_the_approved_model_was_trained_on(core, tmp_path):
    labelled(tmp_path)
    earlier = _keep_first_events(tmp_path, 40)
    approved = core.train_tagging_models(_examples_at(earlier, earlier / "sets"))
    assert approved["feedback_through"] == "2026-11-01T10:00:39+00:00", "the newest event it was trained on"
    examples = _examples_at(tmp_path, tmp_path / "now", approved_through=approved["feedback_through"])
    rebuilt = read_tagging_examples_as_approved(examples)
    then = read_tagging_examples(earlier / "sets" / LABELLED_DIR)
    assert [(r.photo.photo_id, r.targets, r.weights, r.fold) for r in rebuilt] == \
        [(r.photo.photo_id, r.targets, r.weights, r.fold) for r in then] and len(rebuilt) == 40
    assert len(read_tagging_examples(examples)) == 80
    assert read_tagging_examples_as_approved(_examples_at(tmp_path, tmp_path / "none")) is None


def _append_events(root: Path, events: list[dict]) -> None:
    part = root / "dataset" / "feedback" / "date=2026-11-01" / "part.jsonl"
    part.write_text(part.read_text() + "".join(json.dumps(e) + "\n" for e in events))


def test_a_few_positive_tag_the_approved_model_was_fitted_on_is_judged_in_sample_for_both(core, tmp_path):
    """"homework" on four photos: out of fold each fold model would keep three and miss the fourth, which the
    approved model, fitted on all four, recalls. Where the approved model saw those labels the candidate is judged
    as it is too; "grandma's house" (40 positives) stays out of fold."""
    labelled(tmp_path)
    homework = [f"p{n:03d}" for n in (1, 3, 5, 7)]  # four dogs, say: any photos
    _append_events(tmp_path, [_event(100 + k, "tag_added", photo_id=p, tag="homework")
                              for k, p in enumerate(homework)])
    approved = core.train_tagging_models(_examples_at(tmp_path, tmp_path / "then"))
    # then the owner answers more: "dog" rejected on a few photos (new labels, judged out of fold)
    _append_events(tmp_path, [_event(200 + n, "tag_rejected", photo_id=f"p{n:03d}", tag="dog")
                              for n in range(11, 31, 2)])
    examples = _examples_at(tmp_path, tmp_path / "now", approved_through=approved["feedback_through"])
    rows = read_tagging_examples(examples)
    candidate = core.train_tagging_models(examples)
    section = core.evaluate(examples, candidate_tagging=candidate, approved_tagging=approved)["tagging"]

    in_sample = section["judged_in_sample_for_both"]
    assert set(in_sample) == {"ana/homework"}, "few positives, seen by the approved model: judged in sample"
    assert in_sample["ana/homework"] == len(read_tagging_examples_as_approved(examples)), \
        "every photo the approved model was fitted on carries a homework label (weak or not), unchanged since"
    # on those labels the candidate's evidence is its fitted model's own answers
    evidence = HeldOutEvidence.from_json(section["held_out"])
    label = evidence.labels.index("ana/homework")
    fitted = core._tag_guesses(rows, core.tag_models.models_from_document(candidate))
    recalled = {int(r[0]) for r in evidence.candidate if int(r[1]) == label and r[2] > 0}
    assert recalled == {i for i, r in enumerate(rows) if r.targets.get("homework") and "homework" in fitted[i]}
    assert recalled, "in sample, the fitted candidate recalls the photos it was given"


def test_without_the_rebuild_the_approved_model_is_in_sample_and_the_candidate_out_of_fold_everywhere(core, tmp_path):
    labelled(tmp_path)
    _append_events(tmp_path, [_event(100 + k, "tag_added", photo_id=f"p{n:03d}", tag="homework")
                              for k, n in enumerate((1, 3, 5, 7))])
    examples = _examples_at(tmp_path, tmp_path / "sets")
    approved = core.train_tagging_models(examples)
    section = core.evaluate(examples, candidate_tagging=approved, approved_tagging=approved)["tagging"]
    assert section["judged_in_sample_for_both"] == {}
    assert section["candidate"]["macro_f1"] <= section["approved"]["macro_f1"] and not section["promote"]


def test_retraining_on_unchanged_feedback_is_refused_the_many_positive_tag_judged_out_of_fold(core, tmp_path):
    labelled(tmp_path)
    approved = core.train_tagging_models(_examples_at(tmp_path, tmp_path / "then"))
    examples = _examples_at(tmp_path, tmp_path / "now", approved_through=approved["feedback_through"])
    candidate = core.train_tagging_models(examples)
    section = core.evaluate(examples, candidate_tagging=candidate, approved_tagging=approved)["tagging"]
    assert section["judged_in_sample_for_both"] == {}, "40 positives: cross-fitting can judge it"
    assert section["candidate"]["macro_f1"] <= section["approved"]["macro_f1"] and not section["promote"]

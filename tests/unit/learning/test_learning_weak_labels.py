"""What the owner said outweighs what they left: a weak positive (an analysis tag left on a reviewed photo) counts
only as far as the owner's own answers about that tag where analysis put it back it (learning.examples.weak_trust),
in training and in the gate alike."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.learning.datasets import PhotoFeatures, write_lines
from photo_organizer.learning.evidence import WEAK_EVAL_WEIGHT, judged_trust, label_weight
from photo_organizer.learning.examples import (
    KEEP_PRIOR,
    LABELLED_DIR,
    WEAK_WEIGHT,
    build_examples,
    keep_rate,
    read_tagging_examples,
    trusted_weights,
    weak_trust,
)
from photo_organizer.learning.tagging import SUPPRESS_BELOW, models_from_document


@pytest.fixture(scope="module")
def core():
    pytest.importorskip("sklearn", reason="training needs scikit-learn (the local extra)")
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sagemaker"))
    import training_core

    return training_core


class Library:
    """Photos and the owner's answers, written in the dataset layout and turned into labelled examples."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.photos: list[PhotoFeatures] = []
        self.events: list[dict] = []

    def photo(self, **labels: float) -> str:
        photo_id = f"p{len(self.photos):03d}"
        noisy = {name.replace("_", " "): float(np.clip(c + self.rng.normal(0, 8), 1, 99)) for name, c in labels.items()}
        self.photos.append(PhotoFeatures(owner="ana", photo_id=photo_id, analysed_at="2026-11-01T00:00:00Z",
                                         labels=noisy, split_key=f"{len(self.photos):064x}"))
        return photo_id

    def answer(self, kind: str, photo_id: str, tag: str) -> None:
        n = len(self.events)
        self.events.append({"schema": 1, "feedback_id": f"{n + 1:032x}", "owner": "ana", "type": kind,
                            "photo_id": photo_id, "tag": tag,
                            "created_at": f"2026-11-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z"})

    def examples(self, root: Path):
        write_lines(root / "dataset" / "features" / "photos.jsonl", self.photos)
        part = root / "dataset" / "feedback" / "date=2026-11-01" / "part.jsonl"
        part.parent.mkdir(parents=True)
        part.write_text("".join(json.dumps(e) + "\n" for e in self.events))
        build_examples(root / "dataset", root / "sets")
        return read_tagging_examples(root / "sets" / LABELLED_DIR)


def fresh(**labels: float) -> PhotoFeatures:
    return PhotoFeatures(owner="ana", photo_id="new", analysed_at="2026-11-01T00:00:00Z",
                         labels={name.replace("_", " "): c for name, c in labels.items()})


def test_the_trust_of_weak_positives_is_the_keep_rate_of_the_owners_answers_where_analysis_put_the_tag(tmp_path):
    library = Library()
    for n in range(12):
        photo = library.photo(person=90, clothing=70)
        if n < 3:
            library.answer("tag_rejected", photo, "clothing")
        elif n < 4:
            library.answer("tag_confirmed", photo, "clothing")
        else:
            library.answer("tag_confirmed", photo, "person")
    rows = library.examples(tmp_path)
    trust = weak_trust(rows)
    assert trust == {("ana", "clothing"): pytest.approx((1 + KEEP_PRIOR) / (4 + KEEP_PRIOR))}, \
        "person was never rejected: its weak positives keep their whole weight"
    assert keep_rate(0, 0) == 1.0 and keep_rate(0, 3) < keep_rate(1, 3) < keep_rate(0, 0)
    left = next(r for r in rows if r.is_weak("clothing") and r.targets["clothing"] == 1)
    weight = trusted_weights([left], "clothing", trust)[0]
    assert weight == pytest.approx(WEAK_WEIGHT * trust[("ana", "clothing")])
    assert label_weight(left, "clothing", trust=trust) == pytest.approx(WEAK_EVAL_WEIGHT * trust[("ana", "clothing")])
    assert label_weight(left, "person", trust=trust) == 1.0 or not left.is_weak("person")
    # the gate counts only what the owner kept where asked: 1 of 4 (the training adds its prior to rank photos)
    assert judged_trust(rows) == {("ana", "clothing"): pytest.approx(1 / 4)}
    # a fold model counts the answers of its own rows only: without the rejections, no doubt about the tag
    assert weak_trust([r for r in rows if not (r.targets.get("clothing") == 0 and not r.is_weak("clothing"))]) == {}


def owner_who_never_wants_clothing(people: int = 40, others: int = 20) -> Library:
    """`people` photos analysis tags clothing (with person, and suit on two in three): the owner was asked about
    clothing on one in four and said no each time, and confirmed "person" on the rest; `others` photos of trees,
    reviewed ("tree" confirmed), without clothing."""
    library = Library()
    for n in range(people):
        photo = library.photo(person=90, clothing=70, suit=60 if n % 3 else 5)
        library.answer("tag_rejected" if n % 4 == 0 else "tag_confirmed", photo, "clothing" if n % 4 == 0 else "person")
    for _ in range(others):
        library.answer("tag_confirmed", library.photo(tree=85, plant=90), "tree")
    return library


def test_a_tag_rejected_on_every_photo_asked_about_is_suppressed_on_a_new_photo(core, tmp_path):
    """Thirty reviewed photos keep "clothing" only because nobody asked about it there; the ten times the owner
    was asked, they said no. At full weight those thirty outvoted the ten and the tag stayed everywhere."""
    model = models_from_document(core.fit_tagging_models(owner_who_never_wants_clothing().examples(tmp_path)))["ana"]
    new = fresh(person=90, clothing=72, suit=60)
    [clothing] = [s for s in model.suggest(new) if s.tag == "clothing"]
    assert clothing.on_photo and clothing.confidence < SUPPRESS_BELOW
    assert "clothing" not in model.predicted_tags(new) and "person" in model.predicted_tags(new)


def test_a_tag_confirmed_on_some_photos_and_rejected_on_others_is_decided_per_photo(core, tmp_path):
    """"tie" is right on the suits and wrong on the dogs (analysis sees a collar): the owner said so on a few of
    each, and left it on other suits. A new suit keeps its tie; a new dog loses it."""
    library = Library()
    for n in range(48):
        if n % 2:
            photo = library.photo(person=90, suit=80, tie=70)
            library.answer("tag_confirmed", photo, "tie" if n % 6 == 1 else "person")
        else:
            photo = library.photo(dog=85, animal=90, tie=60)
            library.answer("tag_rejected" if n % 4 == 0 else "tag_confirmed", photo, "tie" if n % 4 == 0 else "dog")
    model = models_from_document(core.fit_tagging_models(library.examples(tmp_path)))["ana"]
    assert "tie" in model.predicted_tags(fresh(person=90, suit=80, tie=70))
    assert "tie" not in model.predicted_tags(fresh(dog=85, animal=90, tie=60))


def test_a_rare_tag_rejected_a_few_times_gets_its_keep_rate_on_every_photo(core, tmp_path):
    """Too few photos keep "mask" to fit a model of where it fits; the owner's noes are still an answer."""
    library = Library()
    for n in range(30):
        labels = {"person": 90, "mask": 60} if n < 4 else {"person": 90}
        photo = library.photo(**labels)
        library.answer("tag_rejected" if n < 3 else "tag_confirmed", photo, "mask" if n < 3 else "person")
    document = core.fit_tagging_models(library.examples(tmp_path))
    model = models_from_document(document)["ana"]
    assert document["owners"]["ana"]["info"]["keep_rate_tags"] == {"mask": pytest.approx(keep_rate(0, 3), abs=1e-4)}
    assert keep_rate(0, 3) < SUPPRESS_BELOW and "mask" not in model.predicted_tags(fresh(person=90, mask=60))


def test_the_gate_prefers_the_candidate_that_drops_a_tag_the_owner_always_rejected_and_refuses_a_worse_one(
        core, tmp_path):
    owner_who_never_wants_clothing(people=60).examples(tmp_path)
    examples = tmp_path / "sets" / LABELLED_DIR
    candidate = core.train_tagging_models(examples)
    section = core.evaluate(examples, candidate_tagging=candidate)["tagging"]
    # the untrained behaviour keeps clothing: every rejection is a false positive, the weak "kept" count little
    assert section["candidate"]["macro_f1"] > section["approved"]["macro_f1"] and section["promote"]
    # and the gate is no easier: a candidate that learnt nothing does not replace the one that did
    worse = core.train_tagging_models(examples, c=1e-6)
    refused = core.evaluate(examples, candidate_tagging=worse, approved_tagging=candidate)["tagging"]
    assert not refused["promote"]


# ---- the owner's own tags: a reviewed photo without one is no answer about it ----------------------------------------


def owner_who_tags_some_houses(tagged: int = 8, houses: int = 60, dogs: int = 40, rejected: int = 6) -> Library:
    """Every house is grandma's house, but the owner added the tag to `tagged` of them only; every other photo was
    reviewed through one answer about another tag ("dog" rejected on the houses, confirmed on the dogs), so each
    carries a weak "no" for grandma's house; `rejected` suggestions of it on dogs were rejected."""
    library = Library()
    house_ids = [library.photo(house=80, building=75, dog=30) for _ in range(houses)]
    dog_ids = [library.photo(dog=85, animal=90) for _ in range(dogs)]
    for photo in house_ids[:tagged]:
        library.answer("tag_added", photo, "grandma's house")
    for photo in house_ids[tagged:]:
        library.answer("tag_rejected", photo, "dog")
    for n, photo in enumerate(dog_ids):
        library.answer("tag_rejected" if n < rejected else "tag_confirmed", photo,
                       "grandma's house" if n < rejected else "dog")
    return library


def test_the_gate_counts_no_weak_no_of_a_tag_the_owner_adds_themselves(tmp_path):
    rows = owner_who_tags_some_houses().examples(tmp_path)
    trust = judged_trust(rows)
    assert trust[("ana", "grandma's house", 0)] == 0.0
    assert ("ana", "dog", 0) not in trust, "analysis tags' weak negatives keep their share"
    untagged_house = next(r for r in rows if r.is_weak("grandma's house") and r.targets["grandma's house"] == 0
                          and "house" in r.photo.labels)
    assert label_weight(untagged_house, "grandma's house", trust=trust) == 0.0
    assert label_weight(untagged_house, "grandma's house") == WEAK_EVAL_WEIGHT, "without the trust: as before"
    rejected_on_a_dog = next(r for r in rows if r.targets.get("grandma's house") == 0
                             and not r.is_weak("grandma's house"))
    assert label_weight(rejected_on_a_dog, "grandma's house", trust=trust) == 1.0, "what the owner said counts"


def test_an_added_tag_is_calibrated_on_what_the_owner_said_not_on_the_weak_nos(core, tmp_path):
    """Calibrated on 52 weak "no"s on houses it fits, the probabilities sank to the share of photos the owner
    happened to tag and grandma's house was suggested on no house; calibrated on the 8 additions and 6 rejected
    suggestions, it is suggested on the houses and not on the dogs."""
    rows = owner_who_tags_some_houses().examples(tmp_path)
    document = core.fit_tagging_models(rows)
    model = models_from_document(document)["ana"]
    assert "grandma's house" in model.info["calibrated_tags"]
    p = model.probabilities([r.photo for r in rows])[:, model.tags.index("grandma's house")]
    houses = np.array(["house" in r.photo.labels for r in rows])
    untagged = np.array([r.is_weak("grandma's house") for r in rows]) & houses
    assert np.median(p[untagged]) >= 0.5, "suggested on the houses the owner did not get round to"
    assert np.median(p[~houses]) < 0.5

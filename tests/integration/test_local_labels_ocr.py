"""Local labels (EfficientNet-Lite0 via onnxruntime + the curated ImageNet vocabulary), OCR (RapidOCR) and nudity
screening (NudeNet, optional) on the real sample photos, at the preview size production analyses.

The vocabulary and moderation-mapping tests are pure and always run; each model test skips with its reason when
its package (or, for labels, the exported model file) is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.adapters.local.moderation import NudeNetScreener, moderation_labels
from photo_organizer.analysis.models import LabelSource
from photo_organizer.adapters.local.vocabulary import (
    CLASS_TAGS,
    IMAGENET_CLASSES,
    TAG_PARENTS,
    ancestors,
    labels_from_logits,
    labels_from_probabilities,
    split_labels,
)
from photo_organizer.errors import ConfigurationError, InvalidImageError
from photo_organizer.imaging import derive

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
MODEL = ROOT / "build" / "models" / "efficientnet_lite0.onnx"
ORDINARY = ("chelsea.png", "coffee.png", "rocket.jpg", "obama.jpg", "astronaut.png")


@pytest.fixture(scope="module")
def previews() -> dict[str, bytes]:
    names = {*ORDINARY, "coffee_with_text.jpg", "text.png"}
    return {name: derive((SAMPLES / name).read_bytes()).preview_jpeg for name in names}


def _probabilities(**by_class: float) -> np.ndarray:
    """A softmax-like vector: the given class probabilities, the rest spread evenly over unmapped classes."""
    p = np.zeros(IMAGENET_CLASSES)
    for key, value in by_class.items():
        p[int(key.removeprefix("c"))] = value
    unmapped = [i for i in range(IMAGENET_CLASSES) if i not in CLASS_TAGS]
    p[unmapped] = (1.0 - p.sum()) / len(unmapped)
    return p


# ---------------------------------------------------------------- vocabulary (pure)


def test_vocabulary_maps_at_least_300_valid_imagenet_ids_to_known_tags() -> None:
    assert len(CLASS_TAGS) >= 300
    assert all(0 <= class_id < IMAGENET_CLASSES for class_id in CLASS_TAGS)
    assert set(CLASS_TAGS.values()) <= set(TAG_PARENTS)
    assert all(parent in TAG_PARENTS for parents in TAG_PARENTS.values() for parent in parents)


def test_every_parent_chain_ends_at_a_root_without_cycles() -> None:
    def walk(tag: str, path: tuple[str, ...]) -> None:
        assert tag not in path, f"cycle: {' -> '.join((*path, tag))}"
        parents = TAG_PARENTS[tag]
        for parent in parents:
            walk(parent, (*path, tag))

    for tag in TAG_PARENTS:
        walk(tag, ())
        chain = ancestors(tag)
        assert all(a in TAG_PARENTS for a in chain)
        assert not chain or any(TAG_PARENTS[a] == () for a in chain), f"{tag} never reaches a root"


def test_every_dog_breed_and_domestic_cat_maps_to_dog_and_cat() -> None:
    assert {CLASS_TAGS[i] for i in range(151, 269)} == {"Dog"}
    assert {CLASS_TAGS[i] for i in range(281, 286)} == {"Cat"}
    assert set(ancestors("Cat")) == {"Mammal", "Pet", "Animal"}


def test_probabilities_of_classes_with_one_tag_add_up_and_parents_carry_the_subtree_mass() -> None:
    # tabby 0.3 + tiger cat 0.25 + Egyptian cat 0.2 = Cat 75%; lynx (a Big Cat) 0.1 joins at Mammal/Animal
    labels = labels_from_probabilities(_probabilities(c281=0.3, c282=0.25, c285=0.2, c287=0.1), min_confidence=20)
    by_name = {label.name: label for label in labels}
    assert by_name["Cat"].confidence == pytest.approx(75.0)
    assert by_name["Pet"].confidence == pytest.approx(75.0)
    assert by_name["Mammal"].confidence == pytest.approx(85.0)
    assert by_name["Animal"].confidence == pytest.approx(85.0)
    assert "Big Cat" not in by_name  # 10% < min_confidence
    assert by_name["Cat"].parents == ("Mammal", "Pet", "Animal")
    assert all(label.source is LabelSource.LOCAL for label in labels)
    assert [label.confidence for label in labels] == sorted((label.confidence for label in labels), reverse=True)


def test_spread_over_many_birds_still_says_bird_and_raw_imagenet_names_never_appear() -> None:
    # ten bird classes at 6% each: no single tag passes 20%, their parent does; the Windsor tie maps to Tie
    labels = labels_from_probabilities(_probabilities(**{f"c{i}": 0.06 for i in range(10, 20)}, c906=0.3))
    names = {label.name for label in labels}
    assert {"Bird", "Animal", "Tie", "Accessories", "Formal Wear", "Clothing"} <= names
    assert "Windsor tie" not in names and "goldfinch" not in names


def test_unmapped_classes_are_dropped_and_top_k_limits_specific_tags() -> None:
    assert labels_from_probabilities(_probabilities(c646=0.9)) == ()  # maze: unmapped
    labels = labels_from_probabilities(_probabilities(c963=0.3, c967=0.3, c933=0.3), top_k=1, min_confidence=5)
    specific = [label.name for label in labels if label.name in {"Pizza", "Coffee", "Burger"}]
    assert len(specific) == 1


def test_weak_labels_are_the_other_top_guesses_from_the_weak_floor_with_their_new_ancestors() -> None:
    # espresso 60% (a label); cup 14% and daisy 8% (weak); golf ball 3% (under the weak floor)
    probabilities = _probabilities(c967=0.60, c968=0.14, c985=0.08, c574=0.03)
    labels, weak = split_labels(probabilities, min_confidence=20, weak_confidence=5)
    assert {label.name for label in labels} == {"Coffee", "Beverage", "Food and Drink"}
    by_name = {label.name: label for label in weak}
    # Cup's ancestors Tableware (not a label yet) come too; Food and Drink is a label already, so not weak
    assert set(by_name) == {"Cup", "Tableware", "Flower", "Plant", "Nature"}
    assert by_name["Cup"].confidence == pytest.approx(14.0) and by_name["Flower"].confidence == pytest.approx(8.0)
    assert "Ball" not in by_name and "Sport" not in by_name
    assert labels == labels_from_probabilities(probabilities, min_confidence=20)  # labels unchanged by weak ones
    assert split_labels(probabilities, min_confidence=20)[1] == ()  # no weak floor: no weak labels


def test_single_class_things_people_photograph_have_tags_with_parents() -> None:
    # ImageNet names a tripod, a flag (flagpole), a microphone, a lamp, a lighthouse by one class each: each used to
    # be dropped (camera.png: tripod 93% gave no tag at all)
    expected = {872: "Tripod", 557: "Flag", 650: "Microphone", 846: "Lamp", 437: "Lighthouse", 879: "Umbrella",
                825: "Wall", 587: "Tool", 909: "Cookware"}
    assert {i: CLASS_TAGS[i] for i in expected} == expected
    assert ancestors("Tripod") == ("Photography",) and "Photography" in ancestors("Camera")
    labels = labels_from_probabilities(_probabilities(c872=0.93))
    assert [label.name for label in labels] == ["Tripod", "Photography"]


def test_labels_from_logits_is_the_softmax_of_the_raw_outputs() -> None:
    logits = np.zeros(IMAGENET_CLASSES)
    logits[967] = 12.0  # espresso
    assert [label.name for label in labels_from_logits(logits)][:3] == ["Food and Drink", "Beverage", "Coffee"]
    with pytest.raises(ValueError):
        labels_from_probabilities(np.ones(10) / 10)


# ---------------------------------------------------------------- labels (onnxruntime + exported model)


@pytest.fixture(scope="module")
def labeler():
    pytest.importorskip("onnxruntime", reason="local labels need onnxruntime")
    if not MODEL.is_file():
        pytest.skip(f"{MODEL.relative_to(ROOT)} is missing: run `make label-model` (scripts/export_label_model.py)")
    from photo_organizer.adapters.local.labels import OnnxLabeler

    return OnnxLabeler(MODEL, threads=2)


@pytest.mark.parametrize(
    ("photo", "expected"),
    [
        ("chelsea.png", {"Cat", "Animal", "Pet"}),
        ("coffee.png", {"Coffee", "Beverage"}),
        ("obama.jpg", {"Suit", "Clothing"}),
    ],
)
def test_local_labels_name_what_the_sample_photo_shows(labeler, previews, photo: str, expected: set[str]) -> None:
    labels = labeler.labels(previews[photo])
    assert expected <= {label.name for label in labels}
    assert all(label.source is LabelSource.LOCAL and 0 <= label.confidence <= 100 for label in labels)


def test_rocket_launch_is_labelled_rocket_and_vehicle(labeler, previews) -> None:
    by_name = {label.name: label for label in labeler.labels(previews["rocket.jpg"])}
    assert {"Rocket", "Vehicle"} <= set(by_name)
    assert by_name["Rocket"].parents == ("Vehicle", "Transportation")


def test_cat_is_the_most_confident_specific_tag_of_chelsea(labeler, previews) -> None:
    labels = labeler.labels(previews["chelsea.png"])
    assert next(label for label in labels if label.name == "Cat").confidence > 70


def test_labeler_without_the_exported_model_says_how_to_make_it(tmp_path) -> None:
    from photo_organizer.adapters.local.labels import OnnxLabeler

    with pytest.raises(ConfigurationError, match="make label-model"):
        OnnxLabeler(tmp_path / "missing.onnx").labels(b"\xff\xd8 not read: the model is checked first")


def test_labeler_refuses_an_undecodable_preview(labeler) -> None:
    with pytest.raises(InvalidImageError):
        labeler.labels(b"\xff\xd8\xff\xe0 truncated")


# ---------------------------------------------------------------- OCR (rapidocr-onnxruntime)


@pytest.fixture(scope="module")
def reader():
    pytest.importorskip("rapidocr_onnxruntime", reason="local OCR needs rapidocr-onnxruntime")
    from photo_organizer.adapters.local.ocr import RapidOcrReader

    return RapidOcrReader(threads=2)


def test_ocr_reads_the_text_drawn_on_the_coffee_photo(reader, previews) -> None:
    # Drawn text: "PIKOLO ESPRESSO BAR" / "Open daily 7:00-17:00, Madison WI" / "Latte $4.50". The recogniser
    # drops the spaces of the wide bold title ("PIKOLOESPRESSOBAR"), so words are checked as substrings.
    lines = reader.read(previews["coffee_with_text.jpg"])
    text = " ".join(line.text for line in lines)
    assert "ESPRESSO" in text and "Madison" in text and "Latte" in text and "17:00" in text
    assert all(line.box is not None and 0 <= line.box.left <= 1 and 0 <= line.box.top <= 1 for line in lines)
    assert "ESPRESSO" in lines[0].text and lines[0].box.top < 0.15  # title band at the top, read first
    assert lines[-1].text.startswith("Latte") and lines[-1].box.top > 0.8

    from photo_organizer.adapters.local.ocr import text_labels

    labels = text_labels(lines)
    assert [label.name for label in labels] == ["Text"]  # three lines on a photo: text, not a document
    assert labels[0].source is LabelSource.OCR


def test_ocr_finds_no_text_on_photos_without_text(reader, previews) -> None:
    for photo in ("chelsea.png", "coffee.png", "rocket.jpg"):
        assert reader.read(previews[photo]) == (), photo


def test_ocr_on_handwritten_chalk_maths_reads_little_or_nothing(reader, previews) -> None:
    # text.png is handwritten maths on squared paper. RapidOCR finds a single line, "S=" at 0.56, which the
    # 0.6 floor drops: handwriting is out of reach of the local OCR, as the README says.
    lines = reader.read(previews["text.png"])
    assert len(lines) <= 2


def test_many_text_lines_make_a_document() -> None:
    from photo_organizer.adapters.local.ocr import text_labels
    from photo_organizer.analysis.models import BoundingBox, TextLine

    lines = [TextLine(text=f"line {i}", confidence=90.0, box=BoundingBox(left=0.1, top=i / 10, width=0.8,
                                                                         height=0.05)) for i in range(8)]
    assert [label.name for label in text_labels(lines)] == ["Text", "Document"]
    assert text_labels(()) == ()


# ---------------------------------------------------------------- moderation (nudenet, optional)


def test_moderation_mapping_follows_rekognition_names_and_never_outputs_gender() -> None:
    detections = [
        {"class": "FACE_FEMALE", "score": 0.99, "box": [0, 0, 1, 1]},
        {"class": "FACE_MALE", "score": 0.99, "box": [0, 0, 1, 1]},
        {"class": "BUTTOCKS_EXPOSED", "score": 0.7, "box": [0, 0, 1, 1]},
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.9, "box": [0, 0, 1, 1]},
        {"class": "FEMALE_BREAST_COVERED", "score": 0.6, "box": [0, 0, 1, 1]},
        {"class": "FEET_EXPOSED", "score": 0.95, "box": [0, 0, 1, 1]},
        {"class": "MALE_BREAST_EXPOSED", "score": 0.3, "box": [0, 0, 1, 1]},  # below 0.5
    ]
    labels = moderation_labels(detections)
    assert [(m.name, m.parent, m.taxonomy_level, m.confidence) for m in labels] == [
        ("Explicit", None, 1, 90.0),
        ("Explicit Nudity", "Explicit", 2, 90.0),
        ("Swimwear or Underwear", None, 1, 60.0),
    ]
    dumped = json.dumps([m.model_dump() for m in labels]).casefold()
    assert "female" not in dumped and "male" not in dumped and "face" not in dumped


def test_screener_reports_its_availability_without_importing_nudenet() -> None:
    assert isinstance(NudeNetScreener.available(), bool)


def test_nudenet_flags_nothing_sensitive_on_ordinary_photos(previews) -> None:
    pytest.importorskip("nudenet", reason="nudity screening is optional: nudenet is not installed (licence review)")
    screener = NudeNetScreener()
    for photo in ORDINARY:
        labels = screener.screen(previews[photo])
        assert not [m for m in labels if m.confidence >= 80], (photo, labels)

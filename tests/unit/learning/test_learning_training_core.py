"""sagemaker/training_core.py on synthetic data: atomic model files, model archives, the projection head's scale,
tiny owners. (The real-photo runs are in tests/integration/learning.)"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="training needs scikit-learn (the local extra)")
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sagemaker"))

import training_core  # noqa: E402

from photo_organizer.learning.examples import FaceExample, PairExample  # noqa: E402
from photo_organizer.learning.datasets import encode_vector  # noqa: E402
from photo_organizer.learning.faces import FaceMatcher, similarities_from_distances  # noqa: E402


def test_write_json_atomic_keeps_the_old_file_when_the_new_one_cannot_be_written(tmp_path):
    target = tmp_path / "model.json"
    training_core.write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):
        training_core.write_json_atomic(target, {"v": object()})  # fails half-way through serialising
    assert json.loads(target.read_text()) == {"v": 1} and [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_model_documents_load_from_a_folder_an_archive_or_not_at_all(tmp_path):
    (tmp_path / "plain").mkdir()
    training_core.write_json_atomic(tmp_path / "plain" / "model.json", {"kind": "faces", "owners": {}})
    (tmp_path / "packed").mkdir()
    with tarfile.open(tmp_path / "packed" / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "plain" / "model.json", arcname="model.json")
    assert training_core.load_model_document(tmp_path / "plain") == {"kind": "faces", "owners": {}}
    assert training_core.load_model_document(tmp_path / "packed") == {"kind": "faces", "owners": {}}
    assert training_core.load_model_document(tmp_path / "missing") is None
    assert training_core.load_model_document(None) is None


def synthetic_faces(rng, people=4, per_person=8, spread=0.25):
    centres = {f"person-{k}": rng.standard_normal(128) * 0.09 for k in range(people)}
    faces = []
    for person, centre in centres.items():
        for i in range(per_person):
            vector = centre + rng.standard_normal(128) * spread / np.sqrt(128)
            faces.append(FaceExample("o", f"{person}-{i}", f"photo-{person}-{i}", person, [],
                                     float(rng.uniform(0.2, 0.9)), 0.05, encode_vector(vector, "float32")))
    pairs = []
    for i, a in enumerate(faces):
        for b in faces[i + 1:]:
            distance = float(np.linalg.norm(a.descriptor_vector() - b.descriptor_vector()))
            pairs.append(PairExample("o", a.face_id, b.face_id, a.person == b.person,
                                     float(similarities_from_distances(distance)), a.quality, b.quality, 0.05, 0.05))
    return faces, pairs


def test_a_forced_projection_head_stays_on_the_descriptors_distance_scale():
    faces, pairs = synthetic_faces(np.random.default_rng(3))
    hp = {**training_core.FACES_DEFAULTS, "projection": "on"}
    matcher = training_core._train_owner_matcher("o", pairs, faces, hp)
    assert matcher.projection is not None and matcher.projection.shape == (128, 128)
    assert 0.05 < matcher.threshold < 0.99  # not saturated at the scale's ends
    same = [p for p in pairs if p.same][:20]
    different = [p for p in pairs if not p.same][:20]
    vectors = {f.face_id: f.descriptor_vector() for f in faces}
    assert np.mean([matcher.similarity(vectors[p.a], vectors[p.b]) for p in same]) > matcher.threshold
    assert np.mean([matcher.similarity(vectors[p.a], vectors[p.b]) for p in different]) < matcher.threshold
    again = FaceMatcher.from_json(json.loads(json.dumps(matcher.to_json())))
    assert again.threshold == pytest.approx(matcher.threshold)


def test_owners_without_enough_pairs_are_skipped_with_the_reason(tmp_path):
    faces, pairs = synthetic_faces(np.random.default_rng(4), people=2, per_person=2)
    (tmp_path / "face_pairs.jsonl").write_text("".join(json.dumps(p.__dict__) + "\n" for p in pairs))
    document = training_core.train_face_matchers(tmp_path)
    assert document["owners"] == {} and "needs min_pairs=10" in document["skipped"]["o"]

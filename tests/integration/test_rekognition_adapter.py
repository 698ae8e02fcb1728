"""RekognitionAnalyzer against botocore's Stubber: moto implements no collection, IndexFaces or SearchFaces, and
its DetectLabels is canned. Every test asserts the exact request we send and replays a recorded response shape
(tests/data/rekognition, or the API reference examples shipped in botocore's examples-1.json); the Stubber also
validates both against botocore's service model, and fails on any call that was not expected."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer
from photo_organizer.analysis.models import AnalysisPlan, ApiCall
from photo_organizer.errors import AnalysisRefusedError, AnalysisThrottledError, ConfigurationError
from photo_organizer.people.models import SimilarityEdge

DATA = Path(__file__).resolve().parents[1] / "data" / "rekognition"
BUCKET = "po-previews-test"
OWNER, PHOTO = "alice", "0190c0ffee0000000000000000000001"
PREVIEW = {"S3Object": {"Bucket": BUCKET, "Name": f"previews/{OWNER}/{PHOTO}.jpg"}}
COLLECTION = f"photo-organizer-{OWNER}"
LABELS_PARAMS = {"Image": PREVIEW, "MaxLabels": 50, "MinConfidence": 55.0, "Features": ["GENERAL_LABELS"]}
INDEX_PARAMS = {
    "CollectionId": COLLECTION, "Image": PREVIEW, "ExternalImageId": PHOTO, "DetectionAttributes": ["DEFAULT"],
    "MaxFaces": 15, "QualityFilter": "AUTO",
}


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def api_example(operation: str) -> dict[str, Any]:
    """The output of the API reference example for an operation, as botocore ships it."""
    loader = botocore.session.get_session().get_component("data_loader")
    return copy.deepcopy(loader.load_service_model("rekognition", "examples-1")["examples"][operation][0]["output"])


def plan(*calls: ApiCall, photo_id: str = PHOTO) -> AnalysisPlan:
    return AnalysisPlan(owner=OWNER, photo_id=photo_id, analysis_version=3, calls=frozenset(calls))


@pytest.fixture
def rekognition():
    client = boto3.client(
        "rekognition", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.fixture
def throttled() -> list[ApiCall]:
    return []


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def analyzer(rekognition, throttled, sleeps) -> RekognitionAnalyzer:
    client, _ = rekognition
    return RekognitionAnalyzer(
        previews_bucket=BUCKET, collection_prefix="photo-organizer", client_factory=lambda: client, throttle=throttled.append,
        max_attempts=3, sleep=sleeps.append, rng=lambda: 0.5,
    )


def test_phase_one_labels_and_moderation_request_and_recorded_response_shape(analyzer, rekognition, throttled):
    _, stubber = rekognition
    stubber.add_response("detect_labels", recorded("detect_labels"), LABELS_PARAMS)
    stubber.add_response("detect_moderation_labels", recorded("detect_moderation_labels"), {"Image": PREVIEW})

    result = analyzer.analyze(b"", plan(ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS))

    stubber.assert_no_pending_responses()
    assert throttled == [ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS]  # and no DetectText, no IndexFaces
    assert [label.name for label in result.labels] == ["Person", "Beach", "Sea", "Sand"]
    assert result.labels[1].parents == ("Coast", "Nature", "Outdoors", "Sea", "Shoreline", "Water")
    assert result.photo_id == PHOTO and result.analysis_version == 3
    assert [m.name for m in result.moderation_labels] == ["Swimwear or Underwear", "Female Swimwear or Underwear"]
    assert result.sensitive and result.faces == () and result.text_lines == ()


def test_index_faces_request_and_recorded_response_shape(analyzer, rekognition, throttled):
    _, stubber = rekognition
    stubber.add_response("index_faces", recorded("index_faces"), INDEX_PARAMS)

    result = analyzer.analyze(b"", plan(ApiCall.INDEX_FACES))

    stubber.assert_no_pending_responses()
    assert throttled == [ApiCall.INDEX_FACES]
    assert [f.face_handle for f in result.faces] == [
        "ff43d742-0c13-5d16-a3e8-03d3f58e980b", "8be04dba-4e58-520d-850e-9eae4af70eb2"
    ]
    assert result.faces[1].quality.sharpness == 100.0  # the reference example's 160, clamped
    assert result.labels == () and result.moderation_labels == ()


def test_index_faces_unindexed_and_edge_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    stubber.add_response("index_faces", recorded("index_faces_unindexed_and_edge"), INDEX_PARAMS)

    result = analyzer.analyze(b"", plan(ApiCall.INDEX_FACES))

    assert [f.face_handle for f in result.faces] == ["11111111-2222-4333-8444-555555555555", None, None]
    assert result.faces[0].box.left == 0.0


def test_detect_text_only_when_planned_request_and_recorded_response_shape(analyzer, rekognition, throttled):
    _, stubber = rekognition
    stubber.add_response("detect_text", recorded("detect_text"), {"Image": PREVIEW})

    result = analyzer.analyze(b"", plan(ApiCall.DETECT_TEXT))

    stubber.assert_no_pending_responses()
    assert throttled == [ApiCall.DETECT_TEXT]
    assert [line.text for line in result.text_lines] == ["IT'S", "MONDAY"]  # WORD duplicates dropped


def test_empty_plan_makes_no_call_request_and_recorded_response_shape(analyzer, throttled):
    result = analyzer.analyze(b"", plan())  # a Stubber with nothing queued fails on any call

    assert throttled == [] and result.labels == () and not result.sensitive


def test_bytes_when_no_bucket_and_dominant_colours_request_and_recorded_response_shape(rekognition):
    client, stubber = rekognition
    analyzer = RekognitionAnalyzer(
        previews_bucket=None, collection_prefix="photo-organizer", client_factory=lambda: client, image_properties=True, min_label_confidence=70,
        max_labels=20,
    )
    image = {"Bytes": b"\xff\xd8preview"}
    stubber.add_response(
        "detect_labels", recorded("detect_labels"),
        {"Image": image, "MaxLabels": 20, "MinConfidence": 70.0, "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"]},
    )
    stubber.add_response("detect_moderation_labels", recorded("detect_moderation_labels_none"), {"Image": image})

    result = analyzer.analyze(b"\xff\xd8preview", plan(ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS))

    assert result.dominant_colours == ("#478cb8", "#e2d1bb") and not result.sensitive


def test_explicit_preview_key_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    image = {"S3Object": {"Bucket": BUCKET, "Name": "previews/alice/other.jpg"}}
    stubber.add_response("detect_text", recorded("detect_text"), {"Image": image})

    analyzer.analyze(b"", plan(ApiCall.DETECT_TEXT), preview_key="previews/alice/other.jpg")

    stubber.assert_no_pending_responses()


def test_missing_collection_created_once_then_indexed_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    stubber.add_client_error(
        "index_faces", service_error_code="ResourceNotFoundException", http_status_code=400,
        expected_params=INDEX_PARAMS,
    )
    stubber.add_response("create_collection", api_example("CreateCollection"), {"CollectionId": COLLECTION})
    stubber.add_response("index_faces", recorded("index_faces"), INDEX_PARAMS)

    result = analyzer.analyze(b"", plan(ApiCall.INDEX_FACES))

    stubber.assert_no_pending_responses()
    assert len(result.faces) == 2


def test_collection_created_by_another_worker_still_indexed_request_and_recorded_response_shape(
    analyzer, rekognition
):
    _, stubber = rekognition
    stubber.add_client_error("index_faces", service_error_code="ResourceNotFoundException", http_status_code=400)
    stubber.add_client_error(
        "create_collection", service_error_code="ResourceAlreadyExistsException", http_status_code=400,
        expected_params={"CollectionId": COLLECTION},
    )
    stubber.add_response("index_faces", recorded("index_faces"), INDEX_PARAMS)

    assert len(analyzer.analyze(b"", plan(ApiCall.INDEX_FACES)).faces) == 2
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code, status",
    [
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("InternalServerError", 500),
        ("ServiceUnavailableException", 503),
    ],
)
def test_throttling_becomes_retryable_error_after_backoff_request_and_recorded_response_shape(
    analyzer, rekognition, throttled, sleeps, code, status
):
    _, stubber = rekognition
    for _ in range(3):
        stubber.add_client_error(
            "detect_labels", service_error_code=code, http_status_code=status, expected_params=LABELS_PARAMS
        )

    with pytest.raises(AnalysisThrottledError) as caught:
        analyzer.analyze(b"", plan(ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS))

    assert caught.value.code == code
    assert throttled == [ApiCall.DETECT_LABELS] * 3  # every attempt passed the token bucket
    assert sleeps == [0.5 * 0.2, 0.5 * 0.4]  # full jitter with rng 0.5, base 0.2
    assert analyzer.stats.throttles == 3 and analyzer.stats.gave_up == 1
    stubber.assert_no_pending_responses()  # moderation was never called


def test_throttled_call_retried_alone_request_and_recorded_response_shape(analyzer, rekognition, throttled):
    _, stubber = rekognition
    stubber.add_response("detect_labels", recorded("detect_labels"), LABELS_PARAMS)
    stubber.add_client_error("detect_moderation_labels", service_error_code="ThrottlingException")
    stubber.add_response("detect_moderation_labels", recorded("detect_moderation_labels_none"), {"Image": PREVIEW})

    result = analyzer.analyze(b"", plan(ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS))

    assert throttled == [ApiCall.DETECT_LABELS, ApiCall.DETECT_MODERATION_LABELS, ApiCall.DETECT_MODERATION_LABELS]
    assert len(result.labels) == 4 and not result.sensitive
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code", ["InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException",
             "InvalidParameterException"],
)
def test_invalid_image_becomes_permanent_refusal_request_and_recorded_response_shape(
    analyzer, rekognition, sleeps, code
):
    _, stubber = rekognition
    stubber.add_client_error(
        "detect_labels", service_error_code=code, http_status_code=400, expected_params=LABELS_PARAMS
    )

    with pytest.raises(AnalysisRefusedError) as caught:
        analyzer.analyze(b"", plan(ApiCall.DETECT_LABELS))

    assert caught.value.code == code and sleeps == []  # refused once, never retried
    stubber.assert_no_pending_responses()


def test_access_denied_is_configuration_error_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    stubber.add_client_error("detect_text", service_error_code="AccessDeniedException", http_status_code=403)

    with pytest.raises(ConfigurationError):
        analyzer.analyze(b"", plan(ApiCall.DETECT_TEXT))


def test_delete_faces_of_photo_pages_and_filters_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    faces = api_example("ListFaces")["Faces"]
    for i, face in enumerate(faces):  # the reference example has no ExternalImageId: give every face one
        face["ExternalImageId"] = PHOTO if i % 3 == 0 else "0190c0ffee0000000000000000000002"
    half = len(faces) // 2
    mine = [f["FaceId"] for f in faces if f["ExternalImageId"] == PHOTO]
    assert len(mine) >= 2 and any(f["ExternalImageId"] == PHOTO for f in faces[half:])
    stubber.add_response(
        "list_faces", {"Faces": faces[:half], "NextToken": "page-2", "FaceModelVersion": "7.0"},
        {"CollectionId": COLLECTION, "MaxResults": 4096},
    )
    stubber.add_response(
        "list_faces", {"Faces": faces[half:], "FaceModelVersion": "7.0"},
        {"CollectionId": COLLECTION, "MaxResults": 4096, "NextToken": "page-2"},
    )
    stubber.add_response(
        "delete_faces", {"DeletedFaces": mine}, {"CollectionId": COLLECTION, "FaceIds": mine}
    )

    assert analyzer.delete_faces_of_photo(OWNER, PHOTO) == len(mine)
    stubber.assert_no_pending_responses()


def test_delete_faces_of_photo_without_collection_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    stubber.add_client_error(
        "list_faces", service_error_code="ResourceNotFoundException",
        expected_params={"CollectionId": COLLECTION, "MaxResults": 4096},
    )

    assert analyzer.delete_faces_of_photo(OWNER, PHOTO) == 0


def test_faces_by_photo_walks_the_collection_once_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    faces = api_example("ListFaces")["Faces"]
    other = "0190c0ffee0000000000000000000002"
    for i, face in enumerate(faces):
        face["ExternalImageId"] = PHOTO if i % 3 == 0 else other
    half = len(faces) // 2
    stubber.add_response(
        "list_faces", {"Faces": faces[:half], "NextToken": "page-2", "FaceModelVersion": "7.0"},
        {"CollectionId": COLLECTION, "MaxResults": 4096},
    )
    stubber.add_response(
        "list_faces", {"Faces": faces[half:], "FaceModelVersion": "7.0"},
        {"CollectionId": COLLECTION, "MaxResults": 4096, "NextToken": "page-2"},
    )
    mine = [f["FaceId"] for f in faces if f["ExternalImageId"] == PHOTO]
    # Deleting with the ids the walk gave costs no second walk: only DeleteFaces follows.
    stubber.add_response("delete_faces", {"DeletedFaces": mine}, {"CollectionId": COLLECTION, "FaceIds": mine})

    by_photo = analyzer.faces_by_photo(OWNER)

    assert by_photo == {PHOTO: mine, other: [f["FaceId"] for f in faces if f["ExternalImageId"] == other]}
    assert analyzer.delete_faces_of_photo(OWNER, PHOTO, face_ids=by_photo[PHOTO]) == len(mine)
    stubber.assert_no_pending_responses()


def test_faces_by_photo_without_collection_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    stubber.add_client_error(
        "list_faces", service_error_code="ResourceNotFoundException",
        expected_params={"CollectionId": COLLECTION, "MaxResults": 4096},
    )

    assert analyzer.faces_by_photo(OWNER) == {}


def test_consent_off_deletes_collection_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    stubber.add_response("delete_collection", api_example("DeleteCollection"), {"CollectionId": COLLECTION})
    stubber.add_client_error(
        "delete_collection", service_error_code="ResourceNotFoundException",
        expected_params={"CollectionId": COLLECTION},
    )

    assert analyzer.delete_collection(OWNER) is True
    assert analyzer.delete_collection(OWNER) is False  # already gone: safe to repeat
    stubber.assert_no_pending_responses()


def test_search_faces_gives_similarity_edges_request_and_recorded_response_shape(analyzer, rekognition):
    _, stubber = rekognition
    searched = "70008e50-75e4-55d0-8e80-363fb73b3a14"
    stubber.add_response(
        "search_faces", api_example("SearchFaces"),
        {"CollectionId": COLLECTION, "FaceId": searched, "FaceMatchThreshold": 90.0, "MaxFaces": 10},
    )

    edges = analyzer.search_faces(OWNER, searched, threshold=90, max_faces=10)

    assert edges[0] == SimilarityEdge.of(searched, "8be04dba-4e58-520d-850e-9eae4af70eb2", 0.9997222137451172)
    assert len(edges) == 3 and all(searched in (e.a, e.b) for e in edges)


def test_collection_ids_are_per_user_and_sanitised_request_and_recorded_response_shape(analyzer):
    assert analyzer.collection_id("alice") == "photo-organizer-alice"
    odd_a, odd_b = analyzer.collection_id("a|b"), analyzer.collection_id("a/b")
    assert odd_a != odd_b  # both sanitise to "a_b": the digest keeps them apart
    for cid in (odd_a, odd_b, analyzer.collection_id("x" * 400)):
        assert len(cid) <= 255 and set(cid) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    with pytest.raises(ConfigurationError):
        RekognitionAnalyzer(previews_bucket=BUCKET, collection_prefix="photo organizer")

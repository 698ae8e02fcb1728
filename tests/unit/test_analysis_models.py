"""The analysis output model and the conversion of recorded Rekognition responses into it."""

import json
from datetime import datetime, timezone
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator
from pydantic import ValidationError

from photo_organizer.analysis.models import (
    AnalysisPlan,
    AnalysisResult,
    AnalysisSource,
    ApiCall,
    BoundingBox,
    Label,
    ModerationLabel,
)
from photo_organizer.adapters.aws.rekognition_shapes import (
    dominant_colours_from_detect_labels,
    faces_from_index_faces,
    labels_from_detect_labels,
    moderation_labels_from_response,
    result_from_responses,
    text_lines_from_detect_text,
)

RECORDED = Path(__file__).resolve().parents[1] / "data" / "rekognition"
WHEN = datetime(2024, 7, 14, 12, 0, tzinfo=timezone.utc)


def recorded(name: str) -> dict:
    return json.loads((RECORDED / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("detect_labels", "DetectLabels"),
        ("index_faces", "IndexFaces"),
        ("index_faces_unindexed_and_edge", "IndexFaces"),
        ("detect_text", "DetectText"),
        ("detect_moderation_labels", "DetectModerationLabels"),
        ("detect_moderation_labels_none", "DetectModerationLabels"),
    ],
)
def test_recorded_responses_match_botocore_output_shape_recorded_response_shape(name, operation):
    # Guards the fixtures themselves: a misspelt or invented field would make every test below meaningless.
    shape = botocore.session.get_session().get_service_model("rekognition").operation_model(operation).output_shape
    report = ParamValidator().validate(recorded(name), shape)
    assert not report.has_errors(), report.generate_report()


def test_labels_keep_all_ancestors_and_categories_recorded_response_shape():
    labels = {label.name: label for label in labels_from_detect_labels(recorded("detect_labels"))}
    assert set(labels) == {"Person", "Beach", "Sea", "Sand"}
    beach = labels["Beach"]
    assert beach.parents == ("Coast", "Nature", "Outdoors", "Sea", "Shoreline", "Water")
    assert beach.categories == ("Nature and Outdoors",)
    assert beach.confidence == pytest.approx(96.5186, abs=1e-3)
    assert labels["Person"].parents == ()
    assert beach.matches(frozenset({"water"})) and not beach.matches(frozenset({"person"}))


def test_dominant_colours_are_hex_most_covered_first_recorded_response_shape():
    assert dominant_colours_from_detect_labels(recorded("detect_labels")) == ("#478cb8", "#e2d1bb")
    assert dominant_colours_from_detect_labels({"Labels": []}) == ()


def test_indexed_faces_carry_face_id_quality_and_pose_recorded_response_shape():
    faces = faces_from_index_faces(recorded("index_faces"))
    assert [f.face_handle for f in faces] == [
        "ff43d742-0c13-5d16-a3e8-03d3f58e980b",
        "8be04dba-4e58-520d-850e-9eae4af70eb2",
    ]
    first = faces[0]
    assert first.box == BoundingBox(left=0.31888890266418457, top=0.4933333396911621, width=0.25,
                                    height=0.33481481671333313)
    assert first.pose.yaw == pytest.approx(-24.4387, abs=1e-3)
    assert first.quality.brightness == pytest.approx(29.2336, abs=1e-3)
    assert first.confidence == pytest.approx(99.9991, abs=1e-3)


def test_out_of_range_sharpness_in_the_documented_example_is_clamped_recorded_response_shape():
    # The API reference's own IndexFaces example reports Sharpness 160 for the second face.
    second = faces_from_index_faces(recorded("index_faces"))[1]
    assert second.quality.sharpness == 100.0


def test_unindexed_faces_count_without_handle_and_edge_boxes_are_clipped_recorded_response_shape():
    faces = faces_from_index_faces(recorded("index_faces_unindexed_and_edge"))
    assert [f.face_handle for f in faces] == ["11111111-2222-4333-8444-555555555555", None, None]
    edge = faces[0].box
    assert (edge.left, edge.top) == (0.0, 0.2)
    assert edge.width == pytest.approx(0.14)  # the part left of the image (-0.04) is dropped
    bottom = faces[2].box
    assert bottom.top + bottom.height <= 1.0
    assert faces[2].quality.sharpness is None and faces[2].pose.roll is None


def test_text_keeps_lines_and_drops_their_repeated_words_recorded_response_shape():
    lines = text_lines_from_detect_text(recorded("detect_text"))
    assert [line.text for line in lines] == ["IT'S", "MONDAY"]
    assert lines[1].box is not None and lines[1].box.left == pytest.approx(0.2004)


def test_moderation_top_level_has_no_parent_recorded_response_shape():
    labels = moderation_labels_from_response(recorded("detect_moderation_labels"))
    assert labels[0] == ModerationLabel(name="Swimwear or Underwear", confidence=93.41, parent=None, taxonomy_level=1)
    assert labels[1].parent == "Swimwear or Underwear" and labels[1].taxonomy_level == 2


def test_result_combines_only_the_calls_made_recorded_response_shape():
    result = result_from_responses(
        photo_id="p1",
        analysis_version=3,
        responses={
            ApiCall.DETECT_LABELS: recorded("detect_labels"),
            ApiCall.DETECT_MODERATION_LABELS: recorded("detect_moderation_labels_none"),
        },
        analysed_at=WHEN,
    )
    assert result.source is AnalysisSource.REKOGNITION
    assert "Beach" in result.label_names()
    assert result.faces == () and result.text_lines == ()
    assert result.sensitive is False


def test_sensitive_is_derived_from_moderation_labels_above_threshold():
    base = dict(photo_id="p", analysis_version=1, analysed_at=WHEN, source=AnalysisSource.LOCAL)
    mild = ModerationLabel(name="Suggestive", confidence=60.0)
    strong = ModerationLabel(name="Suggestive", confidence=95.0)
    assert AnalysisResult(**base, moderation_labels=(mild,)).sensitive is False
    assert AnalysisResult(**base, moderation_labels=(mild, strong)).sensitive is True
    assert AnalysisResult(**base, moderation_labels=(mild,), sensitive_threshold=50).sensitive is True


def test_stored_result_round_trips_and_recomputes_the_sensitive_flag():
    result = result_from_responses(
        photo_id="p1",
        analysis_version=1,
        responses={
            ApiCall.DETECT_LABELS: recorded("detect_labels"),
            ApiCall.INDEX_FACES: recorded("index_faces"),
            ApiCall.DETECT_TEXT: recorded("detect_text"),
            ApiCall.DETECT_MODERATION_LABELS: recorded("detect_moderation_labels"),
        },
        analysed_at=WHEN,
    )
    stored = result.model_dump(mode="json")
    assert stored["sensitive"] is True
    stored["sensitive"] = False  # a tampered or stale flag is not believed
    again = AnalysisResult.model_validate(stored)
    assert again == result and again.sensitive is True


def test_copy_for_a_duplicate_points_at_the_photo_that_was_analysed():
    original = AnalysisResult(photo_id="a", analysis_version=1, analysed_at=WHEN, source=AnalysisSource.LOCAL)
    copy = original.copied_to("b").copied_to("c")
    assert (copy.photo_id, copy.copied_from) == ("c", "a")


def test_models_are_frozen_and_reject_out_of_range_values():
    label = Label(name="Dog", confidence=90)
    with pytest.raises(ValidationError):
        label.confidence = 10  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Label(name="Dog", confidence=101)
    with pytest.raises(ValidationError):
        BoundingBox(left=-0.1, top=0, width=0.5, height=0.5)
    with pytest.raises(ValidationError):
        AnalysisPlan(owner="o", photo_id="p", analysis_version=0, calls=frozenset())


def test_plan_answers_which_calls_it_includes():
    plan = AnalysisPlan(owner="o", photo_id="p", analysis_version=2, calls=frozenset({ApiCall.DETECT_LABELS}))
    assert plan.includes(ApiCall.DETECT_LABELS) and not plan.includes(ApiCall.INDEX_FACES)

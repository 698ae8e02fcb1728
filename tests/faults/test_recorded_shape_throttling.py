"""Throttling of the calls moto does not implement (Rekognition's collections and face calls, whose DetectLabels is
canned; SageMaker pipelines, model packages and endpoints), answered with recorded response shapes (tests/data, and
the API reference examples botocore ships) by the botocore hook. Each case runs the adapter's use-case call twice:
unthrottled, then with its call throttled once, and asserts the product retried it (the call made again, the same
result) or deferred it with nothing lost (the retraining trigger counts the events and the next batch starts the
run, exactly once; the caption falls back to the composed one)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest

from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.analysis.models import AnalysisPlan, ApiCall

from aws_faults import throttle
from fault_library import REGION, TABLE
from throttling import Caller, covers, raised_outcome

DATA = Path(__file__).resolve().parents[1] / "data"
OWNER, PHOTO = "0f000000-0000-4000-8000-00000000fa17", "0190c0ffee0000000000000000000001"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def api_example(service: str, operation: str) -> dict[str, Any]:
    loader = botocore.session.get_session().get_component("data_loader")
    return json.loads(json.dumps(loader.load_service_model(service, "examples-1")["examples"][operation][0]["output"]))


ANALYSIS = covers(
    "analysis",
    "rekognition:rekognition.DetectLabels",
    "rekognition:rekognition.DetectModerationLabels",
    "rekognition:rekognition.DetectText",
    "rekognition:rekognition.IndexFaces",
    "rekognition:rekognition.CreateCollection",
)
PEOPLE = covers(
    "people",
    "rekognition:rekognition.ListFaces",
    "rekognition:rekognition.SearchFaces",
    "rekognition:rekognition.DeleteFaces",
)


def rekognition_answers() -> dict:
    collections: set[str] = set()

    def index_faces(params: dict) -> dict:
        if not collections:  # the user's first indexed photo: the collection is made, then the call repeated
            return {"Error": {"Code": "ResourceNotFoundException", "Message": "The collection does not exist"},
                    "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}}}
        return recorded("rekognition/index_faces")

    return {
        ("rekognition", "DetectLabels"): lambda params: recorded("rekognition/detect_labels"),
        ("rekognition", "DetectModerationLabels"): lambda params: recorded("rekognition/detect_moderation_labels"),
        ("rekognition", "DetectText"): lambda params: recorded("rekognition/detect_text"),
        ("rekognition", "IndexFaces"): index_faces,
        ("rekognition", "CreateCollection"): lambda params: collections.add("c") or api_example("rekognition",
                                                                                                "CreateCollection"),
        ("rekognition", "ListFaces"): lambda params: api_example("rekognition", "ListFaces"),
        ("rekognition", "SearchFaces"): lambda params: api_example("rekognition", "SearchFaces"),
        ("rekognition", "DeleteFaces"): lambda params: api_example("rekognition", "DeleteFaces"),
    }


def rekognition_use(site_operation: str):
    from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer

    analyzer = RekognitionAnalyzer(collection_prefix="po-faults", region=REGION, previews_bucket="po-previews",
                                   sleep=lambda seconds: None)
    if site_operation in ("ListFaces",):
        return lambda: analyzer.faces_by_photo(OWNER)
    if site_operation == "SearchFaces":
        return lambda: analyzer.search_faces(OWNER, "038388f8-c0ab-5b9d-8f8f-d6b9d1a8c1b6", threshold=80.0)
    if site_operation == "DeleteFaces":
        return lambda: analyzer.delete_faces_of_photo(OWNER, PHOTO, face_ids=["ff43d742-0c13-5d16-a3e8-03d3f58e980b"])
    plan = AnalysisPlan(owner=OWNER, photo_id=PHOTO, analysis_version=3, calls=frozenset(ApiCall))
    return lambda: analyzer.analyze(b"", plan)


@pytest.mark.parametrize("site", (*ANALYSIS, *PEOPLE), ids=str)
def test_a_throttled_rekognition_call_is_retried_with_back_off_recorded_shapes(calls, site):
    calls.answers.update(rekognition_answers())
    unthrottled = rekognition_use(site.operation)()
    calls.answers.update(rekognition_answers())  # a new user: no collection yet
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    throttled = Caller(calls).step(str(site), lambda: raised_outcome(rekognition_use(site.operation)))
    assert fault.fired == 1
    assert throttled == unthrottled or _without_times(throttled) == _without_times(unthrottled)


def _without_times(result: Any) -> Any:
    return result.model_copy(update={"analysed_at": None}) if hasattr(result, "model_copy") else result


# ---- SageMaker: the retraining trigger, the approved model, the caption endpoint ------------------------------

TRIGGER = covers(
    "retraining trigger",
    "sagemaker_pipeline_runs:sagemaker.ListPipelineExecutions",
    "sagemaker_pipeline_runs:sagemaker.StartPipelineExecution",
)


@pytest.mark.parametrize("site", TRIGGER, ids=str)
def test_a_throttled_pipeline_call_defers_the_start_to_the_next_batch_and_starts_once_recorded_shapes(calls, site):
    from photo_organizer.adapters.aws.dynamodb_retraining_state import DynamoDbRetrainingState
    from photo_organizer.adapters.aws.sagemaker_pipeline_runs import SageMakerPipelineRuns
    from photo_organizer.services.retraining_trigger import RetrainingTrigger

    listing = recorded("sagemaker/list_pipeline_executions")
    for summary in listing["PipelineExecutionSummaries"]:
        summary["PipelineExecutionStatus"] = "Succeeded"
    started: list[str] = []
    calls.answers.update({
        ("sagemaker", "ListPipelineExecutions"): lambda params: copy.deepcopy(listing),
        ("sagemaker", "StartPipelineExecution"): lambda params: started.append("run") or {
            "PipelineExecutionArn": f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/p/execution/{len(started)}"},
    })
    boto3.client("dynamodb", region_name=REGION).create_table(**table_definition(TABLE))
    trigger = RetrainingTrigger(DynamoDbRetrainingState(TABLE), SageMakerPipelineRuns("p", region=REGION),
                                min_feedback=3)
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    first = raised_outcome(lambda: trigger.record(3, batch="100-102"))
    assert fault.fired == 1 and first.kind == "retry", first.value  # the feedback Lambda records it as deferred
    second = trigger.record(1, batch="103-103")
    assert second.started and started == ["run"], second
    assert trigger.record(1, batch="104-104").started is None, "the counter restarted: one run for these events"


MODELS = covers(
    "training",
    "s3_training_runs:sagemaker.ListModelPackages",
    "s3_training_runs:sagemaker.DescribeModelPackage",
)


@pytest.mark.parametrize("site", MODELS, ids=str)
def test_a_throttled_model_registry_call_fails_the_step_retryably_recorded_shapes(calls, site):
    from photo_organizer.adapters.aws.s3_training_runs import SageMakerApprovedModels

    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/tagging/3"
    calls.answers.update({
        ("sagemaker", "ListModelPackages"): lambda params: {"ModelPackageSummaryList": [{
            "ModelPackageArn": arn, "ModelPackageGroupName": "tagging", "ModelPackageStatus": "Completed",
            "CreationTime": "2026-12-01T00:00:00Z", "ModelApprovalStatus": "Approved"}]},
        ("sagemaker", "DescribeModelPackage"): lambda params: {
            "ModelPackageName": "tagging", "ModelPackageArn": arn, "CreationTime": "2026-12-01T00:00:00Z",
            "ModelPackageStatus": "Completed", "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "InferenceSpecification": {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m/model.tar.gz"}],
                                       "SupportedContentTypes": [], "SupportedResponseMIMETypes": []}},
    })
    models = SageMakerApprovedModels(region=REGION)
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    found = Caller(calls).step("latest approved", lambda: raised_outcome(lambda: models.latest_approved("tagging")))
    assert fault.fired == 1 and found == "s3://b/m/model.tar.gz"


CAPTION = covers("analysis", "sagemaker_captioner:sagemaker-runtime.InvokeEndpoint")


def test_a_throttled_caption_endpoint_falls_back_to_the_composed_caption_after_the_sdk_retries_recorded_shapes(calls):
    from botocore.response import StreamingBody

    from photo_organizer.adapters.aws.sagemaker_captioner import SAGEMAKER_CLIENT_CONFIG, SageMakerCaptioner
    from photo_organizer.analysis.captioner import CaptionInputs
    from photo_organizer.analysis.models import Label

    class Composed:
        def caption(self, inputs):
            return "a dog"

    text = json.dumps([{"generated_text": "A dog."}]).encode()
    calls.answers[("sagemaker-runtime", "InvokeEndpoint")] = lambda params: {
        "Body": StreamingBody(__import__("io").BytesIO(text), len(text)), "ContentType": "application/json"}
    captioner = SageMakerCaptioner("captions", fallback=Composed(), region=REGION)
    inputs = CaptionInputs(labels=[Label(name="Dog", confidence=99.0)])
    (site,) = CAPTION
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    # The SDK retries a throttle (standard mode) before the adapter sees it; past those, the photo still gets a
    # caption: the one composed from what was detected. Nothing is lost: the analysis completes.
    assert captioner.caption(inputs) == "a dog" and fault.fired == 1
    retries = SAGEMAKER_CLIENT_CONFIG.retries
    assert retries["mode"] in ("standard", "adaptive") and retries.get("max_attempts", retries.get("total_max_attempts", 0)) >= 2

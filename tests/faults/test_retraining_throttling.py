"""Throttling in the retraining use case under moto (S3 dataset bucket, the table; the SageMaker pipeline and model
registry answered with recorded shapes): the feedback Lambda's batch (dataset part + retraining trigger), the
pipeline's export step (the feature snapshot read from the table, the approved models staged) and its re-application
steps (faces: the owners' matchers; tagging: the photos' suggestions). Each call site is throttled once; the step
fails retryably (Lambda retries the stream batch, the pipeline retries the step) or defers (the trigger: the next
batch starts the run), and the end state equals an unthrottled run's: the same dataset objects, one pipeline run,
the same snapshot rows, matcher and suggestions."""

from __future__ import annotations

import re

import boto3
import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.services.training_runs import ModelReapplication

from aws_faults import throttle
from fault_library import OWNER, REGION, TABLE
from test_people_feedback_erasure_throttling import PHOTOS, people_library
from model_tarball import model_tarball
from throttling import Caller, api_outcome, call_api, covers, raised_outcome

DATASET = "po-faults-dataset"
RUN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/run1"
TAGGING_MODEL = "runs/old/models/tagging/job/output/model.tar.gz"
FACES_MODEL = "runs/run1/models/faces/job/output/model.tar.gz"
RETRAINING = covers(
    "retraining trigger",
    "s3_feedback_dataset:s3.PutObject",
    "dynamodb_retraining_state:dynamodb.GetItem",
    "dynamodb_retraining_state:dynamodb.UpdateItem",
)
TRAINING = covers(
    "training",
    "dynamodb_training:dynamodb.Scan",
    "dynamodb_clustering:dynamodb.Query",
    "dynamodb_face_matchers:dynamodb.PutItem",
    "s3_training_runs:s3.PutObject",
    "s3_training_runs:s3.CopyObject",
    "s3_training_runs:s3.GetObject",
)


class FixedTagger:
    def suggest(self, photo):
        return [("beach", 0.8, False)]


def pipeline(library, calls) -> dict:
    """The use case, each step as its caller runs it; returns what it left (compared with an unthrottled run)."""
    started: list[str] = []
    calls.answers.update({
        ("sagemaker", "ListPipelineExecutions"): lambda params: {"PipelineExecutionSummaries": []},
        ("sagemaker", "StartPipelineExecution"): lambda params: started.append("run") or {"PipelineExecutionArn": RUN},
        ("sagemaker", "ListModelPackages"): lambda params: {"ModelPackageSummaryList": []},
    })
    calls.paused = True
    people_library(library)
    assert api_outcome(call_api("POST", "/feedback", {"type": "tag_added", "photo_id": PHOTOS[0], "tag": "dune"})).kind == "ok"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=DATASET)
    s3.put_object(Bucket=DATASET, Key=TAGGING_MODEL, Body=model_tarball({"kind": "tagging", "owners": {OWNER: {}}}))
    s3.put_object(Bucket=DATASET, Key=FACES_MODEL, Body=model_tarball({"kind": "faces", "owners": {OWNER: {"threshold": 0.7}}}))
    items = boto3.client("dynamodb", region_name=REGION).query(
        TableName=TABLE, KeyConditionExpression="PK = :pk AND begins_with(SK, :f)",
        ExpressionAttributeValues={":pk": {"S": owner_pk(OWNER)}, ":f": {"S": "FEEDBACK#"}})["Items"]
    calls.paused = False
    env = bootstrap.RetrainingEnvironment(table_name=TABLE, dataset_bucket=DATASET, data_key="", pipeline_name="p",
                                          min_feedback=1, region=REGION)
    caller = Caller(calls)

    # 1. The feedback Lambda: the stream's INSERT of the feedback event (a raised error: Lambda retries the batch).
    from photo_organizer.handlers import feedback

    records = [{"eventName": "INSERT", "eventSource": "aws:dynamodb", "dynamodb": {
        "SequenceNumber": f"{100 + n}", "Keys": {"PK": item["PK"], "SK": item["SK"]}, "NewImage": item}}
        for n, item in enumerate(items)]
    recorder = bootstrap.feedback_recorder(env)

    def deliver(batch: list[dict]):
        return caller.step("feedback batch", lambda: raised_outcome(lambda: feedback.process({"Records": batch},
                                                                                             recorder)),
                           deferred=lambda outcome: "Error" in str(outcome["reason"]))

    outcome = deliver(records)
    # Streams deliver at least once: the same batch again is counted once, and starts nothing more.
    again = deliver(records)
    if not (outcome["started"] or again["started"]):  # the trigger deferred: the next batch starts the run
        outcome = deliver([{**records[0], "dynamodb": {**records[0]["dynamodb"], "SequenceNumber": "200"}}])
    assert started == ["run"], (outcome, again)
    # 2. The pipeline's export step (the pipeline retries a failed step).
    staging = bootstrap.training_run_staging(env)
    staging._approved.latest_approved = lambda group: f"s3://{DATASET}/{TAGGING_MODEL}" if group == "g-tag" else None
    counts = caller.step("export", lambda: raised_outcome(lambda: staging.stage(RUN, {"tagging": "g-tag",
                                                                                      "faces": "g-faces"})))
    # 3. The re-application steps.
    real = bootstrap.model_reapplication(env)
    reapplication = ModelReapplication(real._artifacts, suggestions=real._suggestions, matchers=real._matchers,
                                       tagging_models=lambda document: {OWNER: FixedTagger()},
                                       read_photo=real._read_photo)
    faces = caller.step("reapply faces", lambda: raised_outcome(
        lambda: reapplication.reapply("faces", f"s3://{DATASET}/{FACES_MODEL}", RUN)))
    tagged = caller.step("reapply tagging", lambda: raised_outcome(
        lambda: reapplication.reapply("tagging", f"s3://{DATASET}/{TAGGING_MODEL}", RUN)))
    calls.paused = True
    services = library.services
    left = {
        "dataset": sorted(re.sub(r"date=[0-9-]+/", "date=D/", o["Key"])
                          for o in s3.list_objects_v2(Bucket=DATASET)["Contents"]),
        "lines": sorted(len(s3.get_object(Bucket=DATASET, Key=o["Key"])["Body"].read().splitlines())
                        for o in s3.list_objects_v2(Bucket=DATASET, Prefix="runs/run1/features/")["Contents"]),
        "counts": counts, "faces": faces, "tagged": tagged,
        "matcher": services.face_matchers.promoted(OWNER),
        "suggestions": {p: [s.tag for s in services.suggestion_store.suggestions(OWNER, p)] for p in PHOTOS},
    }
    calls.paused = False
    return left


UNTHROTTLED = {
    "dataset": ["feedback/date=D/100-100.jsonl", TAGGING_MODEL, "runs/run1/approved/faces/NONE",
                "runs/run1/approved/tagging/model.tar.gz", "runs/run1/features/faces.jsonl",
                "runs/run1/features/pairs.jsonl", "runs/run1/features/photos.jsonl", FACES_MODEL],
    "lines": [0, 0, 2],  # no pairs and no analysed photos: the two faces of the owner who gave feedback
    "counts": {"photos": 0, "faces": 2, "pairs": 0},
    "faces": 1,
    "tagged": 0,
    "matcher": {"threshold": 0.7},
    "suggestions": {PHOTOS[0]: ["cat"], PHOTOS[1]: ["cat"]},
}


def test_the_retraining_makes_exactly_these_calls(calls, aws_library):
    left = pipeline(aws_library, calls)
    assert {*RETRAINING, *TRAINING} <= set(calls.sites)
    assert left == UNTHROTTLED


@pytest.mark.parametrize("site", (*RETRAINING, *TRAINING), ids=str)
def test_a_throttled_retraining_call_is_retried_and_leaves_what_an_unthrottled_run_leaves(calls, aws_library, site):
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    left = pipeline(aws_library, calls)
    assert fault.fired, f"{site} was never throttled: the retraining no longer makes it"
    assert left == UNTHROTTLED

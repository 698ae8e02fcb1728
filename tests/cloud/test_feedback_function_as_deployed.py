"""The feedback Lambda as deployed (the rehearsal): its staged bundle, its template environment and its synthesized
role, fed by the table stream through its mapping's filter after POST /feedback through the API function. It writes
the events to the dataset bucket (SSE-KMS), counts them, and starts the retraining pipeline (moto records the
execution; it runs no step) at the threshold from cdk.json, under the lock item. Every AWS call it made is checked
against its role's statements (the trigger item's dynamodb:LeadingKeys condition included)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from .rehearsal.journey import owner_of, upload, validate_all

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "good" / "gps_exif.jpg"
STATE_KEY = {"PK": {"S": "ML#retraining"}, "SK": {"S": "STATE"}}


def _pipeline_name(rehearsal) -> str:
    """The CfnPipeline's name (an L1 at the stack's top level: its logical id carries no hash)."""
    return rehearsal.dataplane.physical(rehearsal.assembly.stack_named("ml").name, "Pipeline", None)


def _state(rehearsal) -> dict:
    item = rehearsal.client("dynamodb").get_item(TableName=rehearsal.ref("storage", "Table"), Key=STATE_KEY,
                                                 ConsistentRead=True).get("Item", {})
    return {k: next(iter(v.values())) for k, v in item.items()}


def _dataset_lines(rehearsal) -> dict[str, dict]:
    """feedback id -> (object key, line) of every line under feedback/ in the dataset bucket."""
    s3, bucket = rehearsal.client("s3"), rehearsal.ref("ml", "Dataset")
    found = {}
    for entry in s3.list_objects_v2(Bucket=bucket, Prefix="feedback/").get("Contents", []):
        for text in s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode().splitlines():
            line = json.loads(text)
            found[line["feedback_id"]] = {"key": entry["Key"], **line}
    return found


def _post_tags(rehearsal, token: str, photo_id: str, tags: list[str]) -> list[str]:
    ids = []
    for tag in tags:
        status, event = rehearsal.http.request("POST", "/feedback", token=token,
                                               body={"type": "tag_added", "photo_id": photo_id, "tag": tag})
        assert status == 201, event
        ids.append(event["feedback_id"])
    return ids


@pytest.fixture(scope="module")
def photo(rehearsal):
    token = rehearsal.sign_in("hana")
    photo_id = upload(rehearsal, token, SAMPLE.read_bytes(), filename=SAMPLE.name)
    assert [v.result for v in validate_all(rehearsal)] == [{"batchItemFailures": []}]
    return {"token": token, "photo_id": photo_id, "owner": owner_of(rehearsal, token)}


def test_feedback_posted_through_the_api_reaches_the_dataset_bucket_through_the_filtered_stream(rehearsal, photo):
    feedback = rehearsal.function("Feedback")
    assert feedback.code_dir.parent == rehearsal.assembly.directory  # the staged asset
    assert feedback.environment["PO_RETRAIN_MIN_FEEDBACK"] == "50"
    ids = _post_tags(rehearsal, photo["token"], photo["photo_id"], ["grandma's house", "school trip"])
    status, undo = rehearsal.http.request("DELETE", f"/feedback/{ids[0]}", token=photo["token"])
    assert status == 200
    invocations = rehearsal.poll_stream(feedback)
    assert invocations and all(i.error is None for i in invocations), [i.error for i in invocations]
    # the filter passed INSERTs of feedback items only: nothing else (photo items, the undone MODIFY) arrived
    assert sum(i.result["skipped"] for i in invocations) == 0
    assert sum(i.result["recorded"] for i in invocations) >= 3
    lines = _dataset_lines(rehearsal)
    for feedback_id in (*ids, undo["feedback_id"]):
        assert lines[feedback_id]["owner"] == photo["owner"]
    assert lines[ids[1]]["tag"] == "school trip" and lines[undo["feedback_id"]]["undoes"] == ids[0]
    day = datetime.now(timezone.utc).date().isoformat()
    key = lines[ids[1]]["key"]
    assert key.startswith(f"feedback/owner={photo['owner']}/date={day}/") and key.endswith(".jsonl")
    first, last = key.rsplit("/", 1)[1].removesuffix(".jsonl").split("-")
    assert int(first) <= int(last)
    head = rehearsal.client("s3").head_object(Bucket=rehearsal.ref("ml", "Dataset"), Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert rehearsal.denials(feedback) == []


def test_at_the_threshold_the_feedback_function_starts_the_pipeline_once_under_its_lock(rehearsal, photo):
    feedback = rehearsal.function("Feedback")
    pipeline = _pipeline_name(rehearsal)
    sagemaker = rehearsal.client("sagemaker")
    rehearsal.poll_stream(feedback)  # whatever earlier tests recorded is counted first
    before = len(sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"])
    pending = int(_state(rehearsal).get("pending", "0"))
    needed = 50 - pending
    assert needed > 0
    _post_tags(rehearsal, photo["token"], photo["photo_id"], [f"tag {n}" for n in range(needed)])
    invocations = rehearsal.poll_stream(feedback)
    started = [i.result["started"] for i in invocations if i.result and i.result["started"]]
    assert len(started) == 1, [i.result for i in invocations]
    executions = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
    assert len(executions) == before + 1 and started[0] in [e["PipelineExecutionArn"] for e in executions]
    state = _state(rehearsal)
    assert state["pending"] == "0" and state["execution"] == started[0] and "lock_holder" not in state

    # another invocation holds the lock (a second shard deciding): the next threshold starts nothing
    rehearsal.client("dynamodb").update_item(
        TableName=rehearsal.ref("storage", "Table"), Key=STATE_KEY,
        UpdateExpression="SET lock_holder = :h, lock_until = :u",
        ExpressionAttributeValues={":h": {"S": "another-shard"}, ":u": {"N": str(2**40)}})
    _post_tags(rehearsal, photo["token"], photo["photo_id"], [f"more {n}" for n in range(50)])
    results = [i.result for i in rehearsal.poll_stream(feedback)]
    assert results and not any(r["started"] for r in results)
    assert "lock held" in results[-1]["reason"] and int(_state(rehearsal)["pending"]) >= 50
    assert len(sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]) == before + 1
    rehearsal.client("dynamodb").update_item(TableName=rehearsal.ref("storage", "Table"), Key=STATE_KEY,
                                             UpdateExpression="REMOVE lock_holder, lock_until")
    assert rehearsal.denials(feedback) == []
    calls = {(c["service"], c["operation"]) for c in feedback.calls}
    made = {("s3", "PutObject"), ("s3", "ListObjectsV2"),  # ListObjectsV2: the erased owners' tombstones
            ("dynamodb", "UpdateItem"), ("sagemaker", "ListPipelineExecutions"), ("sagemaker", "StartPipelineExecution")}
    # GetItem: a retried batch re-reads the counter; the rest only when an account erasure ran in the session
    erasure = {("s3", "GetObject"), ("s3", "ListObjectVersions"), ("s3", "DeleteObjects")}
    assert made <= calls <= made | {("dynamodb", "GetItem")} | erasure


def test_the_pipeline_and_its_groups_exist_as_the_template_declares_them(rehearsal):
    sagemaker = rehearsal.client("sagemaker")
    pipeline = sagemaker.describe_pipeline(PipelineName=_pipeline_name(rehearsal))
    definition = json.loads(pipeline["PipelineDefinition"])
    assert [s["Name"] for s in definition["Steps"]][:2] == ["ExportFeatures", "Preprocess"]
    assert pipeline["RoleArn"] == rehearsal.ref("ml", "SageMakerExecutionRole", "Arn")
    groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert {"photo-organizer-dev-tagging", "photo-organizer-dev-faces"} <= groups

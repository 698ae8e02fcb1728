"""The retraining pipeline's Lambda steps as deployed (the rehearsal): ExportFeatures and Reapply run from their staged
bundles with their template environments and synthesized roles, invoked with the event SageMaker sends them (the
step's Arguments, as the generated definition names them). moto runs no pipeline: the test plays the pipeline's
invocations, then checks every AWS call of both functions against their roles' statements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .rehearsal.journey import owner_of, upload, validate_all
from model_tarball import model_tarball

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "good" / "gps_exif.jpg"
RUN = "rehearsalrun0001"
GROUPS = {"tagging": "photo-organizer-dev-tagging", "faces": "photo-organizer-dev-faces"}
TAG = "rehearsal suggestion"


def _step_events(rehearsal) -> dict[str, dict]:
    """The Lambda steps' Arguments from the deployed pipeline's definition (moto keeps it as CloudFormation gave it)."""
    sagemaker = rehearsal.client("sagemaker")
    name = rehearsal.dataplane.physical(rehearsal.assembly.stack_named("ml").name, "Pipeline", None)
    definition = json.loads(sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    steps = {}
    for step in definition["Steps"]:
        steps[step["Name"]] = step
        for nested in step.get("Arguments", {}).get("IfSteps", []):
            steps[nested["Name"]] = nested
    return steps


def test_export_and_reapply_steps_run_with_their_roles_on_the_events_the_pipeline_sends(rehearsal):
    token = rehearsal.sign_in("ivy")
    owner = owner_of(rehearsal, token)
    photo_id = upload(rehearsal, token, SAMPLE.read_bytes(), filename=SAMPLE.name)
    assert [v.result for v in validate_all(rehearsal)] == [{"batchItemFailures": []}]
    status, _ = rehearsal.http.request("POST", "/feedback", token=token,
                                       body={"type": "tag_added", "photo_id": photo_id, "tag": "school trip"})
    assert status == 201
    steps = _step_events(rehearsal)
    export, reapply = rehearsal.function("ExportFeatures"), rehearsal.function("Reapply")
    assert steps["ExportFeatures"]["FunctionArn"].endswith(f":function:{export.name}")
    assert steps["ReapplyTagging"]["FunctionArn"].endswith(f":function:{reapply.name}")

    # ExportFeatures: {"execution_id": <Execution.PipelineExecutionId>, "model_package_groups": {...}}
    arguments = steps["ExportFeatures"]["Arguments"]
    assert arguments["model_package_groups"] == GROUPS
    result = export.invoke({"execution_id": RUN, "model_package_groups": arguments["model_package_groups"]})
    counts = result.raise_for_error()
    assert set(counts) == {"photos", "faces"}  # the step's OutputParameters
    s3, bucket = rehearsal.client("s3"), rehearsal.ref("ml", "Dataset")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"runs/{RUN}/")["Contents"]}
    assert keys == {f"runs/{RUN}/features/{name}" for name in ("photos.jsonl", "faces.jsonl", "pairs.jsonl")} | {
        f"runs/{RUN}/approved/tagging/NONE", f"runs/{RUN}/approved/faces/NONE"}  # nothing approved yet
    photos = s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/features/photos.jsonl")["Body"].read().decode()
    assert len(photos.splitlines()) == counts["photos"]
    # ivy's photo has feedback but no analysis (no Glue run in this rehearsal): the snapshot leaves it out
    assert photo_id not in photos
    assert rehearsal.denials(export) == []

    # Reapply<Kind>: {"kind", "model_data": <TrainKind.ModelArtifacts.S3ModelArtifacts>, "execution_id"}
    from photo_organizer.learning.datasets import PhotoFeatures
    from photo_organizer.learning.features import build_schema
    from photo_organizer.learning.tagging import TaggingModel

    # The row the export writes for an analysed photo, put in place of the analysis this rehearsal does not run.
    features = [PhotoFeatures(owner=owner, photo_id=photo_id, analysed_at="2026-12-03T00:00:00+00:00",
                              labels={"building": 80.0}, tags=["building", "school trip"])]
    from photo_organizer.learning.datasets import to_line

    s3.put_object(Bucket=bucket, Key=f"runs/{RUN}/features/photos.jsonl",
                  Body="".join(to_line(f) + "\n" for f in features).encode())
    schema = build_schema(features)
    d = schema.dimensions
    model = TaggingModel(owner=owner, schema=schema, tags=(TAG,), weights=np.zeros((1, d)), bias=np.array([2.0]),
                         mean=np.zeros(d), scale=np.ones(d), platt_a=np.ones(1), platt_b=np.zeros(1))
    documents = {"tagging": {"kind": "tagging", "owners": {owner: model.to_json()}},
                 "faces": {"kind": "faces", "owners": {owner: {"kind": "faces", "threshold": 0.8}}}}
    for kind, document in documents.items():
        key = f"runs/{RUN}/models/{kind}/pipelines-{RUN}-train/output/model.tar.gz"
        s3.put_object(Bucket=bucket, Key=key, Body=model_tarball(document))
        step = steps[f"Reapply{kind.capitalize()}"]["Arguments"]
        assert step["kind"] == kind and step["model_data"] == {
            "Get": f"Steps.Train{kind.capitalize()}.ModelArtifacts.S3ModelArtifacts"}
        outcome = reapply.invoke({"kind": kind, "model_data": f"s3://{bucket}/{key}", "execution_id": RUN})
        assert outcome.raise_for_error()["updated"] >= 1
    table = rehearsal.ref("storage", "Table")
    item = rehearsal.client("dynamodb").get_item(TableName=table, Key={
        "PK": {"S": f"OWNER#{owner}"}, "SK": {"S": f"PHOTO#{photo_id}"}})["Item"]
    assert TAG in json.dumps(item["suggestions"])
    matcher = rehearsal.client("dynamodb").get_item(TableName=table, Key={
        "PK": {"S": f"OWNER#{owner}"}, "SK": {"S": "SETTINGS#face_matcher"}})["Item"]
    assert json.loads(matcher["matcher"]["S"])["threshold"] == 0.8
    assert rehearsal.denials(reapply) == []
    refused = reapply.invoke({"kind": "tagging", "model_data": f"s3://{bucket}/feedback/x.tar.gz", "execution_id": RUN})
    assert refused.error and refused.error["type"] == "ValidationError"

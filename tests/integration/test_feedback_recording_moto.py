"""The feedback Lambda's recording (moto S3 + DynamoDB): stream records of FEEDBACK# items -> FeedbackRecords ->
`feedback/owner=.../date=.../<first seq>-<last seq>.jsonl` in the dataset bucket (SSE-KMS), a retried batch rewriting the same
objects, lines the training's reader (learning.datasets.read_feedback) reads back; and the pipeline's Lambda steps'
S3 writing and reading (the run's snapshot, the approved model staged, model.json out of model.tar.gz)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from photo_organizer.adapters.aws.s3_feedback_dataset import S3FeedbackDataset
from photo_organizer.adapters.aws.s3_training_runs import S3RunArtifacts
from photo_organizer.adapters.aws.stream_feedback import feedback_from_stream, sequence_of
from photo_organizer.errors import ValidationError
from photo_organizer.feedback.models import FeedbackType
from photo_organizer.learning.datasets import PhotoFeatures, read_feedback
from photo_organizer.services.retraining_trigger import FeedbackStreamRecorder, TriggerOutcome
from photo_organizer.services.training_runs import FeatureSnapshot, ModelReapplication, TrainingRunStaging
from model_tarball import model_tarball

BUCKET = "po-dataset-test"
_serialize = TypeSerializer().serialize


def _image(item: dict) -> dict:
    return {k: _serialize(v) for k, v in item.items()}


def feedback_item(owner: str, feedback_id: str, *, type_: str = "tag_rejected", created: str = "2026-12-02T23:59:00+00:00",
                  **fields) -> dict:
    return {"PK": f"OWNER#{owner}", "SK": f"FEEDBACK#{feedback_id}", "entity": "feedback", "feedback_id": feedback_id,
            "owner": owner, "type": type_, "created_at": created, "origin": "photo", **fields}


def stream_record(item: dict, sequence: str, event: str = "INSERT") -> dict:
    return {"eventName": event, "eventSource": "aws:dynamodb",
            "dynamodb": {"SequenceNumber": sequence, "Keys": _image({"PK": item["PK"], "SK": item["SK"]}),
                         "NewImage": _image(item)}}


@pytest.fixture
def s3(aws_env):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


class CountingTrigger:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def record(self, events: int, *, batch: str) -> TriggerOutcome:
        self.calls.append((events, batch))
        return TriggerOutcome(events, None, "counted")


def test_stream_records_become_dataset_parts_per_owner_and_date_named_by_the_batch_sequence_numbers(s3, tmp_path):
    trigger = CountingTrigger()
    recorder = FeedbackStreamRecorder(S3FeedbackDataset(BUCKET), trigger, parse=feedback_from_stream,
                                      sequence_of=sequence_of)
    records = [
        stream_record(feedback_item("ana", "f1", photo_id="p1", tag="dog"), "100"),
        stream_record({"PK": "OWNER#ana", "SK": "PHOTO#p1", "entity": "photo", "owner": "ana"}, "101"),  # not ours
        stream_record(feedback_item("ana", "f2", type_="search_irrelevant", photo_id="p2", query="beach", rank=3,
                                    created="2026-12-03T00:00:01+00:00"), "102"),
        stream_record(feedback_item("ben", "f3", type_="undo", undoes="f0", created="2026-12-03T08:00:00+00:00"), "103"),
    ]
    outcome = recorder.record_batch(records)
    assert (outcome.recorded, outcome.skipped, outcome.part) == (3, 1, "100-103")
    assert trigger.calls == [(3, "100-103")]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["feedback/owner=ana/date=2026-12-02/100-103.jsonl", "feedback/owner=ana/date=2026-12-03/100-103.jsonl",
                    "feedback/owner=ben/date=2026-12-03/100-103.jsonl"]
    head = s3.head_object(Bucket=BUCKET, Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms" and head["ContentType"] == "application/x-ndjson"
    # a retried batch rewrites the same objects with the same lines
    before = {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}
    recorder.record_batch(records)
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == keys
    assert {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys} == before
    # the training's reader sees each event once, owners and payloads intact, never the item's keys
    for key in keys:
        target = tmp_path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(before[key])
    lines = read_feedback(tmp_path)
    assert [(line["feedback_id"], line["owner"], line["type"]) for line in lines] == [
        ("f1", "ana", "tag_rejected"), ("f2", "ana", "search_irrelevant"), ("f3", "ben", "undo")]
    assert lines[1]["rank"] == 3 and lines[2]["undoes"] == "f0"
    assert not any("PK" in line or "entity" in line for line in lines)


def test_the_dataset_object_uses_the_data_key_when_one_is_given(s3):
    key_arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    item = feedback_item("ana", "f9", photo_id="p1", tag="cat")
    S3FeedbackDataset(BUCKET, kms_key_id=key_arn).append([feedback_from_stream(stream_record(item, "7"))], part="7-7")
    head = s3.head_object(Bucket=BUCKET, Key="feedback/owner=ana/date=2026-12-02/7-7.jsonl")
    assert head["SSEKMSKeyId"] == key_arn


@pytest.mark.parametrize("record", [
    stream_record(feedback_item("ana", "f1", photo_id="p", tag="x"), "1", event="MODIFY"),  # an undo marking it undone
    {"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "2", "OldImage": {}}},
    stream_record(feedback_item("ana", "f1", type_="no_such_type"), "3"),
    stream_record({**feedback_item("ana", "f1"), "entity": "settings"}, "4"),
])
def test_records_that_are_not_a_new_feedback_event_are_skipped(record):
    assert feedback_from_stream(record) is None


def test_an_item_without_owner_attribute_takes_it_from_its_key_and_drops_current_state():
    item = feedback_item("ana", "f1", photo_id="p1", tag="dog", undone_at="2026-12-03T00:00:00+00:00")
    del item["owner"]
    record = feedback_from_stream(stream_record(item, "1"))
    assert record.owner == "ana" and record.type is FeedbackType.TAG_REJECTED and record.undone_at is None
    assert record.created_at == datetime(2026, 12, 2, 23, 59, tzinfo=timezone.utc)


class FailingTrigger:
    def record(self, events, *, batch):
        from photo_organizer.errors import StorageUnavailableError

        raise StorageUnavailableError("throttled")


def test_a_failing_trigger_does_not_fail_the_recording(s3):
    recorder = FeedbackStreamRecorder(S3FeedbackDataset(BUCKET), FailingTrigger(), parse=feedback_from_stream,
                                      sequence_of=sequence_of)
    outcome = recorder.record_batch([stream_record(feedback_item("ana", "f1", photo_id="p", tag="x"), "5")])
    assert outcome.recorded == 1 and outcome.trigger_error == "StorageUnavailableError"
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


# ---- the pipeline's Lambda steps ------------------------------------------------------------------------------

RUN = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/p/execution/abc123"


class Registry:
    def __init__(self, approved: dict[str, str | None]) -> None:
        self.approved = approved

    def latest_approved(self, group: str) -> str | None:
        return self.approved[group]


def test_export_writes_the_run_snapshot_and_stages_the_approved_models(s3):
    previous = f"s3://{BUCKET}/runs/old1/models/tagging/job/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=previous.split(f"{BUCKET}/")[1], Body=model_tarball({"kind": "tagging"}))
    photos = [PhotoFeatures(owner="ana", photo_id="p1", analysed_at="2026-12-01T00:00:00Z", labels={"dog": 90.0}),
              PhotoFeatures(owner="ana", photo_id="p2", analysed_at="2026-12-01T00:00:00Z")]
    staging = TrainingRunStaging(S3RunArtifacts(BUCKET), Registry({"g-tag": previous, "g-faces": None}),
                                 lambda: FeatureSnapshot(photos=photos))
    counts = staging.stage(RUN, {"tagging": "g-tag", "faces": "g-faces"})
    assert counts == {"photos": 2, "faces": 0, "pairs": 0}
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/abc123/")["Contents"])
    assert keys == ["runs/abc123/approved/faces/NONE", "runs/abc123/approved/tagging/model.tar.gz",
                    "runs/abc123/features/faces.jsonl", "runs/abc123/features/pairs.jsonl",
                    "runs/abc123/features/photos.jsonl"]
    text = s3.get_object(Bucket=BUCKET, Key="runs/abc123/features/photos.jsonl")["Body"].read().decode()
    assert [json.loads(line)["photo_id"] for line in text.splitlines()] == ["p1", "p2"]
    assert s3.head_object(Bucket=BUCKET, Key="runs/abc123/approved/tagging/model.tar.gz")["ServerSideEncryption"] == "aws:kms"


class Suggestions:
    def __init__(self) -> None:
        self.replaced: dict[tuple[str, str], list] = {}

    def replace_suggestions(self, owner, photo_id, suggestions):
        self.replaced[(owner, photo_id)] = list(suggestions)


class Matchers:
    def __init__(self) -> None:
        self.promoted: dict[str, dict] = {}

    def promote(self, owner, document):
        self.promoted[owner] = document


class FixedModel:
    def suggest(self, photo):
        return [("grandma's house", 0.8, False), ("dog", 0.1, True)] if photo.photo_id == "p1" else []


def _reapplication(suggestions, matchers) -> ModelReapplication:
    def read_photo(text):
        body = json.loads(text)
        body.pop("schema", None)
        return PhotoFeatures(**body)

    return ModelReapplication(S3RunArtifacts(BUCKET), suggestions=suggestions, matchers=matchers,
                              tagging_models=lambda document: {o: FixedModel() for o in document["owners"]},
                              read_photo=read_photo)


def test_reapply_tagging_replaces_the_suggestions_of_every_photo_of_an_owner_with_a_model(s3):
    photos = [PhotoFeatures(owner=o, photo_id=p, analysed_at="2026-12-01T00:00:00Z")
              for o, p in (("ana", "p1"), ("ana", "p2"), ("ben", "p3"))]
    artifacts = S3RunArtifacts(BUCKET)
    from photo_organizer.learning.datasets import to_line

    artifacts.write_features(RUN, "photos.jsonl", (to_line(p) for p in photos))
    model_key = "runs/abc123/models/tagging/job/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=model_key, Body=model_tarball({"kind": "tagging", "owners": {"ana": {}}}))
    suggestions = Suggestions()
    updated = _reapplication(suggestions, Matchers()).reapply("tagging", f"s3://{BUCKET}/{model_key}", RUN)
    assert updated == 2 and set(suggestions.replaced) == {("ana", "p1"), ("ana", "p2")}
    first = suggestions.replaced[("ana", "p1")]
    assert [(s.tag, s.confidence, s.on_photo) for s in first] == [("grandma's house", 0.8, False), ("dog", 0.1, True)]
    assert suggestions.replaced[("ana", "p2")] == []


def test_reapply_faces_promotes_each_owners_matcher_and_refuses_a_model_of_the_other_kind(s3):
    key = "runs/abc123/models/faces/job/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=model_tarball(
        {"kind": "faces", "owners": {"ana": {"threshold": 0.7}, "ben": {"threshold": 0.75}}}))
    matchers = Matchers()
    reapplication = _reapplication(Suggestions(), matchers)
    assert reapplication.reapply("faces", f"s3://{BUCKET}/{key}", RUN) == 2
    assert matchers.promoted == {"ana": {"threshold": 0.7}, "ben": {"threshold": 0.75}}
    with pytest.raises(ValidationError):
        reapplication.reapply("tagging", f"s3://{BUCKET}/{key}", RUN)


@pytest.mark.parametrize("uri", ["s3://another-bucket/runs/x/model.tar.gz", f"s3://{BUCKET}/feedback/x.tar.gz",
                                 "https://example.invalid/model.tar.gz"])
def test_model_data_outside_the_runs_of_the_dataset_bucket_is_refused(s3, uri):
    with pytest.raises(ValidationError):
        S3RunArtifacts(BUCKET).model_document(uri)


def test_handlers_validate_the_step_events():
    from photo_organizer.handlers.training_steps import export, reapply

    with pytest.raises(ValidationError):
        reapply({"kind": "captions", "model_data": "s3://b/k", "execution_id": "e"}, None)
    with pytest.raises(ValidationError):
        export({"execution_id": "", "model_package_groups": {}}, TrainingRunStaging(None, None, None))
    with pytest.raises(ValidationError):
        export({"execution_id": "e", "model_package_groups": {"tagging": 3}}, TrainingRunStaging(None, None, None))

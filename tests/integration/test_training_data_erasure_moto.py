"""Account erasure of the cloud's training data (moto S3, versioned like the deployed dataset bucket): the feedback
lines of the erased owner (owner-partitioned parts and legacy parts of several owners), the tombstone that stops late
stream records, the race of an append with an erasure, two erasures rewriting one legacy part at once, and the run
files and models under runs/ (model.json's per-owner entries inside model.tar.gz). Each case checks every object
version, not just the current ones, and that the other owner's data is exactly as it was."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime, timezone

import boto3
import pytest

from photo_organizer.adapters.aws.s3_feedback_dataset import S3FeedbackDataset
from photo_organizer.adapters.aws.s3_training_runs import S3RunArtifacts
from photo_organizer.adapters.aws.stream_documents import erased_owner
from photo_organizer.adapters.aws.stream_feedback import feedback_from_stream, sequence_of
from photo_organizer.feedback.erasure import tombstone_key
from photo_organizer.feedback.models import FeedbackRecord
from photo_organizer.services.retraining_trigger import FeedbackStreamRecorder
from photo_organizer.learning.datasets import PhotoFeatures, to_line
from photo_organizer.services.training_data_erasure import TrainingDataErasure
from photo_organizer.services.training_runs import ModelReapplication

from model_tarball import model_tarball as tarball_of
from test_feedback_recording_moto import (  # the stream and model shapes of that suite
    FixedModel,
    Matchers,
    Suggestions,
    feedback_item,
    stream_record,
)

BUCKET = "po-dataset-erasure-test"
ANA, BEN = "ana-0001", "ben-0002"


@pytest.fixture
def s3(aws_env):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def event(owner: str, feedback_id: str, created: str = "2026-12-02T10:00:00+00:00") -> FeedbackRecord:
    return feedback_from_stream(stream_record(feedback_item(owner, feedback_id, photo_id="p1", tag="dog",
                                                            created=created), "1"))


def versions(s3, prefix: str = "") -> list[tuple[str, bytes | None]]:
    """(key, body) of every version (None: a delete marker) under prefix."""
    listing = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    found = [(v["Key"], s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read())
             for v in listing.get("Versions", [])]
    return sorted(found) + [(m["Key"], None) for m in listing.get("DeleteMarkers", [])]


def owners_in(body: bytes) -> list[str]:
    return [json.loads(line)["owner"] for line in body.splitlines() if line.strip()]


def legacy_part(s3, key: str, *records: FeedbackRecord) -> None:
    """A part of the date-only layout (one stream batch, several owners), written twice as a retried batch would."""
    body = "".join(json.dumps({"owner": r.owner, "feedback_id": r.feedback_id, "schema": 1}) + "\n" for r in records)
    for _ in range(2):
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def test_erasure_deletes_every_version_of_the_owners_lines_and_rewrites_legacy_parts_without_them(s3):
    dataset = S3FeedbackDataset(BUCKET)
    dataset.append([event(ANA, "a1"), event(BEN, "b1")], part="1-2")
    dataset.append([event(ANA, "a1"), event(BEN, "b1")], part="1-2")  # the retried batch: a second version each
    dataset.append([event(ANA, "a2", "2026-12-03T10:00:00+00:00")], part="3-3")
    legacy_part(s3, "feedback/date=2026-11-30/0-9.jsonl", event(ANA, "a0"), event(BEN, "b0"), event(ANA, "a00"))
    legacy_part(s3, "feedback/date=2026-11-29/0-8.jsonl", event(ANA, "a000"))
    assert dataset.owner_lines(ANA) == 2 * 1 + 1 + 2 * 2 + 2 * 1  # every version counts
    ben_before = [v for v in versions(s3, f"feedback/owner={BEN}/")]

    outcome = dataset.erase_owner(ANA)

    assert outcome.removed == 2 + 2 + 1  # current versions: a1, a2 / a0, a00 / a000
    assert versions(s3, f"feedback/owner={ANA}/") == []
    legacy = versions(s3, "feedback/date=")
    assert [(k, owners_in(b)) for k, b in legacy] == [("feedback/date=2026-11-30/0-9.jsonl", [BEN])], legacy
    assert versions(s3, f"feedback/owner={BEN}/") == ben_before
    assert dataset.owner_lines(ANA) == 0 and dataset.owner_lines(BEN) == 2 + 1
    tombstone = s3.get_object(Bucket=BUCKET, Key=tombstone_key(ANA))
    assert ANA not in tombstone_key(ANA) and tombstone["ServerSideEncryption"] == "aws:kms"
    again = dataset.erase_owner(ANA)
    assert (again.removed, again.versions_deleted) == (0, 0)


def test_after_the_erasure_late_stream_records_of_the_owner_are_not_written_and_others_are(s3):
    dataset = S3FeedbackDataset(BUCKET)
    dataset.erase_owner(ANA)
    dataset.append([event(ANA, "late"), event(BEN, "b1"), event(ANA, "anew", "2099-01-01T00:00:00+00:00")], part="5-7")
    keys = [k for k, _ in versions(s3, "feedback/")]
    # events created before the tombstone are the erased account's; one created after it (an account started anew)
    # is recorded
    assert keys == [f"feedback/owner={ANA}/date=2099-01-01/5-7.jsonl", f"feedback/owner={BEN}/date=2026-12-02/5-7.jsonl"]


def test_an_append_that_looked_before_the_tombstone_deletes_what_it_wrote_when_the_erasure_came_in_between(s3):
    client = boto3.client("s3")
    dataset = S3FeedbackDataset(BUCKET, client_factory=lambda: client)
    eraser = S3FeedbackDataset(BUCKET)  # the other shard's invocation
    erased = []

    def erase_before_the_write(params, **_):
        if params["Key"].startswith(f"feedback/owner={ANA}/") and not erased:
            erased.append(eraser.erase_owner(ANA))  # lists the prefix before this write lands

    client.meta.events.register("before-parameter-build.s3.PutObject", erase_before_the_write)
    dataset.append([event(ANA, "a1"), event(BEN, "b1")], part="8-9")

    assert erased and erased[0].objects == 0  # the erasure's listing came before the write: it found nothing
    assert versions(s3, f"feedback/owner={ANA}/") == []
    assert [owners_in(b) for _, b in versions(s3, f"feedback/owner={BEN}/")] == [[BEN]]


def test_two_erasures_rewriting_one_legacy_part_at_once_never_put_back_what_the_other_took_out(s3):
    key = "feedback/date=2026-11-30/0-9.jsonl"
    legacy_part(s3, key, event(ANA, "a0"), event(BEN, "b0"), event("cy-0003", "c0"))
    client = boto3.client("s3")
    first = S3FeedbackDataset(BUCKET, client_factory=lambda: client)
    second = S3FeedbackDataset(BUCKET)
    raced = []

    def rewrite_in_between(params, **_):
        if params["Key"] == key and "IfMatch" in params and not raced:
            raced.append(second.erase_owner(BEN))  # BEN's erasure rewrites the part after ANA's read it

    client.meta.events.register("before-parameter-build.s3.PutObject", rewrite_in_between)
    outcome = first.erase_owner(ANA)

    assert raced and raced[0].removed == 1 and outcome.removed == 1  # ANA's PUT lost the race, read again
    assert [(k, owners_in(b)) for k, b in versions(s3, key)] == [(key, ["cy-0003"])]


def model_tarball(owners: dict[str, dict], skipped: dict[str, str]) -> bytes:
    return tarball_of({"kind": "tagging", "schema": 1, "owners": owners, "skipped": skipped})


def model_json(data: bytes) -> dict:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return json.loads(tar.extractfile("model.json").read())


def test_run_files_and_models_lose_the_owners_part_and_keep_every_other_owners_as_it_was(s3):
    run = "runs/exec1/"
    model_key = f"{run}models/tagging/pipelines-exec1-train/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=model_key, Body=model_tarball({ANA: {"w": [1]}, BEN: {"w": [2]}}, {}))
    s3.put_object(Bucket=BUCKET, Key=model_key, Body=model_tarball({ANA: {"w": [1.5]}, BEN: {"w": [2]}}, {}))
    s3.put_object(Bucket=BUCKET, Key=f"{run}approved/faces/NONE", Body=b"")
    s3.put_object(Bucket=BUCKET, Key=f"{run}features/photos.jsonl",
                  Body=f'{{"owner":"{ANA}","photo_id":"p1"}}\n{{"owner":"{BEN}","photo_id":"p2"}}\n'.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{run}sets/train/summary.json",
                  Body=json.dumps({"events": 3, "owners": {ANA: 2, BEN: 1}}).encode())
    s3.put_object(Bucket=BUCKET, Key=f"{run}notes.bin", Body=f"opaque {ANA} bytes".encode())
    runs = S3RunArtifacts(BUCKET)

    outcome = runs.erase_owner(ANA)

    assert model_json(s3.get_object(Bucket=BUCKET, Key=model_key)["Body"].read())["owners"] == {BEN: {"w": [2]}}
    assert [model_json(b)["owners"] for _, b in versions(s3, model_key)] == [{BEN: {"w": [2]}}]  # no older version
    assert owners_in(s3.get_object(Bucket=BUCKET, Key=f"{run}features/photos.jsonl")["Body"].read()) == [BEN]
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=f"{run}sets/train/summary.json")["Body"].read()) == {
        "events": 3, "owners": {BEN: 1}}
    assert outcome.unreadable == [f"{run}notes.bin"]  # named, never guessed at: the audit's "remaining"
    assert outcome.removed == 3 and outcome.objects == 3
    assert all(ANA.encode() not in (b or b"") for k, b in versions(s3, run) if not k.endswith(".bin")
               and not k.endswith(".gz"))
    assert runs.erase_owner(ANA).removed == 0


def output_tarball(name: str, document: dict) -> bytes:
    """A training job's output.tar.gz (SM_OUTPUT_DATA_DIR): the script's summary files."""
    data, buffer = json.dumps(document).encode(), io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_runs_evaluation_and_training_summaries_lose_the_owner_and_none_is_left_unreadable(s3):
    """What evaluate.py and the training jobs leave beside the models: evaluation.json labels "<owner>/<tag>" (per-tag
    scores, held-out evidence), the jobs' output.tar.gz lists the owners trained and skipped."""
    run = "runs/exec2/"
    evaluation_key = f"{run}evaluation/evaluation.json"
    evaluation = {"tagging": {"candidate": {"per_tag": {f"{ANA}/cat": 1.0, f"{BEN}/dog": 0.5}},
                              "held_out": {"examples": 2, "labels": [f"{ANA}/cat", f"{BEN}/dog"], "answers": {},
                                           "candidate": [[0, 0, 1.0, 0, 0], [1, 1, 1.0, 0, 0]], "approved": []}}}
    s3.put_object(Bucket=BUCKET, Key=evaluation_key, Body=json.dumps(evaluation).encode())
    output_key = f"{run}models/tagging/pipelines-exec2-train/output/output.tar.gz"
    summary = {"owners": [ANA, BEN], "skipped": {}}
    s3.put_object(Bucket=BUCKET, Key=output_key, Body=output_tarball("tagging_training.json", summary))

    outcome = S3RunArtifacts(BUCKET).erase_owner(ANA)

    assert outcome.unreadable == [] and outcome.objects == 2
    after = json.loads(s3.get_object(Bucket=BUCKET, Key=evaluation_key)["Body"].read())
    assert after["tagging"]["held_out"]["labels"] == [f"{BEN}/dog"]
    assert after["tagging"]["held_out"]["candidate"] == [[1, 0, 1.0, 0, 0]]
    assert after["tagging"]["candidate"]["per_tag"] == {f"{BEN}/dog": 0.5}
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=BUCKET, Key=output_key)["Body"].read())) as tar:
        assert json.loads(tar.extractfile("tagging_training.json").read())["owners"] == [BEN]
    assert [key for key, _ in versions(s3, run)] == sorted([evaluation_key, output_key]), "no older version left"


def erasure_mark_removed(owner: str, sequence: str) -> dict:
    return {"eventName": "REMOVE", "eventSource": "aws:dynamodb",
            "dynamodb": {"SequenceNumber": sequence, "ApproximateCreationDateTime": datetime.now(timezone.utc).timestamp(),
                         "Keys": {"PK": {"S": f"OWNER#{owner}"}, "SK": {"S": "SETTINGS#erasure"}}}}


def test_the_recorder_writes_the_batch_then_erases_the_owner_whose_erasure_mark_was_removed(s3):
    dataset, runs = S3FeedbackDataset(BUCKET), S3RunArtifacts(BUCKET)
    s3.put_object(Bucket=BUCKET, Key="runs/e/features/photos.jsonl", Body=f'{{"owner":"{ANA}"}}\n'.encode())
    recorder = FeedbackStreamRecorder(dataset, None, parse=feedback_from_stream, sequence_of=sequence_of,
                                      erased_owner=erased_owner, erasure=TrainingDataErasure(dataset, runs))
    outcome = recorder.record_batch([
        stream_record(feedback_item(ANA, "a1", photo_id="p1", tag="dog"), "10"),
        stream_record(feedback_item(BEN, "b1", photo_id="p2", tag="cat"), "11"),
        erasure_mark_removed(ANA, "12"),
    ])

    assert (outcome.recorded, outcome.skipped) == (2, 0)
    assert [(e.dataset_lines, e.model_entries, e.remaining) for e in outcome.erased] == [(1, 1, [])]
    assert [k for k, _ in versions(s3, "feedback/")] == [f"feedback/owner={BEN}/date=2026-12-02/10-12.jsonl"]
    assert versions(s3, "runs/") == []  # the file held only the erased owner: every version went


def test_a_run_under_way_during_the_erasure_never_applies_its_model_entry_for_the_erased_owner(s3):
    """The run's snapshot was taken before the erasure, so its model has an entry for the owner: the re-application
    looks the owners up among the tombstones and writes nothing for them (no matcher, no suggestion)."""
    dataset, runs = S3FeedbackDataset(BUCKET), S3RunArtifacts(BUCKET)
    dataset.erase_owner(ANA)
    run = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/p/execution/late1"
    runs.write_features(run, "photos.jsonl", (to_line(PhotoFeatures(owner=o, photo_id="p1", analysed_at="2026-12-01"))
                                              for o in (ANA, BEN)))
    for kind in ("tagging", "faces"):
        s3.put_object(Bucket=BUCKET, Key=f"runs/late1/models/{kind}/model.tar.gz", Body=tarball_of(
            {"kind": kind, "owners": {ANA: {"threshold": 0.7}, BEN: {"threshold": 0.75}}}))
    suggestions, matchers = Suggestions(), Matchers()
    reapplication = ModelReapplication(
        runs, suggestions=suggestions, matchers=matchers, erased=dataset.erased,
        tagging_models=lambda document: {o: FixedModel() for o in document["owners"]},
        read_photo=lambda text: PhotoFeatures(**{k: v for k, v in json.loads(text).items() if k != "schema"}))

    assert reapplication.reapply("faces", f"s3://{BUCKET}/runs/late1/models/faces/model.tar.gz", run) == 1
    assert reapplication.reapply("tagging", f"s3://{BUCKET}/runs/late1/models/tagging/model.tar.gz", run) == 1
    assert list(matchers.promoted) == [BEN] and list(suggestions.replaced) == [(BEN, "p1")]

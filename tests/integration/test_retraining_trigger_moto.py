"""The retraining trigger: the counter and lock item on the table (moto DynamoDB, real conditional writes) and the
pipeline's executions through SageMakerPipelineRuns, whose ListPipelineExecutions / StartPipelineExecution requests
are asserted and answered with a recorded response shape (botocore's Stubber checks both against the service
model; moto runs no pipeline, so these are request-shape tests for the SageMaker side)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.adapters.aws.dynamodb_retraining_state import DynamoDbRetrainingState
from photo_organizer.adapters.aws.sagemaker_pipeline_runs import SageMakerPipelineRuns
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.services.retraining_trigger import RetrainingTrigger

TABLE = "po-trigger-test"
PIPELINE = "photo-organizer-dev-retraining"
RECORDED = json.loads((Path(__file__).parents[1] / "data" / "sagemaker" / "list_pipeline_executions.json").read_text())
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)


def _listing(*statuses: str) -> dict:
    """The recorded ListPipelineExecutions response with its executions' statuses replaced (newest first)."""
    body = {"PipelineExecutionSummaries": copy.deepcopy(RECORDED["PipelineExecutionSummaries"][:len(statuses)])}
    for summary, status in zip(body["PipelineExecutionSummaries"], statuses):
        summary["PipelineExecutionStatus"] = status
        summary["StartTime"] = datetime.fromisoformat(summary["StartTime"].replace("Z", "+00:00"))
    return body


class RecordingSageMaker:
    """A SageMaker client whose answers replay recorded shapes; every request is checked by the Stubber."""

    def __init__(self) -> None:
        self.client = boto3.client("sagemaker", region_name="us-east-1")
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.started: list[dict] = []

    def expect_listing(self, *statuses: str) -> None:
        self.stubber.add_response("list_pipeline_executions", _listing(*statuses), {
            "PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 10})

    def expect_start(self, token: str | None = None) -> str:
        arn = f"arn:aws:sagemaker:eu-west-1:111111111111:pipeline/{PIPELINE}/execution/new{len(self.started)}"
        expected = {"PipelineName": PIPELINE, "PipelineExecutionDisplayName": _Any(),
                    "ClientRequestToken": token or _Any()}
        self.stubber.add_response("start_pipeline_execution", {"PipelineExecutionArn": arn}, expected)
        self.started.append(expected)
        return arn


class _Any:
    def __eq__(self, other) -> bool:
        return isinstance(other, str) and bool(other)

    def __repr__(self) -> str:
        return "<any text>"


@pytest.fixture
def table(aws_env):
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    return DynamoDbRetrainingState(TABLE)


@pytest.fixture
def sagemaker():
    recording = RecordingSageMaker()
    yield recording
    recording.stubber.assert_no_pending_responses()


def _trigger(table, sagemaker, *, minimum=50, clock=lambda: NOW) -> RetrainingTrigger:
    return RetrainingTrigger(table, SageMakerPipelineRuns(PIPELINE, client_factory=lambda: sagemaker.client),
                             min_feedback=minimum, clock=clock)


def _state() -> dict:
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"PK": {"S": "ML#retraining"},
                                                                    "SK": {"S": "STATE"}})["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_below_the_threshold_the_counter_grows_and_no_pipeline_call_is_made(table, sagemaker):
    trigger = _trigger(table, sagemaker)
    assert trigger.record(20, batch="1-20").pending == 20
    outcome = trigger.record(29, batch="21-49")
    assert (outcome.pending, outcome.started) == (49, None)
    assert _state()["pending"] == "49" and _state()["total"] == "49"
    assert "lock_holder" not in _state()


def test_a_retried_batch_is_counted_once(table, sagemaker):
    trigger = _trigger(table, sagemaker)
    trigger.record(30, batch="100-130")
    assert trigger.record(30, batch="100-130").pending == 30
    assert _state()["total"] == "30"


def test_at_the_threshold_it_checks_for_a_running_execution_then_starts_one_and_resets_the_counter(table, sagemaker):
    trigger = _trigger(table, sagemaker)
    trigger.record(45, batch="1-45")
    sagemaker.expect_listing("Succeeded", "Failed")
    arn = sagemaker.expect_start()
    outcome = trigger.record(5, batch="46-50")
    assert outcome.started == arn and outcome.pending == 0
    state = _state()
    assert state["pending"] == "0" and state["execution"] == arn and "lock_holder" not in state


def test_never_two_at_once_while_an_execution_is_executing_the_counter_is_kept(table, sagemaker):
    trigger = _trigger(table, sagemaker)
    sagemaker.expect_listing("Executing", "Succeeded")  # the recorded shape: the newest is still going
    outcome = trigger.record(60, batch="1-60")
    assert outcome.started is None and "still going" in outcome.reason
    assert _state()["pending"] == "60" and "lock_holder" not in _state()
    # the run ends: the next batch starts one, with everything counted meanwhile
    sagemaker.expect_listing("Succeeded", "Succeeded")
    arn = sagemaker.expect_start()
    assert trigger.record(3, batch="61-63").started == arn
    assert _state()["pending"] == "0"


def test_a_stopping_execution_also_blocks_a_start(table, sagemaker):
    sagemaker.expect_listing("Stopping")
    assert _trigger(table, sagemaker).record(50, batch="1-50").started is None


def test_while_another_invocation_holds_the_lock_none_starts_and_an_expired_lock_is_taken_over(table, sagemaker):
    assert table.acquire("other-shard", now=NOW, lease=timedelta(minutes=5))
    trigger = _trigger(table, sagemaker)
    outcome = trigger.record(80, batch="1-80")
    assert outcome.started is None and "lock held" in outcome.reason
    assert _state()["lock_holder"] == "other-shard"
    later = _trigger(table, sagemaker, clock=lambda: NOW + timedelta(minutes=6))
    sagemaker.expect_listing("Succeeded")
    arn = sagemaker.expect_start()
    assert later.record(1, batch="81-81").started == arn
    assert "lock_holder" not in _state()


def test_events_counted_while_a_start_was_being_decided_stay_on_the_counter(table):
    table.count(50, batch="1-50")
    holder = "h" * 64
    assert table.acquire(holder, now=NOW, lease=timedelta(minutes=5))
    assert not table.acquire("another", now=NOW + timedelta(seconds=10), lease=timedelta(minutes=5))
    table.count(7, batch="51-57")  # another shard's batch lands meanwhile
    table.started(holder, execution="arn:x", consumed=50, now=NOW)
    assert _state()["pending"] == "7" and _state()["total"] == "57" and "lock_holder" not in _state()


def test_a_failed_start_releases_the_lock_and_keeps_the_counter(table, sagemaker):
    trigger = _trigger(table, sagemaker)
    sagemaker.expect_listing()
    sagemaker.stubber.add_client_error("start_pipeline_execution", service_error_code="ThrottlingException",
                                       http_status_code=400)
    with pytest.raises(StorageUnavailableError):
        trigger.record(55, batch="1-55")
    state = _state()
    assert state["pending"] == "55" and "lock_holder" not in state


def test_the_start_token_is_the_same_for_a_retried_batch_and_fits_the_api(table, sagemaker):
    from photo_organizer.services.retraining_trigger import _token

    assert _token("1-50") == _token("1-50") != _token("1-51")
    assert 32 <= len(_token("1-50")) <= 128
    sagemaker.expect_listing()
    sagemaker.expect_start(token=_token("1-50"))
    assert _trigger(table, sagemaker).record(50, batch="1-50").started


def test_the_feedback_functions_pipeline_start_names_no_owner(table, sagemaker):
    """SageMaker keeps an execution's request (display name, parameters) and CloudWatch keeps its jobs' logs after an
    account erasure: the start the feedback function makes from owners' events carries none of their ids. No
    PipelineParameters at all (the pipeline's own are instance types and thresholds: tests/infrastructure/test_ml),
    the display name is a count, the token a hash of the batch's sequence numbers."""
    from photo_organizer.adapters.aws.s3_feedback_dataset import S3FeedbackDataset
    from photo_organizer.adapters.aws.stream_feedback import feedback_from_stream, sequence_of
    from photo_organizer.services.retraining_trigger import FeedbackStreamRecorder
    from test_feedback_recording_moto import feedback_item, stream_record

    owners = ["3f1c2b7e-0000-4000-8000-00000000a11c", "3f1c2b7e-0000-4000-8000-00000000b0b0"]
    boto3.client("s3").create_bucket(Bucket="po-dataset-test")
    requests: list[dict] = []
    sagemaker.client.meta.events.register("before-parameter-build.sagemaker.StartPipelineExecution",
                                          lambda params, **_: requests.append(params))
    recorder = FeedbackStreamRecorder(S3FeedbackDataset("po-dataset-test"), _trigger(table, sagemaker, minimum=2),
                                      parse=feedback_from_stream, sequence_of=sequence_of)
    sagemaker.expect_listing("Succeeded")
    arn = sagemaker.expect_start()

    outcome = recorder.record_batch([
        stream_record(feedback_item(owner, f"f{n}", photo_id=f"p{n}", tag=f"tag of {owner}"), f"{100 + n}")
        for n, owner in enumerate(owners)])

    assert outcome.trigger is not None and outcome.trigger.started == arn
    [request] = requests
    assert set(request) == {"PipelineName", "PipelineExecutionDisplayName", "ClientRequestToken"}, request
    assert request["PipelineExecutionDisplayName"] == "feedback-2"
    assert not any(owner in json.dumps(request) for owner in owners)
    assert not any(owner in json.dumps(_state()) for owner in owners), "the trigger's item names no owner either"

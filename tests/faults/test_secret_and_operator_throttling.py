"""Throttling of the cursor secret's read (a cold start of the API function) and of the operator's calls (the cloud
smoke's stack outputs and Glue run, the Glue jobs' CloudWatch metrics), under moto.

The API's first request after a throttled GetSecretValue answers 503 and builds nothing half-way: the client's retry
builds the services and is answered. The operator's calls surface a retryable error; the command's rerun completes
and starts one Glue run, not two. CloudWatch metrics are the jobs' run summary: a throttled PutMetricData fails
the publishing step retryably, and the rerun publishes each datum once."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from photo_organizer import bootstrap
from photo_organizer.search.models import SearchHit, SearchResults

from aws_faults import throttle
from fault_library import REGION, TABLE
from throttling import Caller, api_outcome, call_api, covers, raised_outcome

SECRET = covers("cursor secret", "secrets:secretsmanager.GetSecretValue")
OPERATOR = covers(
    "operations",
    "stack_outputs:cloudformation.DescribeStacks",
    "glue_runs:glue.StartJobRun",
    "glue_runs:glue.GetJobRun",
    "cloudwatch_metrics:cloudwatch.PutMetricData",
)


class PagingIndex:
    """The search index: every search answers a full page (moto has no OpenSearch data plane)."""

    def search(self, query, *, facets: bool = True) -> SearchResults:
        return SearchResults(hits=tuple(SearchHit(photo_id=f"p{i}", score=1.0, sort_values=(1.0, f"p{i}"))
                                        for i in range(query.limit)), total=100)

    def suggest(self, owner, prefix, *, limit: int = 10) -> dict:
        return {}

    def count(self, owner) -> int:
        return 100


@pytest.fixture
def cold_api(calls, monkeypatch):
    """The API function's environment as the api stack sets it, with the cursor key in Secrets Manager, and no
    services built yet (a cold container)."""
    boto3.client("dynamodb", region_name=REGION).create_table(
        **__import__("photo_organizer.adapters.aws.dynamodb_metadata", fromlist=["x"]).table_definition(TABLE))
    key = boto3.client("kms", region_name=REGION).create_key(Description="app data key")["KeyMetadata"]["KeyId"]
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="cursor-key", KmsKeyId=key, SecretString="k" * 64)["ARN"]
    for name, value in {"PO_BACKEND": "aws", "PO_ORIGINALS_BUCKET": "po-originals", "PO_DERIVATIVES_BUCKET":
                        "po-derivatives", "PO_TABLE_NAME": TABLE, "PO_FACE_COLLECTION_PREFIX": "po-faces",
                        "PO_OPENSEARCH_ENDPOINT": "https://search.invalid", "PO_CURSOR_SECRET_ARN": arn}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PO_CURSOR_SECRET", raising=False)
    monkeypatch.setattr(bootstrap, "_opensearch_index", PagingIndex)
    parameters.clear_caches()
    monkeypatch.setattr(parameters.base, "DEFAULT_PROVIDERS", {})  # Powertools' per-process provider: made anew
    bootstrap.use_services(None)
    yield calls
    bootstrap.use_services(None)
    parameters.clear_caches()


@pytest.mark.parametrize("site", SECRET, ids=str)
def test_a_throttled_secret_read_at_cold_start_answers_503_and_the_retry_is_served(cold_api, site):
    calls = cold_api
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    search = lambda: api_outcome(call_api("GET", "/search", query=[("q", "beach"), ("sort", "newest"),  # noqa: E731
                                                                    ("limit", "2")]))
    caller = Caller(calls)
    page = caller.step("first search of a cold container", search)
    assert fault.fired == 1 and caller.retryable_answers == 1, "the throttle is the client's 503, then served"
    assert page["total"] == 100 and page["next_cursor"], "served: a cursor signed with the key read"
    assert bootstrap.services().cursor_key == b"k" * 64


@pytest.mark.parametrize("site", OPERATOR, ids=str)
def test_a_throttled_operator_call_fails_retryably_and_the_rerun_does_it_once(calls, site):
    from photo_organizer.adapters.aws.cloudwatch_metrics import CloudWatchMetrics
    from photo_organizer.adapters.aws.glue_runs import GlueJobRunner
    from photo_organizer.adapters.aws.stack_outputs import StackOutputs

    calls.paused = True
    boto3.client("glue", region_name=REGION).create_job(
        Name="analyze", Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"})
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="photo-organizer-dev-analysis", TemplateBody=json.dumps({
            "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"JobName": {"Value": "analyze"}}}))
    calls.paused = False
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    caller, glue, metrics = Caller(calls), GlueJobRunner(region=REGION), CloudWatchMetrics(region=REGION)

    job = caller.step("stack outputs", lambda: raised_outcome(
        lambda: StackOutputs(region=REGION).of("photo-organizer-dev-analysis")))["JobName"]
    run_id = caller.step("start", lambda: raised_outcome(lambda: glue.start(job)))
    run = caller.step("state", lambda: raised_outcome(lambda: glue.run(job, run_id)))
    summary = [{"MetricName": "PhotosAnalysed", "Value": 3.0, "Unit": "Count"}]
    caller.step("metrics", lambda: raised_outcome(lambda: metrics.put("PhotoOrganizer", summary)))

    assert fault.fired == 1 and caller.retryable_answers == 1
    calls.paused = True
    runs = boto3.client("glue", region_name=REGION).get_job_runs(JobName="analyze")["JobRuns"]
    assert [r["Id"] for r in runs] == [run_id] and run.run_id == run_id, "one run started, not two"
    data = boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="PhotoOrganizer")["Metrics"]
    assert [m["MetricName"] for m in data] == ["PhotosAnalysed"]

"""`photo-organizer cloud smoke` (CloudSmoke) against the deploy rehearsal, with the clients the CLI uses:

- the SmokeApi is the real PhotoApiClient, unchanged, talking HTTP to the rehearsal's API on loopback
  (rehearsal/loopback.py: the template's routes and JWT authorizer, the Api function from its staged bundle); its
  presigned POST goes to moto's S3 as a browser's would, and S3's event reaches the validator through the
  template's EventBridge rule and queue; the table's stream reaches the indexer (OpenSearch stand-in: recorded
  response shapes). The rehearsal delivers both event sources before each API request (no timed waits).
- the JobRunner is the CLI's (bootstrap.cloud_operator -> GlueJobRunner) against moto's Glue, with the job created
  from the analysis template's AWS::Glue::Job properties. moto records the run and executes nothing, so what the
  analyze_photos job would write for the smoke photo is written when the run starts, through the analysis store
  adapter the job's bootstrap uses (the job itself runs under Spark in test_glue_as_deployed.py).
- the job name is read as the CLI reads it: the StackOutputs adapter on `<prefix>-analysis`, with the CLI's default
  prefix. The rehearsal creates resources, not stacks, so moto's CloudFormation is given a stand-in stack per
  template holding only that template's Outputs, resolved to the rehearsal's resources. The API URL is the
  loopback's, passed as an operator passes --api-url (the ApiUrl output names an endpoint that does not exist here).
"""

from __future__ import annotations

import inspect
import json
import socket
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, Label
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.cli_cloud import smoke as cli_smoke
from photo_organizer.local_stack.client import PhotoApiClient
from photo_organizer.ports.operations import JobRun, JobRunner
from photo_organizer.services.cloud_smoke import CloudSmoke, SmokeSettings

from .rehearsal.journey import owner_of, validate_all
from .rehearsal.loopback import LoopbackApi
from .rehearsal.needs import needs_of, opensearch_needs
from .rehearsal.policy import evaluate

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "coffee_exif_gps.jpg"  # the CLI's default sample
BROKEN_JPEG = ROOT / "tests" / "data" / "bad" / "jpeg_header_only.jpg"  # a JPEG's SOI, then nothing decodable
FUNCTIONS = ("Api", "Validator", "Indexer")
ALL_STEPS = ["upload", "validated", "analysis job", "analysed", "found by search", "deleted", "gone from search"]


class AnalysedWhenStarted:
    """The CLI's GlueJobRunner, and at the start of a run what analyze_photos saves for the smoke owner's pending
    photos (moto's Glue runs nothing). Only the smoke owner's: other tests of the session share the table."""

    def __init__(self, runner: JobRunner, store: DynamoDbAnalysisStore, *, owner: str, version: int) -> None:
        self._runner, self._store, self._owner, self._version = runner, store, owner, version
        self.runs: list[str] = []
        self.saved: list[str] = []

    def start(self, job_name: str) -> str:
        run_id = self._runner.start(job_name)
        self.runs.append(run_id)
        for photo in self._store.pending(self._version, owner=self._owner).photos:
            result = AnalysisResult(
                photo_id=photo.photo_id, analysis_version=self._version, analysed_at=datetime.now(timezone.utc),
                source=AnalysisSource.REKOGNITION,
                labels=(Label(name="Coffee Cup", confidence=97.0, parents=("Cup", "Beverage")),))
            assert self._store.save(PhotoAnalysis(owner=self._owner, result=result, caption="A coffee cup"))
            self.saved.append(photo.photo_id)
        return run_id

    def run(self, job_name: str, run_id: str) -> JobRun:
        return self._runner.run(job_name, run_id)


@pytest.fixture(scope="module")
def deployment(rehearsal):
    """The analysis job created in moto's Glue from its template, the outputs the CLI reads, and the API on
    loopback with the event sources delivered between requests (their invocations kept to check for errors)."""
    analysis = rehearsal.assembly.stack_named("analysis")
    (logical, job), = [(lid, r) for lid, r in analysis.resources.items()
                       if r["Type"] == "AWS::Glue::Job" and "AnalyzePhotos" in lid]
    job_name = rehearsal.assembly.output(analysis.name, "AnalyzePhotosJobName", rehearsal)
    for stack in (analysis, rehearsal.assembly.stack_named("api")):
        _register_outputs(rehearsal, stack.name)
    glue = rehearsal.client("glue")
    args, _ = rehearsal.dataplane._by_input_shape(glue, "CreateJob", rehearsal.resolve(analysis.name,
                                                                                       job["Properties"]), {})
    assert args["Name"] == job_name
    glue.create_job(**args)
    api_url = rehearsal.assembly.output(rehearsal.assembly.stack_named("api").name, "ApiUrl", rehearsal)
    deliveries: list = []

    def deliver() -> None:
        deliveries.extend(validate_all(rehearsal))
        deliveries.extend(rehearsal.poll_stream(rehearsal.function("Indexer")))

    with LoopbackApi(rehearsal, between_requests=deliver) as loopback:
        yield {"job_name": job_name, "version": int(job["Properties"]["DefaultArguments"]["--analysis-version"]),
               "api_url_output": api_url, "loopback": loopback, "deliveries": deliveries}


def _register_outputs(rehearsal, stack: str) -> None:
    """A stand-in stack in moto's CloudFormation under the template's stack name, holding the template's Outputs
    resolved to the rehearsal's resources (a WaitConditionHandle: a template needs a resource; moto creates none)."""
    outputs = rehearsal.assembly.stack(stack).template.get("Outputs", {})
    template = {"Resources": {"OutputsOnly": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {key: {"Value": str(rehearsal.assembly.output(stack, key, rehearsal))} for key in outputs}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto: "WaitConditionHandle ... not supported" (nothing to create)
        rehearsal.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(template))


@pytest.fixture
def operator(rehearsal, monkeypatch):
    """bootstrap.cloud_operator as the CLI builds it, its SDK pointed at the rehearsal's moto; and the harness's
    DNS stand-in (as rehearsal/worker.py's) so the client reaches the presigned <bucket>.localhost URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", rehearsal.moto.url)
    for name, value in (("AWS_ACCESS_KEY_ID", "operator"), ("AWS_SECRET_ACCESS_KEY", "operator")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    from photo_organizer.bootstrap import cloud_operator

    return cloud_operator(rehearsal.region)


def _smoke(rehearsal, deployment, operator, user: str, sample: bytes, run_id: str):
    token = rehearsal.sign_in(user)
    owner = owner_of(rehearsal, token)
    jobs = AnalysedWhenStarted(operator.jobs, DynamoDbAnalysisStore(rehearsal.ref("storage", "Table"),
                                                                    client_factory=lambda: rehearsal.client("dynamodb")),
                               owner=owner, version=deployment["version"])
    prefix = inspect.signature(cli_smoke).parameters["prefix"].default  # what an operator gets without --prefix
    job_name = operator.stack_outputs(f"{prefix}-analysis").get("AnalyzePhotosJobName")  # as the CLI reads it
    assert job_name == deployment["job_name"]
    settings = SmokeSettings(analysis_job=job_name, ready_timeout_s=30, job_timeout_s=30,
                             search_timeout_s=30, poll_interval_s=0.05)
    with PhotoApiClient(deployment["loopback"].url, token) as client:
        report = CloudSmoke(client, jobs, settings).run(sample, run_id=run_id)
    return report, owner, jobs


def _left_of(rehearsal, owner: str, photo_id: str) -> dict[str, list]:
    """What the deployment still holds of a photo: S3 versions and delete markers, table items, live index docs."""
    s3 = rehearsal.client("s3")
    left: dict[str, list] = {}
    for concern in ("Originals", "Derivatives"):
        listing = s3.list_object_versions(Bucket=rehearsal.ref("storage", concern))
        left[concern] = [v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])
                         if photo_id in v["Key"]]
    items = rehearsal.client("dynamodb").scan(TableName=rehearsal.ref("storage", "Table"))["Items"]
    left["table"] = [i for i in items if photo_id in json.dumps(i)]
    document = rehearsal.opensearch.documents.get(f"{owner}#{photo_id}")
    left["index"] = [] if document is None or document.source.get("deleted") is True else [document.source]
    return left


def _calls_so_far(rehearsal) -> tuple[dict[str, int], int]:
    return {name: len(rehearsal.function(name).calls) for name in FUNCTIONS}, len(rehearsal.opensearch.requests)


def _assert_allowed_since(rehearsal, mark: tuple[dict[str, int], int]) -> None:
    """Every AWS call (and OpenSearch request) the functions made since `mark` is allowed by their roles' statements.
    Only since the mark: the session's functions also carry other tests' calls (an xfail of test_journey.py records
    a refused call on purpose), which are theirs to judge."""
    calls_before, requests_before = mark
    domain_arn, service = rehearsal.search_target()
    denied, checked = {}, {}
    for name, before in calls_before.items():
        function = rehearsal.function(name)
        needs = [need for call in function.calls[before:] for need in needs_of(call, rehearsal.context)]
        needs += [need for r in rehearsal.opensearch.requests[requests_before:] if r.access_key in function.access_keys
                  for need in opensearch_needs(r.method, r.path, domain_arn, r.signed_service or service)]
        checked[name] = len(needs)
        statements = rehearsal.statements(function)
        refused = [f"missing statement {json.dumps(d.missing_statement())} for {d.need.why}"
                   for d in (evaluate(need, statements) for need in needs) if not d.allowed]
        if refused:
            denied[name] = refused
    assert denied == {}, json.dumps(denied, indent=1)
    assert checked["Api"] and checked["Validator"], checked  # the smoke's own calls were there to check


def test_smoke_passes_every_step_through_the_deployed_api_with_a_glue_run_moto_records_and_leaves_nothing(
        rehearsal, deployment, operator):
    mark = _calls_so_far(rehearsal)
    prefix = inspect.signature(cli_smoke).parameters["prefix"].default
    # The output the CLI reads when no --api-url is given: found, and naming the API's endpoint.
    assert operator.stack_outputs(f"{prefix}-api")["ApiUrl"] == deployment["api_url_output"]
    assert deployment["api_url_output"].startswith("https://rehearsalapi.execute-api.")
    report, owner, jobs = _smoke(rehearsal, deployment, operator, "smoky", SAMPLE.read_bytes(), "rehearsal-ok")

    assert [(s.name, s.ok) for s in report.steps] == [(name, True) for name in ALL_STEPS], report.steps
    assert report.ok and report.photo_id
    assert jobs.saved == [report.photo_id]  # exactly the smoke photo was pending analysis
    (run_id,) = jobs.runs
    runs = rehearsal.client("glue").get_job_runs(JobName=deployment["job_name"])["JobRuns"]
    assert [(r["Id"], r["JobRunState"]) for r in runs if r["Id"] == run_id] == [(run_id, "SUCCEEDED")]
    steps = {s.name: s for s in report.steps}
    assert steps["analysis job"].detail == f"{run_id} SUCCEEDED"
    assert steps["analysed"].detail == "tags: Coffee Cup, Cup, Beverage", steps["analysed"].detail
    assert steps["found by search"].detail == "q='Coffee Cup'"  # searched by the analysis' first tag
    assert _left_of(rehearsal, owner, report.photo_id) == {"Originals": [], "Derivatives": [], "table": [], "index": []}
    assert f"{owner}#{report.photo_id}" in rehearsal.opensearch.documents  # a tombstone, not a never-indexed photo
    requests = deployment["loopback"].requests
    assert ("POST", "/uploads", 201) in requests and ("DELETE", f"/photos/{report.photo_id}", 204) in requests
    assert ("GET", f"/photos/{report.photo_id}", 404) in requests  # the smoke's check after DELETE
    assert [d.error for d in deployment["deliveries"] if d.error] == []
    _assert_allowed_since(rehearsal, mark)


def test_smoke_of_a_jpeg_the_validator_rejects_reports_the_failed_step_and_still_deletes_it(
        rehearsal, deployment, operator):
    mark = _calls_so_far(rehearsal)
    runs_before = rehearsal.client("glue").get_job_runs(JobName=deployment["job_name"])["JobRuns"]
    report, owner, jobs = _smoke(rehearsal, deployment, operator, "smoky-broken", BROKEN_JPEG.read_bytes(),
                                 "rehearsal-broken")

    assert not report.ok and report.photo_id
    assert [(s.name, s.ok) for s in report.steps] == [
        ("upload", True), ("validated", False), ("deleted", True), ("gone from search", True)], report.steps
    assert "REJECTED" in report.steps[1].detail, report.steps[1].detail
    assert jobs.runs == [] and jobs.saved == []  # no Glue run for a photo that never became READY
    assert rehearsal.client("glue").get_job_runs(JobName=deployment["job_name"])["JobRuns"] == runs_before
    assert _left_of(rehearsal, owner, report.photo_id) == {"Originals": [], "Derivatives": [], "table": [], "index": []}
    assert [d.error for d in deployment["deliveries"] if d.error] == []
    _assert_allowed_since(rehearsal, mark)


def test_smoke_refuses_a_sample_that_is_not_a_jpeg_before_sending_anything_to_the_deployment(
        rehearsal, deployment, operator):
    requests_before = len(deployment["loopback"].requests)
    report, _, jobs = _smoke(rehearsal, deployment, operator, "smoky-gif", (ROOT / "tests" / "data" / "bad" /
                                                                            "rocket.gif").read_bytes(), "rehearsal-gif")
    assert [(s.name, s.ok, s.detail) for s in report.steps] == [("upload", False, "the smoke sample must be a JPEG")]
    assert report.photo_id is None and not report.ok and jobs.runs == []
    assert deployment["loopback"].requests[requests_before:] == []  # no upload started, so nothing to delete

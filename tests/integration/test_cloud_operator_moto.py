"""The operator adapters behind `photo-organizer cloud smoke`, on moto (Glue runs there report a state and
execute nothing: what is proven is the requests and the state handling, not a job)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from photo_organizer.adapters.aws.glue_runs import GlueJobRunner
from photo_organizer.adapters.aws.stack_outputs import StackOutputs
from photo_organizer.errors import ConfigurationError, ConflictError

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def test_glue_runner_starts_the_named_job_and_reads_its_run_state_on_moto(aws):
    glue = boto3.client("glue", region_name=REGION)
    glue.create_job(Name="analyze", Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"})
    runner = GlueJobRunner(region=REGION)
    run_id = runner.start("analyze")
    run = runner.run("analyze", run_id)
    assert run.run_id == run_id and run.state in {"STARTING", "RUNNING", "SUCCEEDED"}


def test_glue_runner_says_a_concurrent_run_is_a_conflict_not_a_broken_deployment():
    class Refusing:
        def start_job_run(self, **_kw):
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ConcurrentRunsExceededException", "Message": "1 running"}},
                              "StartJobRun")

    with pytest.raises(ConflictError, match="already running"):
        GlueJobRunner(client_factory=Refusing).start("analyze")


def test_stack_outputs_are_read_by_stack_name_on_moto(aws):
    template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ApiUrl": {"Value": "https://api.example/"}}}
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="photo-organizer-dev-api", TemplateBody=json.dumps(template))
    assert StackOutputs(region=REGION).of("photo-organizer-dev-api") == {"ApiUrl": "https://api.example/"}


def test_missing_stack_is_a_configuration_error_naming_it(aws):
    with pytest.raises(ConfigurationError, match="photo-organizer-dev-analysis"):
        StackOutputs(region=REGION).of("photo-organizer-dev-analysis")

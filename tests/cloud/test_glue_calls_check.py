"""The offline check of the Glue jobs' calls (rehearsal/glue_calls.py) on a small template of the analysis stack's
shape: a call the role's statements do not allow is refused, naming the statement to add; storage outputs
(Fn::GetStackOutput) resolve to the resources the test created; KMS for the SSE-KMS bucket is asked for too."""

from __future__ import annotations

import pytest

from .rehearsal.glue_calls import Created, JobRole, denials, recorded

ACCOUNT, REGION = "111111111111", "eu-west-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/data-key"


def _output(name: str) -> dict:
    return {"Fn::GetStackOutput": {"StackName": "storage", "Region": REGION, "OutputName": name}}


TEMPLATE = {"Resources": {
    "JobRoleAAAAAAAA": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
    "JobRoleDefaultPolicyBBBBBBBB": {"Type": "AWS::IAM::Policy", "Properties": {
        "Roles": [{"Ref": "JobRoleAAAAAAAA"}], "PolicyName": "p",
        "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::Join": ["", [
                _output("PublishOutputFnGetAttDerivatives5BC92D79ArnA45E6BF6"), "/runs/job/*"]]}},
            {"Effect": "Allow", "Action": "kms:GenerateDataKey*",
             "Resource": _output("PublishOutputFnGetAttDataKey17AFBB84Arn5D1EA6C9")},
            {"Effect": "Allow", "Action": "dynamodb:Query",
             "Resource": _output("PublishOutputFnGetAttTableCD117FA1Arn27EC6E03")}]}}},
    "OtherRolePolicyCCCCCCCC": {"Type": "AWS::IAM::Policy", "Properties": {
        "Roles": [{"Ref": "OtherRoleDDDDDDDD"}], "PolicyName": "o",
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}},
    "Job": {"Type": "AWS::Glue::Job", "Properties": {"Name": "job", "Role": {"Fn::GetAtt": ["JobRoleAAAAAAAA", "Arn"]}}},
}}


@pytest.fixture
def role() -> JobRole:
    created = {"Table": Created("t", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"),
               "Derivatives": Created("d", "arn:aws:s3:::d"), "DataKey": Created("data-key", KEY)}
    return JobRole(TEMPLATE, "job", account=ACCOUNT, region=REGION, created=created, kms_keys={("s3", "d"): KEY})


def test_only_the_job_roles_statements_resolved_to_the_created_resources(role):
    assert [policy for policy, _ in role.statements] == ["JobRoleDefaultPolicyBBBBBBBB"] * 3
    assert role.statements[0][1]["Resource"] == "arn:aws:s3:::d/runs/job/*"
    assert role.statements[2][1]["Resource"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"


def test_allowed_calls_pass_and_a_missing_permission_is_refused_naming_the_statement(role):
    allowed = [{"service": "s3", "signing_name": "s3", "operation": "PutObject",
                "params": {"Bucket": "d", "Key": "runs/job/summary.json"}},
               {"service": "dynamodb", "signing_name": "dynamodb", "operation": "Query", "params": {"TableName": "t"}}]
    assert denials(role.decisions(allowed)) == []
    refused = [{"service": "s3", "signing_name": "s3", "operation": "GetObject",
                "params": {"Bucket": "d", "Key": "previews/a.jpg"}},
               {"service": "rekognition", "signing_name": "rekognition", "operation": "IndexFaces",
                "params": {"CollectionId": "faces-ana"}}]
    assert denials(role.decisions(refused)) == [
        'missing statement {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::d/previews/a.jpg"}'
        " for s3.GetObject",
        'missing statement {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "' + KEY + '", "Condition": '
        '{"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}} for s3.GetObject: SSE-KMS on d',
        'missing statement {"Effect": "Allow", "Action": "rekognition:IndexFaces", "Resource": '
        f'"arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/faces-ana"}} for rekognition.IndexFaces',
    ]


def test_a_metric_outside_the_allowed_namespace_is_refused(role):
    call = {"service": "cloudwatch", "signing_name": "monitoring", "operation": "PutMetricData",
            "params": {"Namespace": "Elsewhere"}}
    [decision] = role.decisions([call])
    assert (decision.need.action, decision.need.context, decision.allowed) == (
        "cloudwatch:PutMetricData", (("cloudwatch:namespace", "Elsewhere"),), False)


def test_no_calls_file_means_no_calls(tmp_path):
    assert recorded(tmp_path / "absent.jsonl") == []

"""The data plane of the synthesized templates, created in moto from the resource properties: what a deploy would
create is what the functions then run against (never hand-written copies of the resources)."""

from __future__ import annotations

import json

import pytest

from .rehearsal.dataplane import DATA_PLANE_TYPES
from .rehearsal.intrinsics import UnresolvedError

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal


def _template_props(rehearsal, concern: str, construct_path: str) -> dict:
    return rehearsal.resource(concern, construct_path)[2]["Properties"]


def test_every_data_plane_resource_of_every_template_exists_in_moto(rehearsal):
    expected = {(stack, logical) for stack, logical, r in rehearsal.assembly.resources() if r["Type"] in DATA_PLANE_TYPES}
    assert expected and expected <= set(rehearsal.dataplane.created)
    buckets = {b["Name"] for b in rehearsal.client("s3").list_buckets()["Buckets"]}
    assert len(buckets) == sum(1 for *_, r in rehearsal.assembly.resources("AWS::S3::Bucket"))
    queues = rehearsal.client("sqs").list_queues()["QueueUrls"]
    assert len(queues) == sum(1 for *_, r in rehearsal.assembly.resources("AWS::SQS::Queue"))


def test_originals_bucket_takes_browser_posts_sends_eventbridge_events_and_encrypts_with_the_data_key(rehearsal):
    s3 = rehearsal.client("s3")
    bucket = rehearsal.ref("storage", "Originals")
    key_arn = rehearsal.ref("storage", "DataKey", "Arn")
    template = _template_props(rehearsal, "storage", "Originals")["CorsConfiguration"]["CorsRules"]
    cors = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert [(r["AllowedMethods"], r["AllowedOrigins"]) for r in cors] == \
        [(t["AllowedMethods"], t["AllowedOrigins"]) for t in template]
    assert cors[0]["AllowedMethods"] == ["POST"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert rule["BucketKeyEnabled"] is True
    policy = rehearsal.dataplane.bucket_policies[bucket]  # kept aside: moto ignores conditions of a Deny
    assert rehearsal.dataplane.access_logging[bucket]["DestinationBucketName"] == rehearsal.ref("storage", "AccessLogs")
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["Statement"])


def test_an_original_created_in_the_bucket_reaches_the_upload_queue_through_the_templates_rule(rehearsal):
    """S3 EventBridge notifications (the bucket's setting) -> the rule's pattern -> the queue target, all in moto."""
    s3, sqs = rehearsal.client("s3"), rehearsal.client("sqs")
    bucket, queue = rehearsal.ref("storage", "Originals"), rehearsal.ref("ingest", "UploadEventsQueue")
    s3.put_object(Bucket=bucket, Key="not-an-original/x", Body=b"x")  # outside the rule's prefix
    s3.put_object(Bucket=bucket, Key="originals/rule-check/x", Body=b"x")
    try:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        bodies = [json.loads(m["Body"]) for m in messages]
        assert [(b["detail-type"], b["source"], b["detail"]["object"]["key"]) for b in bodies] == \
            [("Object Created", "aws.s3", "originals/rule-check/x")]
    finally:
        for key in ("not-an-original/x", "originals/rule-check/x"):
            for version in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])


def test_table_has_the_template_key_schema_gsi_stream_and_customer_key(rehearsal):
    table = rehearsal.client("dynamodb").describe_table(TableName=rehearsal.ref("storage", "Table"))["Table"]
    template = _template_props(rehearsal, "storage", "Table")
    assert table["KeySchema"] == template["KeySchema"]
    assert [(g["IndexName"], g["KeySchema"]) for g in table["GlobalSecondaryIndexes"]] == \
        [(g["IndexName"], g["KeySchema"]) for g in template["GlobalSecondaryIndexes"]]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["SSEDescription"]["KMSMasterKeyArn"] == rehearsal.ref("storage", "DataKey", "Arn")
    assert rehearsal.ref("storage", "Table", "StreamArn") == table["LatestStreamArn"]


def test_upload_queue_redrives_to_its_dlq_after_the_template_receive_count_and_uses_the_data_key(rehearsal):
    sqs = rehearsal.client("sqs")
    url = rehearsal.ref("ingest", "UploadEventsQueue")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    template = _template_props(rehearsal, "ingest", "UploadEventsQueue")
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == rehearsal.ref("ingest", "UploadEventsDlq", "Arn")
    assert int(redrive["maxReceiveCount"]) == template["RedrivePolicy"]["maxReceiveCount"]
    assert attributes["KmsMasterKeyId"] == rehearsal.ref("storage", "DataKey", "Arn")
    assert int(attributes["VisibilityTimeout"]) == template["VisibilityTimeout"]
    policy = json.loads(attributes["Policy"])
    assert policy["Statement"][-1]["Condition"]["ArnEquals"]["aws:SourceArn"] == \
        rehearsal.ref("ingest", "OriginalCreated", "Arn")


def test_upload_rule_targets_the_upload_queue_with_the_template_pattern(rehearsal):
    events = rehearsal.client("events")
    name = rehearsal.ref("ingest", "OriginalCreated")
    rule = events.describe_rule(Name=name)
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [rehearsal.ref("storage", "Originals")]
    targets = events.list_targets_by_rule(Rule=name)["Targets"]
    assert [t["Arn"] for t in targets] == [rehearsal.ref("ingest", "UploadEventsQueue", "Arn")]


def test_cursor_secret_is_generated_at_deploy_and_encrypted_with_the_data_key(rehearsal):
    secrets = rehearsal.client("secretsmanager")
    arn = rehearsal.ref("api", "CursorKey")
    described = secrets.describe_secret(SecretId=arn)
    assert described["KmsKeyId"] == rehearsal.ref("storage", "DataKey", "Arn")
    value = secrets.get_secret_value(SecretId=arn)["SecretString"]
    generator = _template_props(rehearsal, "api", "CursorKey")["GenerateSecretString"]
    assert len(value) == generator["PasswordLength"] and value.isalnum()


def test_user_pool_client_is_a_public_pkce_client_of_the_user_pool(rehearsal):
    idp = rehearsal.client("cognito-idp")
    client = idp.describe_user_pool_client(UserPoolId=rehearsal.ref("auth", "Users"),
                                           ClientId=rehearsal.ref("auth", "UsersSpa"))["UserPoolClient"]
    assert "ClientSecret" not in client
    assert client["AllowedOAuthFlows"] == ["code"]
    pool = idp.describe_user_pool(UserPoolId=rehearsal.ref("auth", "Users"))["UserPool"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12


def test_function_roles_carry_exactly_the_synthesized_statements(rehearsal):
    for stack, logical, resource in rehearsal.assembly.resources("AWS::IAM::Policy"):
        props = rehearsal.resolve(stack, resource["Properties"])
        for role in props["Roles"]:
            stored = [s for name, s in rehearsal.dataplane.role_statements(role) if name == props["PolicyName"]]
            assert stored == props["PolicyDocument"]["Statement"], f"{stack}/{logical} on {role}"


def test_resolver_covers_the_intrinsics_the_templates_use(rehearsal):
    stack = rehearsal.assembly.stack_named("api").name
    resolve = rehearsal.dataplane.resolver.resolve
    table = rehearsal.ref("storage", "Table")
    assert resolve(stack, {"Fn::Sub": "${AWS::Region}/${AWS::AccountId}/${!Literal}"}) == \
        f"{rehearsal.region}/{rehearsal.account}/${{Literal}}"
    assert resolve(stack, {"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    output = {"Fn::GetStackOutput": {"StackName": rehearsal.assembly.stack_named("storage").name,
                                     "Region": rehearsal.region, "OutputName": "TableName"}}
    assert resolve(stack, {"Fn::Join": ["", ["t=", output]]}) == f"t={table}"
    with pytest.raises(UnresolvedError, match="NoSuchResource"):
        resolve(stack, {"Ref": "NoSuchResource"})

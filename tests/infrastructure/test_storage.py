from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.infrastructure

BLOCK_ALL = {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
             "RestrictPublicBuckets": True}


def _buckets(synthesized) -> dict[str, dict]:
    resources = synthesized.template("storage").find_resources("AWS::S3::Bucket")
    by_name = {}
    for logical_id, resource in resources.items():
        for name in ("AccessLogs", "Originals", "Derivatives"):
            if logical_id.startswith(name):
                by_name[name] = resource["Properties"]
    assert set(by_name) == {"AccessLogs", "Originals", "Derivatives"}
    return by_name


def test_customer_managed_key_rotates(synthesized):
    synthesized.template("storage").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_bucket_blocks_public_access(synthesized):
    for name, props in _buckets(synthesized).items():
        assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL, name


def test_only_originals_are_versioned(synthesized):
    buckets = _buckets(synthesized)
    assert buckets["Originals"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "VersioningConfiguration" not in buckets["Derivatives"]


@pytest.mark.parametrize("name", ["Originals", "Derivatives"])
def test_photo_buckets_use_the_cmk_with_bucket_keys(synthesized, name):
    rule = _buckets(synthesized)[name]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is True
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith("DataKey")


def test_access_log_bucket_uses_s3_managed_keys_because_log_delivery_cannot_use_kms(synthesized):
    rule = _buckets(synthesized)["AccessLogs"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_every_bucket_policy_denies_plain_http(synthesized):
    policies = synthesized.template("storage").find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for logical_id, policy in policies.items():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in statements), logical_id


def test_originals_publish_object_events_to_eventbridge(synthesized):
    props = _buckets(synthesized)["Originals"]
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_lifecycle_rules(synthesized):
    buckets = _buckets(synthesized)
    rules = {r["Id"]: r for r in buckets["Originals"]["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["expire-quarantine"]["Prefix"] == "quarantine/"
    derivative_rules = {r["Id"] for r in buckets["Derivatives"]["LifecycleConfiguration"]["Rules"]}
    assert "abort-incomplete-multipart" in derivative_rules
    log_rules = {r["Id"]: r for r in buckets["AccessLogs"]["LifecycleConfiguration"]["Rules"]}
    assert log_rules["expire-access-logs"]["ExpirationInDays"] == 90


@pytest.mark.parametrize("name", ["Originals", "Derivatives"])
def test_photo_buckets_log_access_into_the_log_bucket(synthesized, name):
    logging = _buckets(synthesized)[name]["LoggingConfiguration"]
    assert logging["DestinationBucketName"]["Ref"].startswith("AccessLogs")


def test_originals_allow_browser_post_from_configured_origins_only(synthesized):
    cors = _buckets(synthesized)["Originals"]["CorsConfiguration"]["CorsRules"]
    assert [rule["AllowedMethods"] for rule in cors] == [["POST"]]
    assert cors[0]["AllowedOrigins"] == list(synthesized.stacks.settings.cors_allowed_origins)
    assert "CorsConfiguration" not in _buckets(synthesized)["Derivatives"]


def test_single_table_schema(synthesized):
    synthesized.template("storage").has_resource_properties("AWS::DynamoDB::GlobalTable", {
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        "AttributeDefinitions": Match.array_with([
            {"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"},
            {"AttributeName": "GSI1PK", "AttributeType": "S"}, {"AttributeName": "GSI1SK", "AttributeType": "S"},
        ]),
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [{
            "IndexName": "ByTime",
            "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"},
                          {"AttributeName": "GSI1SK", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
        "Replicas": [Match.object_like({
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "DeletionProtectionEnabled": True,
            "SSESpecification": {"KMSMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^DataKey"), "Arn"]}},
        })],
    })


def test_data_is_retained_when_the_stack_goes(synthesized):
    template = synthesized.template("storage")
    for resource_type in ("AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable", "AWS::KMS::Key"):
        for logical_id, resource in template.find_resources(resource_type).items():
            assert resource.get("DeletionPolicy") == "Retain", logical_id


def test_key_policy_lets_only_the_upload_rule_use_the_key_for_eventbridge(synthesized):
    settings = synthesized.stacks.settings
    synthesized.template("storage").has_resource_properties("AWS::KMS::Key", {
        "KeyPolicy": {"Statement": Match.array_with([Match.object_like({
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": {"ArnEquals": {"aws:SourceArn": settings.upload_rule_arn()},
                          "StringEquals": {"aws:SourceAccount": settings.account}},
        })])},
    })

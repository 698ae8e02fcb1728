"""Every IAM policy statement of both synthesized Apps, decoded (tests/infrastructure/iam_decode.py): a wildcard in an
Allow statement's action or resource fails unless this file records why it is there.

Two tables: WILDCARD_ACTIONS (an action pattern, allowed wherever it appears, with what it expands to) and
WILDCARD_RESOURCES (a resource pattern, with the resource types and, for a bare `*`, the only actions it may carry).
An entry that no statement uses any more fails too, so the tables shrink with the templates."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pytest

from infrastructure.iam_decode import decode_template, is_wildcard_action, is_wildcard_resource

pytestmark = pytest.mark.infrastructure

CONCERNS = ("storage", "auth", "ingest", "search", "api", "analysis", "ml", "web")

# Action patterns: every one is written by a CDK grant (or CDK's own key policy), never by hand.
WILDCARD_ACTIONS = {
    "kms:*": "the key policy's account-root statement (CDK's default): delegates the key to IAM policies; without "
             "it the key would be unmanageable",
    "kms:GenerateDataKey*": "GenerateDataKey, -WithoutPlaintext, -Pair, -PairWithoutPlaintext: data keys under our "
                            "one key (CDK grant_encrypt / grant_encrypt_decrypt); all of them only wrap new data keys",
    "kms:ReEncrypt*": "ReEncryptFrom/ReEncryptTo on our one key (CDK grant_encrypt_decrypt): re-wraps ciphertext, "
                      "never yields plaintext",
    "kms:Decrypt*": "kms:Decrypt (the only Decrypt action) for the CloudWatch Logs principal, conditioned on our "
                    "log groups' ARNs (CDK grant_encrypt_decrypt)",
    "kms:Describe*": "kms:DescribeKey (the only Describe action) for the CloudWatch Logs principal",
    "kms:Encrypt*": "kms:Encrypt (the only Encrypt action) for the CloudWatch Logs principal",
    "s3:Abort*": "s3:AbortMultipartUpload (the only Abort action) under the granted prefix (CDK grant_put/write)",
    "s3:DeleteObject*": "DeleteObject, DeleteObjectVersion, DeleteObjectTagging, DeleteObjectVersionTagging on the "
                        "granted object ARNs only (CDK grant_delete)",
    "s3:GetBucket*": "bucket metadata reads (location, versioning, policy status...) of the granted bucket "
                     "(CDK grant_read); no object data",
    "s3:GetObject*": "GetObject and its version/ACL/tagging/attributes/retention reads on the granted object ARNs "
                     "(CDK grant_read)",
    "s3:List*": "ListBucket, ListBucketVersions, ListBucketMultipartUploads, ListMultipartUploadParts on the granted "
                "bucket (CDK grant_read): the Glue/ML jobs and the web deployment read prefixes they list; the "
                "validator needs ListBucket so that a deleted original answers 404 (NoSuchKey), not 403",
}


@dataclass(frozen=True)
class ResourceWildcard:
    pattern: str  # regex over the rendered resource
    types: frozenset[str]  # resource types whose statements may carry it
    reason: str
    star_actions: frozenset[str] = frozenset()  # for a bare "*": the only actions it may carry


IDENTITY = frozenset({"AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"})
REF = r"\$\{[^}]+\}"  # one of our resources (a Ref, GetAtt or another stack's output)
ACCOUNT = r"arn:aws:[a-z-]+:eu-west-1:111111111111"

WILDCARD_RESOURCES = [
    ResourceWildcard(r"^\*$", IDENTITY, "X-Ray has no resource-level permissions (active tracing)",
                     frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})),
    ResourceWildcard(r"^\*$", IDENTITY, "PutMetricData has no resources; a cloudwatch:namespace condition pins our "
                     "namespaces (test_analysis)", frozenset({"cloudwatch:PutMetricData"})),
    ResourceWildcard(r"^\*$", IDENTITY, "Rekognition's Detect* image APIs have no resource-level permissions",
                     frozenset({"rekognition:DetectLabels", "rekognition:DetectText",
                                "rekognition:DetectModerationLabels"})),
    ResourceWildcard(r"^\*$", IDENTITY, "ListModelPackages has no resource-level permissions (lists the groups "
                     "the pipeline step filters by name)", frozenset({"sagemaker:ListModelPackages"})),
    ResourceWildcard(r"^\*$", IDENTITY, "ecr:GetAuthorizationToken is account-wide by design (SageMaker pulls the "
                     "framework image)", frozenset({"ecr:GetAuthorizationToken"})),
    ResourceWildcard(r"^\*$", frozenset({"AWS::KMS::Key"}), "in a key policy, Resource * means this key only",
                     frozenset({"kms:*", "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
                                "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:Decrypt*",
                                "kms:Describe*", "kms:Encrypt*"})),
    ResourceWildcard(rf"^{REF}/index/\*$", IDENTITY, "the table's own global secondary indexes"),
    ResourceWildcard(rf"^{REF}/(?:[\w.-]+/)*\*$", IDENTITY | {"AWS::S3::BucketPolicy"},
                     "objects under one prefix of one of our buckets (names are per photo or per run)"),
    ResourceWildcard(r"^arn:aws:s3:::cdk-hnb659fds-assets-111111111111-eu-west-1/\*$", IDENTITY,
                     "the CDK assets bucket's objects, read by BucketDeployment (the web build's zip names are "
                     "content hashes known only at deploy)"),
    ResourceWildcard(rf"^{ACCOUNT}:domain/photo-organizer-dev-search/\*$",
                     IDENTITY | {"AWS::OpenSearchService::Domain"},
                     "the paths of our one OpenSearch domain (document-level rights come from its role mappings)"),
    ResourceWildcard(rf"^{ACCOUNT}:domain/photo-organizer-dev-search/photos\*/_(?:search|count)$", IDENTITY,
                     "search and count on the photos index and its dated generations behind the alias"),
    ResourceWildcard(r"^index/photo-organizer-dev-photos/\*$", frozenset({"AWS::OpenSearchServerless::AccessPolicy"}),
                     "the indexes of our one collection (the alias's generations)"),
    ResourceWildcard(rf"^{ACCOUNT}:log-group:/aws-glue/jobs\*$", IDENTITY,
                     "Glue writes its job logs into AWS-named groups (/aws-glue/jobs/output, /error, /logs-v2)"),
    ResourceWildcard(rf"^{ACCOUNT}:log-group:/aws/sagemaker/(?:Processing|Training)Jobs:\*$", IDENTITY,
                     "SageMaker's own log group of its job kind: its streams are named per job"),
    ResourceWildcard(rf"^{ACCOUNT}:collection/photo-organizer-dev-faces-\*$", IDENTITY,
                     "one Rekognition face collection per user, created on consent (names known at run time only)"),
    ResourceWildcard(rf"^{ACCOUNT}:model-package/photo-organizer-dev-(?:faces|tagging)/\*$", IDENTITY,
                     "the versions of our own model-package group (numbered by SageMaker)"),
    ResourceWildcard(rf"^{ACCOUNT}:(?:processing|training)-job/pipelines-\*$", IDENTITY,
                     "jobs that SageMaker Pipelines names itself (pipelines-<execution>-<step>)"),
]


def _statements(app) -> list:
    return [s for concern in CONCERNS for s in decode_template(concern, app.template_json(concern))]


@pytest.fixture(scope="module")
def statements(synthesized, synthesized_serverless) -> list:
    return _statements(synthesized) + _statements(synthesized_serverless)


def _resource_entry(statement, resource: str):
    for entry in WILDCARD_RESOURCES:
        if statement.resource_type in entry.types and re.match(entry.pattern, resource):
            if resource == "*" and not set(statement.actions) <= entry.star_actions:
                continue
            return entry
    return None


def unrecorded_wildcards(statements) -> tuple[list, set[str], set[int]]:
    """(wildcards no table entry explains, action patterns used, resource entries used)."""
    unrecorded, used_actions, used_resources = [], set(), set()
    for s in statements:
        if s.effect != "Allow":
            continue
        for action in s.actions:
            if is_wildcard_action(action):
                if action in WILDCARD_ACTIONS:
                    used_actions.add(action)
                else:
                    unrecorded.append((s.concern, s.logical_id, s.resource_type, "action", action))
        for resource in s.resources:
            if is_wildcard_resource(resource):
                entry = _resource_entry(s, resource)
                if entry is None:
                    unrecorded.append((s.concern, s.logical_id, s.resource_type, "resource", resource, s.actions))
                else:
                    used_resources.add(WILDCARD_RESOURCES.index(entry))
    return unrecorded, used_actions, used_resources


def test_every_wildcard_in_an_allow_statement_is_recorded_with_a_reason(statements):
    unrecorded, used_actions, used_resources = unrecorded_wildcards(statements)
    assert unrecorded == [], "wildcards without a recorded reason:\n" + "\n".join(map(str, unrecorded))
    assert sorted(set(WILDCARD_ACTIONS) - used_actions) == [], "stale WILDCARD_ACTIONS entries"
    stale = [WILDCARD_RESOURCES[i].pattern for i in range(len(WILDCARD_RESOURCES)) if i not in used_resources]
    assert stale == [], "stale WILDCARD_RESOURCES entries"
    wild = [s for s in statements if s.effect == "Allow" and (any(map(is_wildcard_action, s.actions))
                                                               or any(map(is_wildcard_resource, s.resources)))]
    print(f"\nIAM: {len(statements)} statements decoded "
          f"({dict(Counter(s.resource_type.split('::', 1)[1] for s in statements))}); "
          f"{len(wild)} Allow statements carry a wildcard, all recorded: {len(WILDCARD_ACTIONS)} action patterns, "
          f"{len(WILDCARD_RESOURCES)} resource patterns "
          f"({sum(1 for s in wild for r in s.resources if r == '*')} bare '*' resources)")


def test_no_allow_statement_grants_every_action_or_uses_not_action(statements):
    for s in statements:
        if s.effect != "Allow":
            continue
        assert not s.not_actions and not s.not_resources, s
        assert "*" not in s.actions or s.resource_type == "AWS::KMS::Key", s
        # kms:* only for the account root in a key policy (delegation to IAM), never for a service or a role.
        if "kms:*" in s.actions:
            assert re.fullmatch(r'\{"AWS": "arn:aws:iam::111111111111:root"\}', s.principal), s


def test_no_resource_policy_allows_anyone_without_a_condition(statements):
    public = [s for s in statements if s.effect == "Allow" and s.resource_type not in IDENTITY
              and s.resource_type != "AWS::OpenSearchServerless::AccessPolicy"
              and ('"*"' in s.principal or s.principal == "null") and not s.has_condition]
    assert public == []


def test_every_kind_of_policy_document_is_decoded(statements):
    kinds = {s.resource_type for s in statements}
    assert {"AWS::IAM::Policy", "AWS::IAM::Role", "AWS::S3::BucketPolicy", "AWS::KMS::Key", "AWS::SQS::QueuePolicy",
            "AWS::SNS::TopicPolicy", "AWS::Lambda::Permission", "AWS::OpenSearchService::Domain",
            "AWS::OpenSearchServerless::AccessPolicy"} <= kinds
    # Trust policies are decoded too: every role's AssumeRolePolicyDocument.
    assert any(s.resource_type == "AWS::IAM::Role" and s.where.endswith("AssumeRolePolicyDocument")
               for s in statements)
    # Nothing is left as an unresolved intrinsic: references render to ${...}, never to a JSON object.
    assert not [s for s in statements for r in s.resources + s.actions if r.startswith("{")]


def test_roles_use_no_managed_policies(synthesized, synthesized_serverless):
    for app in (synthesized, synthesized_serverless):
        for concern in CONCERNS:
            for logical_id, resource in app.template_json(concern)["Resources"].items():
                if resource["Type"] == "AWS::IAM::Role":
                    assert not resource["Properties"].get("ManagedPolicyArns"), (concern, logical_id)


def _join(*parts):
    return {"Fn::Join": ["", list(parts)]}


HAND_WRITTEN = {"Resources": {
    "Role": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]},
        "Policies": [{"PolicyName": "inline", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}},
        ]}}]}},
    "Policy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem",
         "Resource": _join("arn:", {"Ref": "AWS::Partition"}, ":dynamodb:*:", {"Ref": "AWS::AccountId"}, ":table/*")},
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:*"}},
        {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ]}}},
    "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Principal": "*",
         "Resource": _join({"Fn::GetAtt": ["Bucket", "Arn"]}, "/*")},
    ]}}},
    "Access": {"Type": "AWS::OpenSearchServerless::AccessPolicy", "Properties": {"Type": "data", "Policy": _join(
        '[{"Rules":[{"ResourceType":"index","Resource":["index/other/*"],"Permission":["aoss:*"]}],"Principal":["',
        {"Fn::GetAtt": ["Role", "Arn"]}, '"]}]')}},
}}


def test_hand_written_wildcards_are_found_in_every_form():
    """The gate itself: wildcards behind Fn::Join, Fn::Sub, GetAtt and JSON text are decoded and refused."""
    statements = decode_template("test", HAND_WRITTEN)
    unrecorded, _, _ = unrecorded_wildcards(statements)
    found = {(finding[1], finding[4]) for finding in unrecorded}
    assert found == {
        ("Role", "s3:*"),
        ("Policy", "arn:${AWS::Partition}:dynamodb:*:${AWS::AccountId}:table/*"),
        ("Policy", "arn:aws:sqs:${AWS::Region}:*"),
        ("Policy", "*"),  # ssm:GetParameter has resource-level permissions: no entry allows it
        ("Access", "aoss:*"),
        ("Access", "index/other/*"),
    }
    # the object wildcard of a bucket of ours is a recorded pattern; the Deny statement is never a finding
    assert ("BucketPolicy", "${Bucket.Arn}/*") not in found
    # and the bucket policy that lets anyone read is refused by its own test
    public = [s for s in statements if s.logical_id == "BucketPolicy" and s.principal == '"*"']
    assert public and not public[0].has_condition
    assert any(s.where.endswith("AssumeRolePolicyDocument") for s in statements)

"""Every Lambda function of the templates runs from its staged code (the directory `cdk deploy` zips), in a process
whose sys.path holds that directory and the standard library only, with its template environment resolved to the
moto resources and its role's credentials; the offline evaluator names the statement a refused call is missing."""

from __future__ import annotations

import json
import sys

import pytest

from .rehearsal.needs import CallContext, needs_of
from .rehearsal.policy import Need, evaluate

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal


def test_every_function_imports_its_handler_from_its_staged_bundle_alone(rehearsal):
    ids = rehearsal.function_ids()
    assert {logical.split("Function")[0] for _, logical in ids} >= {"Api", "Validator", "Indexer"}
    # every function but the providers of CDK's own custom resources the rehearsal performs (bucket deployment)
    assert len(ids) + len(rehearsal.played_provider_ids()) == \
        sum(1 for _ in rehearsal.assembly.resources("AWS::Lambda::Function"))
    stdlib = {p for p in sys.path if p.startswith(sys.base_prefix) and "site-packages" not in p}
    for stack, logical in ids:
        function = rehearsal.function_by_id(stack, logical)
        assert function.sys_path[0] == str(function.code_dir)
        assert function.code_dir.parent == rehearsal.assembly.directory  # the staged asset, not the source tree
        others = function.sys_path[1:]
        assert others and all(p in stdlib or p.startswith(sys.base_prefix) and "site-packages" not in p
                              for p in others), (logical, others)


def test_only_the_api_bundle_carries_the_search_model(rehearsal):
    has_model = {logical: (rehearsal.function_by_id(stack, logical).code_dir / "photo_organizer_models").is_dir()
                 for stack, logical in rehearsal.function_ids()}
    assert [logical for logical, present in has_model.items() if present] == \
        [logical for logical in has_model if logical.startswith("ApiFunction")]


def test_every_function_environment_is_resolved_to_the_moto_resources(rehearsal):
    buckets = {b["Name"] for b in rehearsal.client("s3").list_buckets()["Buckets"]}
    tables = set(rehearsal.client("dynamodb").list_tables()["TableNames"])
    for stack, logical in rehearsal.function_ids():
        env = rehearsal.function_by_id(stack, logical).environment
        assert all(isinstance(v, str) and "Fn::" not in v and "Ref" not in v for v in env.values()), env
        if "PO_BACKEND" not in env:  # a deploy-time custom resource, not a photo service
            continue
        assert env["PO_BACKEND"] == "aws"
        assert {env["PO_ORIGINALS_BUCKET"], env["PO_DERIVATIVES_BUCKET"]} <= buckets
        assert env["PO_TABLE_NAME"] in tables
        if "PO_OPENSEARCH_ENDPOINT" in env:
            assert env["PO_OPENSEARCH_ENDPOINT"] == f"https://{rehearsal.opensearch.host}"


def test_the_api_reads_its_cursor_key_from_the_secret_with_its_own_role(rehearsal):
    api = rehearsal.function("Api")
    secret = rehearsal.ref("api", "CursorKey")
    status, _ = rehearsal.http.request("GET", "/photos", token=rehearsal.sign_in("cursor-reader"))
    assert status == 200
    assert {"service": "secretsmanager", "signing_name": "secretsmanager", "operation": "GetSecretValue",
            "params": {"SecretId": secret}} in api.calls
    decisions = {d.need.action: d for d in rehearsal.decisions(api) if d.need.why.startswith("secretsmanager")}
    assert decisions["secretsmanager:GetSecretValue"].allowed
    assert decisions["kms:Decrypt"].allowed  # the ViaService condition of the grant holds


CTX = CallContext("111111111111", "eu-west-1", {("s3", "b"): "arn:aws:kms:eu-west-1:111111111111:key/k"})


def test_a_refused_call_names_the_statement_that_is_missing():
    statements = [("P", {"Effect": "Allow", "Action": ["s3:GetObject*", "s3:DeleteObject*"],
                         "Resource": "arn:aws:s3:::b/originals/*"})]
    call = {"service": "s3", "signing_name": "s3", "operation": "DeleteObject",
            "params": {"Bucket": "b", "Key": "quarantine/u/p"}}
    (need,) = needs_of(call, CTX)
    decision = evaluate(need, statements)
    assert not decision.allowed
    assert decision.missing_statement() == {"Effect": "Allow", "Action": "s3:DeleteObject",
                                            "Resource": "arn:aws:s3:::b/quarantine/u/p"}
    allowed = evaluate(needs_of({**call, "params": {"Bucket": "b", "Key": "originals/u/p"}}, CTX)[0], statements)
    assert allowed.allowed and allowed.policy == "P"


@pytest.mark.parametrize(("call", "expected"), [
    ({"operation": "PutObject", "params": {"Bucket": "b", "Key": "k"}},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("kms:GenerateDataKey", "arn:aws:kms:eu-west-1:111111111111:key/k")]),
    ({"operation": "GetObject", "params": {"Bucket": "b", "Key": "k", "VersionId": "v"}},
     [("s3:GetObjectVersion", "arn:aws:s3:::b/k"), ("kms:Decrypt", "arn:aws:kms:eu-west-1:111111111111:key/k")]),
    ({"operation": "ListObjectVersions", "params": {"Bucket": "b", "Prefix": "originals/u"}},
     [("s3:ListBucketVersions", "arn:aws:s3:::b")]),
    ({"operation": "CopyObject", "params": {"Bucket": "c", "Key": "q/k", "CopySource": {"Bucket": "d", "Key": "o/k"}}},
     [("s3:PutObject", "arn:aws:s3:::c/q/k"), ("s3:GetObject", "arn:aws:s3:::d/o/k")]),
])
def test_s3_calls_map_to_the_actions_and_resources_iam_checks(call, expected):
    needs = needs_of({"service": "s3", "signing_name": "s3", **call}, CTX)
    assert [(n.action, n.resource) for n in needs] == expected


def test_dynamodb_transactions_and_index_queries_map_per_item_and_per_index():
    table = "arn:aws:dynamodb:eu-west-1:111111111111:table/t"
    write = {"service": "dynamodb", "operation": "TransactWriteItems", "params": {"TransactItems": [
        {"Put": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "t"}}]}}
    assert [(n.action, n.resource) for n in needs_of(write, CTX)] == \
        [("dynamodb:PutItem", table), ("dynamodb:ConditionCheckItem", table)]
    query = {"service": "dynamodb", "operation": "Query", "params": {"TableName": "t", "IndexName": "ByTime"}}
    assert [(n.action, n.resource) for n in needs_of(query, CTX)] == [("dynamodb:Query", f"{table}/index/ByTime")]


def test_conditions_of_a_statement_must_hold_for_the_call():
    statement = {"Effect": "Allow", "Action": "s3:ListBucketVersions", "Resource": "arn:aws:s3:::b",
                 "Condition": {"StringLike": {"s3:prefix": ["originals/*"]}}}
    inside = Need("s3:ListBucketVersions", "arn:aws:s3:::b", (("s3:prefix", "originals/u/p"),))
    outside = Need("s3:ListBucketVersions", "arn:aws:s3:::b", (("s3:prefix", "quarantine/u/p"),))
    assert evaluate(inside, [("P", statement)]).allowed
    assert not evaluate(outside, [("P", statement)]).allowed
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert not evaluate(inside, [("P", statement), ("D", deny)]).allowed
    assert json.dumps(evaluate(outside, []).missing_statement())


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import photo_organizer
failed = {}
for module in pkgutil.walk_packages(photo_organizer.__path__, "photo_organizer."):
    try:
        importlib.import_module(module.name)
    except BaseException as exc:
        failed[module.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""


def test_every_module_of_the_domain_package_imports_from_each_function_bundle_alone(rehearsal):
    """A module that reaches for a dependency the bundle lacks fails only when its code path runs in Lambda; import
    them all, from the staged code with nothing but the standard library beside it."""
    import subprocess

    directories = {rehearsal.function_by_id(s, lid).code_dir for s, lid in rehearsal.function_ids()}
    for directory in sorted(directories):
        done = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", "import json\n" + IMPORT_EVERY_MODULE, str(directory)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {}, directory.name

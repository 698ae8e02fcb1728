"""The API role's storage and search permissions are least-privilege (security review, issue 13): it cannot list
any owner's keys, and on the search domain it can only search."""

from __future__ import annotations

import json

import pytest

from infrastructure.policy_eval import allowed, role_statements

DOMAIN_ARN = "arn:aws:es:eu-west-1:111111111111:domain/photo-organizer-dev-search"
ORIGINALS = "arn:aws:s3:::originals-bucket"
DERIVATIVES = "arn:aws:s3:::derivatives-bucket"
USER_POOL = "arn:aws:cognito-idp:eu-west-1:111111111111:userpool/eu-west-1_users"


@pytest.fixture(scope="module")
def api_role(synthesized) -> list[dict]:
    return role_statements(synthesized.template_json("api"), "ApiRole")


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_the_api_role_has_no_list_wildcard_on_either_bucket(api_role):
    assert not {a for a in _actions(api_role) if a.startswith("s3:List") and a != "s3:ListBucketVersions"}
    for bucket in (ORIGINALS, DERIVATIVES):
        assert not allowed(api_role, "s3:ListBucket", bucket)
        assert not allowed(api_role, "s3:ListBucket", bucket, {"s3:prefix": "originals/"})
        assert not allowed(api_role, "s3:ListBucketVersions", bucket)  # no prefix: every owner's keys
        assert not allowed(api_role, "s3:ListBucketVersions", bucket, {"s3:prefix": ""})


def test_the_api_role_lists_versions_only_under_its_prefixes(api_role):
    assert allowed(api_role, "s3:ListBucketVersions", ORIGINALS, {"s3:prefix": "originals/owner-1/photo-1"})
    assert allowed(api_role, "s3:ListBucketVersions", ORIGINALS, {"s3:prefix": "quarantine/owner-1/photo-1"})
    assert allowed(api_role, "s3:ListBucketVersions", DERIVATIVES, {"s3:prefix": "thumbnails/owner-1/p.webp"})
    assert not allowed(api_role, "s3:ListBucketVersions", DERIVATIVES, {"s3:prefix": "faces/"})


def test_the_api_role_reads_and_deletes_the_objects_it_serves(api_role):
    assert allowed(api_role, "s3:GetObject", f"{ORIGINALS}/originals/owner-1/photo-1")
    assert not allowed(api_role, "s3:GetObject", f"{ORIGINALS}/quarantine/owner-1/photo-1")
    for key in ("previews/owner-1/photo-1.jpg", "thumbnails/owner-1/photo-1.webp"):
        assert allowed(api_role, "s3:GetObject", f"{DERIVATIVES}/{key}")
        assert allowed(api_role, "s3:DeleteObjectVersion", f"{DERIVATIVES}/{key}")
    assert not allowed(api_role, "s3:GetObject", f"{DERIVATIVES}/other/owner-1/x")


def test_the_api_role_only_searches_the_domain(api_role):
    search = [s for s in api_role if any(str(a).startswith("es:") for a in _actions([s]))]
    assert len(search) == 1 and search[0]["Action"] == ["es:ESHttpGet", "es:ESHttpPost"]
    assert sorted(search[0]["Resource"]) == sorted(
        [f"{DOMAIN_ARN}/photos*/_search", f"{DOMAIN_ARN}/photos*/_count", f"{DOMAIN_ARN}/_msearch"])
    for path in ("photos/_search", "photos-v3/_search", "photos/_count", "_msearch"):
        assert allowed(api_role, "es:ESHttpPost", f"{DOMAIN_ARN}/{path}"), path
    for path in ("photos/_bulk", "photos/_doc/1", "_bulk", "photos/_delete_by_query", "_aliases",
                 "_plugins/_security/api/rolesmapping", "other-index/_search", "photos/_update_by_query"):
        assert not allowed(api_role, "es:ESHttpPost", f"{DOMAIN_ARN}/{path}"), path
    assert not allowed(api_role, "es:ESHttpPut", f"{DOMAIN_ARN}/photos")
    assert not allowed(api_role, "es:ESHttpDelete", f"{DOMAIN_ARN}/photos")


def test_account_erasure_needs_no_more_than_the_photo_delete_grants_and_deleting_the_own_login(api_role, synthesized):
    """DELETE /account deletes what DELETE /photos/{id} deletes, photo by photo, and the face collection as the
    consent-off path does: the same object deletes, still no listing. Then the caller's own Cognito user: only
    AdminDeleteUser, only on the app's user pool (IAM cannot name the target user: the username comes from the
    verified token), no reading or listing of users."""
    routes = {r["Properties"]["RouteKey"] for r in synthesized.template_json("api")["Resources"].values()
              if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert "DELETE /account" in routes
    for key in ("originals/owner-1/photo-1", "quarantine/owner-1/photo-1"):
        assert allowed(api_role, "s3:DeleteObjectVersion", f"{ORIGINALS}/{key}")
        assert allowed(api_role, "s3:DeleteObject", f"{ORIGINALS}/{key}")
    assert not allowed(api_role, "s3:ListBucket", ORIGINALS)
    assert {a for a in _actions(api_role) if a.startswith("cognito-idp:")} == {"cognito-idp:AdminDeleteUser"}
    assert allowed(api_role, "cognito-idp:AdminDeleteUser", USER_POOL)
    assert not allowed(api_role, "cognito-idp:AdminDeleteUser",
                       "arn:aws:cognito-idp:eu-west-1:111111111111:userpool/eu-west-1_other")
    for action in ("cognito-idp:ListUsers", "cognito-idp:AdminGetUser", "cognito-idp:AdminDisableUser",
                   "cognito-idp:AdminUpdateUserAttributes", "cognito-idp:DeleteUserPool"):
        assert not allowed(api_role, action, USER_POOL), action


def test_the_api_knows_its_user_pool_for_erasure(synthesized):
    template = synthesized.template_json("api")
    (function,) = [r for lid, r in template["Resources"].items()
                   if r["Type"] == "AWS::Lambda::Function" and lid.startswith("ApiFunction")]
    assert "Users" in json.dumps(function["Properties"]["Environment"]["Variables"]["PO_USER_POOL_ID"])

"""Withdrawing biometric consent (PUT /settings/biometrics off) deletes the user's Rekognition collection from the API
function (services/people.py set_consent -> bootstrap's collection deleter -> RekognitionAnalyzer.delete_collection:
one DeleteCollection call). That must be the collection the Glue jobs index the user's faces into,
`<--collection-prefix>-<owner>`, and the API role must be allowed to delete it. Before the fix the API function's
environment named no prefix (the adapter fell back to 'photo-organizer', the Glue jobs used '<prefix>-faces') and
its role had no rekognition:DeleteCollection: the user's faces stayed in Rekognition. Checked on the synthesized
templates; the grants are evaluated offline by tests/infrastructure/policy_eval.py."""

from __future__ import annotations

import pytest

from photo_organizer.settings import Settings as FunctionSettings

from .policy_eval import allowed, role_statements

pytestmark = pytest.mark.infrastructure

OWNER = "0b7c1a52-3f7e-4d0e-9a65-3c1f0e2d4b6a"  # a Cognito sub


def _api_environment(synthesized) -> dict:
    functions = [fn for fn in synthesized.template("api").find_resources("AWS::Lambda::Function").values()
                 if fn["Properties"].get("Handler") == "photo_organizer.handlers.api.handler"]
    assert len(functions) == 1, functions
    return functions[0]["Properties"]["Environment"]["Variables"]


def _job_prefixes(synthesized) -> dict[str, str]:
    jobs = synthesized.template("analysis").find_resources("AWS::Glue::Job")
    return {job["Properties"]["Name"]: job["Properties"]["DefaultArguments"]["--collection-prefix"]
            for job in jobs.values()}


def _collection_arn(settings, collection: str) -> str:
    return f"arn:aws:rekognition:{settings.region}:{settings.account}:collection/{collection}"


def test_api_function_deletes_under_the_same_collection_prefix_the_glue_jobs_index_into(synthesized):
    environment = _api_environment(synthesized)
    jobs = _job_prefixes(synthesized)
    assert set(jobs) == {"photo-organizer-dev-analyze-photos", "photo-organizer-dev-cluster-faces"}
    assert set(jobs.values()) == {synthesized.stacks.settings.face_collection_prefix}, jobs
    assert environment.get("PO_FACE_COLLECTION_PREFIX") in set(jobs.values()), (environment, jobs)
    # ...and the function's settings read it from there (the template's literal values; references left out)
    function_settings = FunctionSettings.from_env({k: v for k, v in environment.items() if isinstance(v, str)}
                                                  | {"PO_ORIGINALS_BUCKET": "o", "PO_DERIVATIVES_BUCKET": "d",
                                                     "PO_TABLE_NAME": "t"})
    assert {function_settings.face_collection_prefix} == set(jobs.values())


def test_api_role_may_delete_every_collection_the_glue_jobs_fill_and_nothing_else_of_rekognition(synthesized):
    settings = synthesized.stacks.settings
    api = role_statements(synthesized.template_json("api"), "ApiRole")
    for job, prefix in _job_prefixes(synthesized).items():
        assert allowed(api, "rekognition:DeleteCollection", _collection_arn(settings, f"{prefix}-{OWNER}")), job
    # only DeleteCollection, only on our collections
    assert not allowed(api, "rekognition:DeleteCollection", _collection_arn(settings, f"someone-else-{OWNER}"))
    for action in ("rekognition:IndexFaces", "rekognition:ListFaces", "rekognition:SearchFaces",
                   "rekognition:CreateCollection", "rekognition:DeleteFaces"):
        assert not allowed(api, action, _collection_arn(settings, f"{settings.face_collection_prefix}-{OWNER}")), \
            action


def test_each_glue_role_covers_the_collections_its_job_argument_names(synthesized):
    settings = synthesized.stacks.settings
    roles = {"photo-organizer-dev-analyze-photos": ("AnalyzePhotosRole", "rekognition:IndexFaces"),
             "photo-organizer-dev-cluster-faces": ("ClusterFacesRole", "rekognition:SearchFaces")}
    template = synthesized.template_json("analysis")
    for job, prefix in _job_prefixes(synthesized).items():
        role, action = roles[job]
        assert allowed(role_statements(template, role), action, _collection_arn(settings, f"{prefix}-{OWNER}")), job

"""Schemathesis against the local gateway's published /openapi.json, on loopback, as an ordinary test (issue 13)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from photo_organizer.handlers.api import openapi_json

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [f"{m.upper()} {p}" for p, ops in json.loads(openapi_json())["paths"].items() for m in ops]
TRIED: dict[str, int] = {}


@pytest.fixture(scope="module")
def fuzz_token(stack):
    user, _ = stack.identity.add_user("schemathesis", "schemathesis's long password")
    return stack.identity.issue_token(user)


@pytest.fixture(scope="module")
def api_schema(stack):
    return schemathesis.openapi.from_url(f"{stack.url}/openapi.json")


@pytest.mark.parametrize("label", [op for op in OPERATIONS if op != "DELETE /account"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_as_documented(label, mode, stack, api_schema, fuzz_token):
    operation = api_schema.find_operation_by_label(label)
    headers = {"Authorization": f"Bearer {fuzz_token}"}

    @settings(max_examples=int(__import__("os").environ.get("ST_N", "10")), derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        TRIED[label] = TRIED.get(label, 0) + 1
        case.call_and_validate(base_url=stack.url, headers=headers, checks=CHECKS)

    run()

"""The deploy-time OpenSearch access custom resource without a domain: the exact SigV4-signed requests it sends to
the security plugin's REST API (golden files), and its answers to CloudFormation's Create/Update/Delete events.

No OpenSearch server can run here (see the toolchain notes): the requests are compared with golden bodies, signed
with fixed credentials at a fixed instant, and their signatures recomputed independently; the domain's answers
are the plugin's documented shapes (200 {"status":"OK"}, 201 {"status":"CREATED"}, 404 {"status":"NOT_FOUND"}).

Golden files: tests/data/opensearch/security_*.requests.json. After an intended change, regenerate them with
`PO_REGENERATE_OPENSEARCH_GOLDEN=1 pytest tests/integration/test_opensearch_security.py` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from photo_organizer import bootstrap
from photo_organizer.adapters.aws import opensearch_security as security_adapter
from photo_organizer.adapters.aws.opensearch_security import HttpResponse, OpenSearchSecurity
from photo_organizer.errors import ConfigurationError, PermanentError, StorageUnavailableError
from photo_organizer.handlers import opensearch_security as handler_module

DATA = Path(__file__).resolve().parents[1] / "data" / "opensearch"
REGENERATE = os.environ.get("PO_REGENERATE_OPENSEARCH_GOLDEN") == "1"
ENDPOINT = "https://search-photo-organizer-dev-search-abc123.eu-west-1.es.amazonaws.com"
REGION = "eu-west-1"
INDEXER_ROLE = "arn:aws:iam::111111111111:role/photo-organizer-dev-search-IndexerRole-ABC"
API_ROLE = "arn:aws:iam::111111111111:role/photo-organizer-dev-api-ApiRole-DEF"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
SIGNED_AT = dt.datetime(2026, 12, 3, 8, 0, 0)
RESPONSE_URL = "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/signed?X-Amz-Signature=x"


class RecordingTransport:
    """Stands in for the HTTPS connection: records each request and answers from a queue (default 200 OK)."""

    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers = list(answers)

    def __call__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        self.requests.append({"method": method, "url": url, "headers": dict(headers), "body": body})
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return HttpResponse(200, b'{"status":"OK","message":"done"}')


@pytest.fixture(autouse=True)
def fixed_signing_time(monkeypatch):
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: SIGNED_AT)


class FakeTime:
    """A clock that moves only when the adapter sleeps: no real waiting, no timed asserts."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _security(transport: RecordingTransport, **kwargs) -> OpenSearchSecurity:
    time = FakeTime()
    security = OpenSearchSecurity(ENDPOINT, region=REGION, credentials=CREDENTIALS, transport=transport,
                                  sleep=time.sleep, clock=lambda: time.now, **kwargs)
    security.sleeps = time.sleeps  # type: ignore[attr-defined]
    return security


def _as_golden(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"method": r["method"], "url": r["url"], "headers": dict(sorted(r["headers"].items())),
             "body": json.loads(r["body"]) if r["body"] else None} for r in requests]


def _check_golden(name: str, requests: list[dict[str, Any]]) -> None:
    path = DATA / f"{name}.requests.json"
    actual = _as_golden(requests)
    if REGENERATE:
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(path.read_text()), f"{path.name} differs: regenerate and review if intended"


def _expected_signature(request: dict[str, Any]) -> str:
    """SigV4 recomputed by hand (not by botocore) from what was sent: proves the signature covers method, path,
    host, date, token and the body's hash."""
    headers = {k.lower(): v.strip() for k, v in request["headers"].items()}
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    url = request["url"].split("://", 1)[1]
    host, path = url.split("/", 1)
    canonical_headers = "".join(f"{h}:{host if h == 'host' else headers[h]}\n" for h in signed)
    payload_hash = hashlib.sha256(request["body"]).hexdigest()
    canonical = "\n".join([request["method"], "/" + path, "", canonical_headers, ";".join(signed), payload_hash])
    stamp = headers["x-amz-date"]
    scope = f"{stamp[:8]}/{REGION}/es/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + CREDENTIALS.secret_key).encode()
    for part in (stamp[:8], REGION, "es", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# ---- the adapter: golden requests ----------------------------------------------------------------------------


def test_writer_grant_puts_the_role_then_its_mapping_for_the_indexer_role_golden_and_sigv4_signed():
    transport = RecordingTransport(HttpResponse(201, b'{"status":"CREATED"}'), HttpResponse(201, b'{"status":"CREATED"}'))
    name = _security(transport).grant("photos", "writer", [INDEXER_ROLE])
    assert name == "photo_organizer_photos_writer"
    assert [(r["method"], r["url"].removeprefix(ENDPOINT)) for r in transport.requests] == [
        ("PUT", "/_plugins/_security/api/roles/photo_organizer_photos_writer"),
        ("PUT", "/_plugins/_security/api/rolesmapping/photo_organizer_photos_writer"),
    ]
    _check_golden("security_writer_grant", transport.requests)
    for request in transport.requests:
        authorization = request["headers"]["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/eu-west-1/es/aws4_request")
        assert authorization.endswith(f"Signature={_expected_signature(request)}")
        assert request["headers"]["X-Amz-Security-Token"] == "session-token-example"
        assert request["headers"]["X-Amz-Content-SHA256"] == hashlib.sha256(request["body"]).hexdigest()


def test_reader_grant_is_read_only_on_the_alias_and_its_versions_golden():
    transport = RecordingTransport()
    assert _security(transport).grant("photos", "reader", [API_ROLE]) == "photo_organizer_photos_reader"
    _check_golden("security_reader_grant", transport.requests)
    role = json.loads(transport.requests[0]["body"])
    assert role["cluster_permissions"] == ["cluster_composite_ops_ro"]
    assert role["index_permissions"] == [{"index_patterns": ["photos", "photos-v*"], "allowed_actions": ["read"]}]
    mapping = json.loads(transport.requests[1]["body"])
    assert mapping["backend_roles"] == [API_ROLE] and mapping["users"] == [] and mapping["hosts"] == []


def test_revoke_deletes_the_mapping_then_the_role_and_a_missing_one_is_fine_golden():
    transport = RecordingTransport(HttpResponse(404, b'{"status":"NOT_FOUND"}'), HttpResponse(200, b'{"status":"OK"}'))
    _security(transport).revoke("photo_organizer_photos_reader")
    _check_golden("security_revoke", transport.requests)
    assert [r["method"] for r in transport.requests] == ["DELETE", "DELETE"]
    assert all(r["body"] == b"" and r["headers"]["Authorization"].endswith(f"Signature={_expected_signature(r)}")
               for r in transport.requests)


def test_security_not_initialised_yet_is_retried_then_succeeds_with_a_fresh_signature():
    transport = RecordingTransport(
        HttpResponse(503, b'OpenSearch Security not initialized.'), OSError("connection reset"),
        HttpResponse(403, b'{"message":"no permissions"}'), HttpResponse(200, b"{}"), HttpResponse(200, b"{}"))
    security = _security(transport)
    security.grant("photos", "reader", [API_ROLE])
    assert len(transport.requests) == 5
    assert security.sleeps == [2.0, 4.0, 8.0]  # type: ignore[attr-defined]


def test_retries_stop_at_the_budget_and_a_bad_request_is_not_retried():
    transport = RecordingTransport(*[HttpResponse(503, b"busy")] * 50)
    security = _security(transport, budget_seconds=40)
    with pytest.raises(StorageUnavailableError, match="HTTP 503"):
        security.grant("photos", "writer", [INDEXER_ROLE])
    # 2+4+8+16 = 30 s waited; the next wait (30 s) plus a request's timeout (10 s) would end past the 40 s budget,
    # so the error is raised instead.
    assert security.sleeps == [2.0, 4.0, 8.0, 16.0]  # type: ignore[attr-defined]
    assert len(transport.requests) == 5
    refused = RecordingTransport(HttpResponse(400, b'{"status":"BAD_REQUEST","message":"invalid action group"}'))
    with pytest.raises(PermanentError, match="invalid action group"):
        _security(refused).grant("photos", "writer", [INDEXER_ROLE])
    assert len(refused.requests) == 1


def test_the_budget_is_one_deadline_for_every_request_of_the_grant():
    transport = RecordingTransport(HttpResponse(503, b"busy"), HttpResponse(503, b"busy"), HttpResponse(200, b"{}"),
                                   *[HttpResponse(503, b"busy")] * 20)
    security = _security(transport, budget_seconds=40)
    with pytest.raises(StorageUnavailableError):
        security.grant("photos", "reader", [API_ROLE])
    # The role PUT spends 6 s of the 40; the mapping PUT backs off anew (2, 4, 8) but stops once the next wait plus
    # a request's timeout would pass the instance's one deadline: 20 + 16 + 10 > 40. A budget per request would
    # have let it wait 16 s more.
    assert security.sleeps == [2.0, 4.0, 2.0, 4.0, 8.0]  # type: ignore[attr-defined]
    assert len(transport.requests) == 7


def test_refuses_anything_but_a_role_arn_an_unknown_access_kind_or_serverless():
    with pytest.raises(ConfigurationError):
        _security(RecordingTransport()).grant("photos", "writer", ["indexer"])
    with pytest.raises(ConfigurationError):
        _security(RecordingTransport()).grant("photos", "admin", [INDEXER_ROLE])
    with pytest.raises(ConfigurationError):
        OpenSearchSecurity(ENDPOINT, region=REGION, credentials=CREDENTIALS, service="aoss")
    with pytest.raises(ConfigurationError):
        OpenSearchSecurity("http://plain.example", region=REGION, credentials=CREDENTIALS)


# ---- the handler: CloudFormation custom resource events ----------------------------------------------------


class FakeIndex:
    def __init__(self) -> None:
        self.ensured: list[int] = []

    def ensure_index(self, version: int) -> str:
        self.ensured.append(version)
        return f"photos-v{version}"


class Context:
    log_stream_name = "2026/12/03/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def cloud(monkeypatch):
    """bootstrap.search_administration wired with a recording transport, a fake index and a response recorder."""
    transport = RecordingTransport()
    index = FakeIndex()
    responses: list[tuple[str, dict[str, Any]]] = []
    built: list[dict[str, Any]] = []

    def administration(endpoint: str, *, alias: str, budget_seconds: float):
        built.append({"endpoint": endpoint, "alias": alias, "budget_seconds": budget_seconds})
        return bootstrap.SearchAdministration(
            security=_security(transport), index=index, respond=lambda url, body: responses.append((url, body)))

    monkeypatch.setattr(bootstrap, "search_administration", administration)
    monkeypatch.setattr(bootstrap, "custom_resource_responder",
                        lambda: lambda url, body: responses.append((url, body)))
    return {"transport": transport, "index": index, "responses": responses, "built": built}


def _event(request_type: str, *, access: str = "writer", roles: list[str] | None = None,
           physical_id: str | None = None, index_version: str | None = None, **extra) -> dict[str, Any]:
    properties = {"ServiceToken": "arn:aws:lambda:eu-west-1:111111111111:function:search-access",
                  "Endpoint": ENDPOINT, "Alias": "photos", "Access": access,
                  "BackendRoles": roles or [INDEXER_ROLE if access == "writer" else API_ROLE]}
    if index_version:
        properties["IndexVersion"] = index_version
    event = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": RESPONSE_URL,
        "StackId": "arn:aws:cloudformation:eu-west-1:111111111111:stack/photo-organizer-dev-search/1a2b3c4d",
        "RequestId": "5d4c3b2a-request",
        "LogicalResourceId": "IndexerSearchAccess",
        "ResourceType": "Custom::OpenSearchAccess",
        "ResourceProperties": properties,
        **extra,
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


def test_create_writer_maps_the_indexer_creates_the_index_and_answers_success(cloud):
    handler_module.handler(_event("Create", index_version="1"), Context())
    assert [r["url"].removeprefix(ENDPOINT) for r in cloud["transport"].requests] == [
        "/_plugins/_security/api/roles/photo_organizer_photos_writer",
        "/_plugins/_security/api/rolesmapping/photo_organizer_photos_writer",
    ]
    assert cloud["index"].ensured == [1]
    assert cloud["built"] == [{"endpoint": ENDPOINT, "alias": "photos", "budget_seconds": 220.0}]
    [(url, response)] = cloud["responses"]
    assert url == RESPONSE_URL
    assert response == {
        "Status": "SUCCESS", "Reason": "see CloudWatch log stream 2026/12/03/[$LATEST]abc",
        "PhysicalResourceId": "photo_organizer_photos_writer",
        "StackId": "arn:aws:cloudformation:eu-west-1:111111111111:stack/photo-organizer-dev-search/1a2b3c4d",
        "RequestId": "5d4c3b2a-request", "LogicalResourceId": "IndexerSearchAccess", "NoEcho": False,
        "Data": {"RoleName": "photo_organizer_photos_writer", "IndexName": "photos-v1"},
    }


def test_update_reader_puts_again_keeps_the_physical_id_and_creates_no_index(cloud):
    handler_module.handler(_event("Update", access="reader", physical_id="photo_organizer_photos_reader",
                                  OldResourceProperties={"Access": "reader", "BackendRoles": ["arn:aws:iam::1:role/old"]}),
                           Context())
    assert [r["method"] for r in cloud["transport"].requests] == ["PUT", "PUT"]
    assert json.loads(cloud["transport"].requests[1]["body"])["backend_roles"] == [API_ROLE]
    assert cloud["index"].ensured == []
    assert cloud["responses"][0][1]["Status"] == "SUCCESS"
    assert cloud["responses"][0][1]["PhysicalResourceId"] == "photo_organizer_photos_reader"


def test_delete_removes_the_mapping_and_the_role_named_by_the_physical_id(cloud):
    handler_module.handler(_event("Delete", access="reader", physical_id="photo_organizer_photos_reader"), Context())
    assert [(r["method"], r["url"].removeprefix(ENDPOINT)) for r in cloud["transport"].requests] == [
        ("DELETE", "/_plugins/_security/api/rolesmapping/photo_organizer_photos_reader"),
        ("DELETE", "/_plugins/_security/api/roles/photo_organizer_photos_reader"),
    ]
    assert cloud["responses"][0][1]["Status"] == "SUCCESS"


def test_failed_create_answers_failed_with_a_marker_id_whose_rollback_delete_does_nothing(cloud):
    cloud["transport"].answers = [HttpResponse(400, b'{"status":"BAD_REQUEST","message":"bad"}')]
    handler_module.handler(_event("Create"), Context())
    failed = cloud["responses"][0][1]
    assert failed["Status"] == "FAILED" and "HTTP 400" in failed["Reason"]
    assert failed["PhysicalResourceId"] == "not-created:5d4c3b2a-request"
    sent = len(cloud["transport"].requests)
    handler_module.handler(_event("Delete", physical_id=failed["PhysicalResourceId"]), Context())
    assert len(cloud["transport"].requests) == sent  # nothing to remove
    assert cloud["responses"][1][1]["Status"] == "SUCCESS"


def test_a_delete_that_cannot_reach_the_domain_still_answers_success(cloud, monkeypatch):
    def unreachable(endpoint, *, alias, budget_seconds):
        raise ConfigurationError("no AWS credentials")

    monkeypatch.setattr(bootstrap, "search_administration", unreachable)
    handler_module.handler(_event("Delete", physical_id="photo_organizer_photos_writer"), Context())
    assert cloud["responses"][0][1]["Status"] == "SUCCESS"
    assert "no AWS credentials" in cloud["responses"][0][1]["Reason"]
    handler_module.handler(_event("Create"), Context())
    assert cloud["responses"][1][1]["Status"] == "FAILED"


def test_an_unknown_request_type_is_answered_failed_not_left_hanging(cloud):
    handler_module.handler(_event("Replace"), Context())
    assert cloud["responses"][0][1]["Status"] == "FAILED"
    assert "RequestType" in cloud["responses"][0][1]["Reason"]


def test_the_cloudformation_response_is_a_put_with_an_empty_content_type():
    transport = RecordingTransport()
    security_adapter.send_custom_resource_response(RESPONSE_URL, {"Status": "SUCCESS"}, transport=transport)
    [request] = transport.requests
    assert request["method"] == "PUT" and request["url"] == RESPONSE_URL
    assert request["headers"] == {"Content-Type": "", "Content-Length": str(len(request["body"]))}
    assert json.loads(request["body"]) == {"Status": "SUCCESS"}

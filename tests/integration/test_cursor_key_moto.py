"""The aws backend's search cursor key: read from Secrets Manager once per container, never empty.

The OpenSearch index is a stand-in that pages forever (moto has no OpenSearch data plane); everything else is the
real aws wiring against moto: the secret (encrypted with a customer-managed key), the table, the API handler.
"""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from photo_organizer import bootstrap
from photo_organizer.adapters.aws import secrets
from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.errors import ConfigurationError, ValidationError
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event
from photo_organizer.search.models import SearchHit, SearchQuery, SearchResults, SortOrder
from photo_organizer.services.search import SearchFilters
from photo_organizer.settings import Settings

REGION = "us-east-1"
TABLE = "po-cursor-test"
OWNER = "3f1c2b7e-0000-4000-8000-00000000c0de"
PAGE = 2
# Newest first: no query embedding, so these tests do not depend on a bundled model.
NEWEST = SearchFilters(sort=SortOrder.NEWEST)


class EndlessIndex:
    """Every search answers a full page, so every response carries a next cursor."""

    def __init__(self) -> None:
        self.queries: list[SearchQuery] = []

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults:
        self.queries.append(query)
        hits = tuple(SearchHit(photo_id=f"p{i}", score=1.0, sort_values=(1.0, f"p{i}")) for i in range(query.limit))
        return SearchResults(hits=hits, total=100)

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict:
        return {}

    def count(self, owner: str) -> int:
        return 100


@pytest.fixture
def cloud_env(aws_env, monkeypatch):
    """The API function's environment, as the api stack sets it, minus the cursor key."""
    boto3.client("dynamodb", region_name=REGION).create_table(**table_definition(TABLE))
    for name, value in {
        "PO_BACKEND": "aws",
        "PO_ORIGINALS_BUCKET": "po-originals",
        "PO_DERIVATIVES_BUCKET": "po-derivatives",
        "PO_TABLE_NAME": TABLE,
        "PO_FACE_COLLECTION_PREFIX": "po-faces",
        "PO_OPENSEARCH_ENDPOINT": "https://search.invalid",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("PO_CURSOR_SECRET", "PO_CURSOR_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(bootstrap, "_opensearch_index", EndlessIndex)
    parameters.clear_caches()  # Powertools keeps a provider and its values per process
    bootstrap.use_services(None)
    yield monkeypatch
    bootstrap.use_services(None)
    parameters.clear_caches()


def make_secret(name: str) -> tuple[str, str]:
    """A secret as the api stack makes it: a generated 64-character string under the app's KMS key."""
    key_id = boto3.client("kms", region_name=REGION).create_key(Description="app data key")["KeyMetadata"]["KeyId"]
    client = boto3.client("secretsmanager", region_name=REGION)
    value = client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    arn = client.create_secret(Name=name, KmsKeyId=key_id, SecretString=value)["ARN"]
    return arn, value


def first_page_cursor(services) -> str:
    response = services.search.search(OWNER, "beach", NEWEST, limit=PAGE)
    assert response.next_cursor
    return response.next_cursor


def search_api(cursor: str) -> tuple[int, dict]:
    from photo_organizer.handlers import api

    event = http_api_event(
        method="GET",
        path="/search",
        query=[("q", "beach"), ("sort", "newest"), ("limit", str(PAGE)), ("cursor", cursor)],
        claims={"sub": OWNER, "token_use": "id"},
    )
    result = api.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def test_cold_start_reads_the_cursor_key_from_secrets_manager_once(cloud_env):
    arn, value = make_secret("cursor-key")
    cloud_env.setenv("PO_CURSOR_SECRET_ARN", arn)
    reads = []
    real_get_secret = secrets.parameters.get_secret

    def counted_get_secret(name, **kwargs):
        reads.append(name)
        return real_get_secret(name, **kwargs)

    cloud_env.setattr(secrets.parameters, "get_secret", counted_get_secret)

    first = bootstrap.services()
    assert first.cursor_key == value.encode()
    assert bootstrap.services() is first  # later invocations of the container reuse it
    assert reads == [arn]


def test_a_cursor_signed_with_one_key_is_refused_by_services_built_with_another(cloud_env):
    arn_a, _ = make_secret("cursor-key-a")
    arn_b, _ = make_secret("cursor-key-b")
    container_a = bootstrap.build_services(Settings.from_env({**_env(), "PO_CURSOR_SECRET_ARN": arn_a}))
    container_b = bootstrap.build_services(Settings.from_env({**_env(), "PO_CURSOR_SECRET_ARN": arn_b}))
    cursor = first_page_cursor(container_a)

    # The same key continues the search where the cursor points ...
    container_a.search.search(OWNER, "beach", NEWEST, limit=PAGE, cursor=cursor)
    assert container_a.search.index.queries[-1].after == (1.0, f"p{PAGE - 1}")
    # ... another key refuses it, before the index is asked anything.
    asked = len(container_b.search.index.queries)
    with pytest.raises(ValidationError, match="cursor is not valid"):
        container_b.search.search(OWNER, "beach", NEWEST, limit=PAGE, cursor=cursor)
    assert all(q.after is None for q in container_b.search.index.queries[asked:])

    bootstrap.use_services(container_b)
    status, body = search_api(cursor)
    assert status == 400, body


def test_the_same_secret_in_two_containers_continues_each_others_cursors(cloud_env):
    arn, _ = make_secret("cursor-key")
    settings = Settings.from_env({**_env(), "PO_CURSOR_SECRET_ARN": arn})
    cursor = first_page_cursor(bootstrap.build_services(settings))
    parameters.clear_caches()  # another container: its own read
    bootstrap.use_services(bootstrap.build_services(settings))
    status, body = search_api(cursor)
    assert status == 200, body
    assert body["next_cursor"]


def test_aws_search_without_any_cursor_key_refuses_to_start(cloud_env):
    with pytest.raises(ConfigurationError, match="PO_CURSOR_SECRET_ARN"):
        bootstrap.services()
    with pytest.raises(ConfigurationError):
        bootstrap.build_services(Settings.from_env({**_env(), "PO_CURSOR_SECRET": "   "}))


def test_an_unreadable_cursor_secret_refuses_to_start(cloud_env):
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:no-such-secret-AbCdEf"
    cloud_env.setenv("PO_CURSOR_SECRET_ARN", missing)
    with pytest.raises(ConfigurationError, match="no-such-secret"):
        bootstrap.services()


def test_cursor_secret_overrides_the_secret_arn_without_calling_secrets_manager(cloud_env):
    cloud_env.setenv("PO_CURSOR_SECRET", "dev-cursor-key")
    cloud_env.setenv("PO_CURSOR_SECRET_ARN", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:unused-AbCdEf")
    assert bootstrap.services().cursor_key == b"dev-cursor-key"


def test_aws_functions_without_search_need_no_cursor_key(cloud_env):
    """The ingest function builds the aws services too; it signs no cursors and is not granted the secret."""
    cloud_env.delenv("PO_OPENSEARCH_ENDPOINT")
    cloud_env.setattr(bootstrap, "_opensearch_index", lambda: None)
    services = bootstrap.services()
    assert services.search is None
    assert services.cursor_key == b""


def _env() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if name.startswith(("PO_", "AWS_"))}

"""The throttling suite covers every AWS call the product makes: the inventory read from the adapters' source
(aws_inventory) equals the sites the use cases throttle (throttling.COVERAGE). A new call in an adapter fails
here until a use case throttles it; a case whose call is gone fails here too (and in its own test, which asserts
its throttle fired)."""

from __future__ import annotations

import importlib
from pathlib import Path

from aws_inventory import Site, aws_call_sites
from throttling import COVERAGE


def covered() -> dict[Site, list[str]]:
    for path in sorted(Path(__file__).parent.glob("test_*throttling*.py")):
        importlib.import_module(path.stem)  # each use case's module registers its sites
    found: dict[Site, list[str]] = {}
    for use_case, sites in COVERAGE.items():
        for site in sites:
            found.setdefault(site, []).append(use_case)
    return found


def test_every_aws_call_site_of_the_adapters_has_a_throttling_case():
    missing = sorted(aws_call_sites() - set(covered()))
    assert missing == [], "calls no use case throttles:\n" + "\n".join(map(str, missing))


def test_every_throttling_case_names_a_call_the_adapters_make():
    stale = sorted(set(covered()) - aws_call_sites())
    assert stale == [], "cases of calls the adapters no longer make:\n" + "\n".join(map(str, stale))


def test_the_inventory_finds_the_calls_made_in_each_way():
    """One call of each kind the scan must see: a method on a client, a name dispatched through getattr, a
    paginator, a Powertools wrapper, an opensearch-py call, a signed security-API request."""
    found = {str(site) for site in aws_call_sites()}
    assert {
        "s3_blobs:s3.PutObject",  # self._client().put_object(...)
        "dynamodb_people:dynamodb.TransactWriteItems",  # table.call("transact_write_items", ...)
        "s3_blobs:s3.ListObjectsV2",  # get_paginator("list_objects_v2")
        "secrets:secretsmanager.GetSecretValue",  # parameters.get_secret(...)
        "opensearch_index:opensearch.bulk",  # self._call("bulk", lambda c: c.bulk(...))
        "opensearch_security:opensearch.PUT security/roles",  # self._send("PUT", f"{SECURITY_API}/roles/...")
    } <= found
    assert not any("generate_presigned" in s or s.endswith(".Search") for s in found), "local signing, or " \
        "OpenSearch's search taken for SageMaker's"

"""Shared fixtures of the deploy rehearsal (tests/cloud/); the helpers live in tests/cloud/rehearsal/.

- `assembly`: the synthesized cloud assembly (cdk.out) of cdk.json's context with the host bundle as Lambda code,
  cached under build/rehearsal/ by digest (rehearsal.assembly).
- `rehearsal`: a moto server holding the templates' data plane (rehearsal.dataplane), the local OpenSearch
  stand-in (rehearsal.opensearch) and every Lambda function of the templates, run from its staged code directory
  in a worker subprocess with its template environment and its role's credentials (rehearsal.functions). One per
  session; tests that need a clean table use their own user (`sub`), since every key is per owner.
- `quarantine_rehearsal`: the same, synthesized with rejected_action=quarantine.

Every test here is in one xdist group ("cloud"; the Glue tests keep their "spark") so the session fixtures are built
once (tests/conftest.py adds the group and makes pytest-xdist 3.8.0 honour it under pytest 9.2).
Should a group still be split, nothing breaks: builds and syntheses are serialized by file locks
(rehearsal.bundles.exclusive) and each stage keeps its processes, ports, TLS files and logs to itself
(build/rehearsal/run-<name>/<pid>/). Glue tests may reuse `assembly` and `rehearsal.dataplane`.
"""

from __future__ import annotations

import pytest

from .rehearsal.assembly import synthesize
from .rehearsal.bundles import ensure_host_bundle
from .rehearsal.stage import Rehearsal


@pytest.fixture(scope="session")
def host_bundle():
    return ensure_host_bundle()


@pytest.fixture(scope="session")
def assembly(host_bundle):
    return synthesize("default")


@pytest.fixture(scope="session")
def rehearsal(assembly):
    stage = Rehearsal(assembly, name="default")
    try:
        yield stage
    finally:
        stage.close()


@pytest.fixture(scope="session")
def quarantine_rehearsal(host_bundle):
    stage = Rehearsal(synthesize("quarantine", {"rejected_action": "quarantine"}), name="quarantine")
    try:
        yield stage
    finally:
        stage.close()
